//! Where the platform may connect on a tenant's behalf: the kit's rules (server-side request
//! forgery), with their refusals as the client's errors.

pub use complianceiq_kit::address::{AddressError, CheckingResolver, NetworkAccess, check_literal, refusal};

use crate::client::SnError;

impl From<AddressError> for SnError {
    fn from(error: AddressError) -> Self {
        match error {
            AddressError::Forbidden(message) => SnError::ForbiddenAddress(message),
            AddressError::Unresolvable(message) => SnError::Unreachable(message),
            AddressError::NoHost => SnError::InvalidUrl(error.to_string()),
        }
    }
}

/// Checks the URL's host: an IP literal directly, a name by resolving it and checking
/// every address it has.
pub async fn check_url(url: &url::Url, access: NetworkAccess) -> Result<(), SnError> {
    Ok(complianceiq_kit::address::check_url(url, access).await?)
}
