//! Re-sealing stored credentials under the current encryption key, after a rotation
//! (`complianceiq rotate-encryption-key`). Organization by organization, a transaction each,
//! so an interrupted run resumes where it stopped: only credentials under another key are
//! touched.

use std::sync::Arc;

use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::secrets::SecretBox;

use crate::api::sealing_context;
use crate::store;

/// Re-seals every instance's credentials not under the current key; returns how many.
pub async fn reseal(database: ModuleDatabase, secrets: Arc<SecretBox>) -> Result<u64, ApiError> {
    let current = format!("v1:{}:%", secrets.current_key_id());
    let mut tx = database.global_read().await?;
    let organizations = store::organizations_with_instances(&mut tx).await?;
    tx.commit().await?;
    let mut resealed = 0;
    for organization in organizations {
        let tenant = OrganizationId::from_stored(&organization)?;
        let mut tx = database.write(tenant).await?;
        for (id, url, sealed) in store::credentials_not_under(&mut tx, &current).await? {
            let context = sealing_context(&organization, &id, &url);
            let fresh = secrets.reseal(&sealed, &context).map_err(|error| {
                ApiError::internal(format!("instance {id}: {error} (is every old key still configured?)"))
            })?;
            if let Some(fresh) = fresh {
                store::replace_credentials(&mut tx, &id, &sealed, &fresh).await?;
                resealed += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(resealed)
}
