//! Re-sealing MFA seeds and single sign-on secrets (providers' client secrets, their refresh
//! tokens) under the current encryption key after a rotation (`complianceiq
//! rotate-encryption-key`), a committed batch at a time, so an interrupted run resumes: only
//! secrets under another key are selected.

use std::sync::Arc;

use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::secrets::SecretBox;

use crate::store;

const BATCH: i64 = 100;

/// Re-seals every secret of the module not under the current key; returns how many.
pub async fn reseal(database: ModuleDatabase, secrets: Arc<SecretBox>) -> Result<u64, ApiError> {
    Ok(reseal_mfa_seeds(&database, &secrets).await? + crate::sso::reseal(&database, &secrets).await?)
}

async fn reseal_mfa_seeds(database: &ModuleDatabase, secrets: &SecretBox) -> Result<u64, ApiError> {
    let current = format!("v1:{}:%", secrets.current_key_id());
    let mut resealed = 0;
    loop {
        let mut tx = database.global_write().await?;
        let batch = store::mfa_seeds_not_under(&mut tx, &current, BATCH).await?;
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(resealed);
        }
        for seeds in &batch {
            let context = format!("mfa:{}", seeds.user_id);
            let fresh = |sealed: &Option<String>| -> Result<Option<String>, ApiError> {
                let Some(sealed) = sealed else { return Ok(None) };
                let fresh = secrets.reseal(sealed, &context).map_err(|error| {
                    ApiError::internal(format!(
                        "account {}: {error} (is every old key still configured?)",
                        seeds.user_id
                    ))
                })?;
                Ok(Some(fresh.unwrap_or_else(|| sealed.clone())))
            };
            let (secret, pending) = (fresh(&seeds.secret)?, fresh(&seeds.pending)?);
            store::replace_mfa_seeds(&mut tx, seeds, secret.as_deref(), pending.as_deref()).await?;
            resealed += u64::from(secret != seeds.secret) + u64::from(pending != seeds.pending);
        }
        tx.commit().await?;
    }
}
