//! An organization's roles as a caller may see them: asked of the user service with the
//! caller's own token, so its permission rules apply (invitations and single sign-on check the
//! roles they would grant this way).

use std::time::Duration;

use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use complianceiq_proto::complianceiq::user::v1::{ListRolesRequest, Role};
use tonic::metadata::{Ascii, MetadataValue};

use crate::error::ApiError;
use crate::mesh::MeshChannel;

/// Every role of the caller's organization, page by page. `needs_read_for` names what the
/// caller is doing, for the refusal when their token lacks `users:read`.
pub async fn as_caller(
    users: &UserServiceClient<MeshChannel>,
    authorization: Option<MetadataValue<Ascii>>,
    needs_read_for: &str,
) -> Result<Vec<Role>, ApiError> {
    let mut roles = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut request = tonic::Request::new(ListRolesRequest { page_size: 1000, page_token: page_token.clone() });
        if let Some(value) = authorization.clone() {
            request.metadata_mut().insert("authorization", value);
        }
        let response = users.clone().list_roles(request).await.map_err(|status| match status.code() {
            tonic::Code::PermissionDenied => ApiError::PermissionDenied {
                reason: "PERMISSION_MISSING",
                message: format!("{needs_read_for} needs the permission users:read"),
            },
            _ => ApiError::Unavailable {
                reason: "USER_SERVICE_UNAVAILABLE",
                message: "roles cannot be checked right now; try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            }
            .log_cause(&status.message().to_string()),
        })?;
        let response = response.into_inner();
        roles.extend(response.roles);
        if response.next_page_token.is_empty() {
            return Ok(roles);
        }
        page_token = response.next_page_token;
    }
}
