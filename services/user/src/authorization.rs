//! Publishing what a person may do: after every change to someone's roles or membership (or
//! their profile's time zone) the user service emits `user.authorization_changed` with the
//! complete, versioned state, which the auth service copies to build tokens and the
//! notification service to know whom it notifies, where and when.

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::UserId;
use complianceiq_proto::complianceiq::events::v1::UserAuthorizationChanged;
use complianceiq_proto::complianceiq::events::v1::event::Payload;

use crate::domain;
use crate::store;

/// Emits the user's current roles and permissions (or, `active == false`, that they left);
/// returns the change's version.
pub async fn publish(
    tx: &mut TenantTx,
    user: UserId,
    email: &str,
    active: bool,
    context: &RequestContext,
) -> Result<i64, ApiError> {
    let version = store::next_authorization_version(tx, user).await?;
    let roles = if active { store::roles_of(tx, user).await? } else { Vec::new() };
    let time_zone = store::profile_of(tx, user).await?.map(|profile| profile.editable.timezone).unwrap_or_default();
    let change = UserAuthorizationChanged {
        user_id: user.to_string(),
        email: email.to_string(),
        roles: roles.iter().map(|role| role.name.clone()).collect(),
        permissions: domain::union(roles.iter().map(|role| role.permissions.as_slice())),
        active,
        version,
        time_zone,
    };
    tx.emit(Payload::UserAuthorizationChanged(change), context).await?;
    Ok(version)
}
