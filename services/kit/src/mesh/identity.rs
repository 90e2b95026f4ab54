//! Module identities: SPIFFE IDs of the form
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<module>-service`, as Istio derives them from
//! a Kubernetes service account, carried as the URI SAN of each module's certificate.

use std::fmt;

/// Suffix of every module's service account (`auth` runs as `auth-service`).
const ACCOUNT_SUFFIX: &str = "-service";

/// Where identities live: trust domain and namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustScope {
    /// `cluster.local`.
    pub trust_domain: String,
    /// `complianceiq`.
    pub namespace: String,
}

impl TrustScope {
    /// The identity of a module.
    pub fn identity(&self, module: &str) -> ServiceIdentity {
        ServiceIdentity {
            trust_domain: self.trust_domain.clone(),
            namespace: self.namespace.clone(),
            service_account: format!("{module}{ACCOUNT_SUFFIX}"),
        }
    }

    /// The module named by a SPIFFE ID, if the ID lies in this scope and names a module's
    /// service account.
    pub fn module_of(&self, spiffe_id: &str) -> Option<String> {
        let identity = ServiceIdentity::parse(spiffe_id)?;
        if identity.trust_domain != self.trust_domain || identity.namespace != self.namespace {
            return None;
        }
        identity.module().map(str::to_string)
    }
}

/// One workload identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceIdentity {
    /// Trust domain.
    pub trust_domain: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Kubernetes service account.
    pub service_account: String,
}

impl ServiceIdentity {
    /// Parses `spiffe://<domain>/ns/<namespace>/sa/<account>`; anything else is `None`.
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix("spiffe://")?;
        let (trust_domain, path) = rest.split_once('/')?;
        let mut segments = path.split('/');
        let (Some("ns"), Some(namespace), Some("sa"), Some(account), None) =
            (segments.next(), segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return None;
        };
        let valid = |text: &str| {
            !text.is_empty()
                && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
        };
        (valid(trust_domain) && valid(namespace) && valid(account)).then(|| Self {
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            service_account: account.into(),
        })
    }

    /// The module this identity belongs to (`auth` for `auth-service`).
    pub fn module(&self) -> Option<&str> {
        self.service_account.strip_suffix(ACCOUNT_SUFFIX).filter(|module| !module.is_empty())
    }

    /// The Istio principal (`<domain>/ns/<namespace>/sa/<account>`).
    pub fn principal(&self) -> String {
        format!("{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

impl fmt::Display for ServiceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}", self.principal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> TrustScope {
        TrustScope { trust_domain: "cluster.local".into(), namespace: "complianceiq".into() }
    }

    #[test]
    fn a_module_identity_round_trips() {
        let identity = scope().identity("organization");
        assert_eq!(identity.to_string(), "spiffe://cluster.local/ns/complianceiq/sa/organization-service");
        assert_eq!(identity.principal(), "cluster.local/ns/complianceiq/sa/organization-service");
        assert_eq!(ServiceIdentity::parse(&identity.to_string()), Some(identity));
        assert_eq!(
            scope().module_of("spiffe://cluster.local/ns/complianceiq/sa/user-service").as_deref(),
            Some("user")
        );
    }

    #[test]
    fn foreign_or_malformed_ids_name_no_module() {
        for id in [
            "spiffe://other.domain/ns/complianceiq/sa/user-service",
            "spiffe://cluster.local/ns/default/sa/user-service",
            "spiffe://cluster.local/ns/complianceiq/sa/user",
            "spiffe://cluster.local/ns/complianceiq/sa/-service",
            "spiffe://cluster.local/ns/complianceiq/sa/user-service/extra",
            "spiffe://cluster.local/ns/complianceiq/sa/USER-service",
            "https://cluster.local/ns/complianceiq/sa/user-service",
            "spiffe://cluster.local",
            "",
        ] {
            assert_eq!(scope().module_of(id), None, "{id}");
        }
    }
}
