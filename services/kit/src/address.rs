//! Where the platform may connect on a tenant's behalf. An instance or webhook URL is
//! whatever a tenant admin typed, so without a check the platform would fetch from its own
//! network for them (cloud metadata, databases, the mesh): server-side request forgery. Every
//! address a host resolves to is checked, when the URL is saved and again at each connection
//! (the resolver below), so a name that resolves to a public address once and a private one
//! later (DNS rebinding) gains nothing.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

/// Why a URL may not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The host is, or resolves to, an address the platform may not reach.
    #[error("{0}")]
    Forbidden(String),
    /// The host does not resolve (now).
    #[error("{0}")]
    Unresolvable(String),
    /// The URL names no host.
    #[error("the URL has no host")]
    NoHost,
}

/// Which networks a client may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkAccess {
    /// Public addresses only (production).
    #[default]
    PublicOnly,
    /// Also loopback and private ranges (development, the simulator, on-premises instances
    /// an operator explicitly allows). Link-local addresses stay refused: they are where
    /// clouds serve instance metadata and credentials.
    AllowPrivate,
}

/// Why `address` may not be reached under `access`, if it may not.
pub fn refusal(address: IpAddr, access: NetworkAccess) -> Option<&'static str> {
    let address = canonical(address);
    if let Some(reason) = always_refused(address) {
        return Some(reason);
    }
    if access == NetworkAccess::AllowPrivate {
        return None;
    }
    match address {
        IpAddr::V4(ip) if ip.is_loopback() => Some("a loopback address"),
        IpAddr::V4(ip) if ip.is_private() => Some("a private address"),
        // Carrier-grade NAT, 100.64.0.0/10: shared, not public.
        IpAddr::V4(ip) if ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64 => Some("a shared (CGNAT) address"),
        IpAddr::V4(ip) if ip.octets()[0] == 0 => Some("a 'this network' address"),
        IpAddr::V4(ip) if ip.octets()[0] >= 240 => Some("a reserved address"),
        IpAddr::V6(ip) if ip.is_loopback() => Some("a loopback address"),
        // Unique local fc00::/7.
        IpAddr::V6(ip) if (ip.segments()[0] & 0xfe00) == 0xfc00 => Some("a private (unique local) address"),
        _ => None,
    }
}

/// Never reachable, whatever the setting.
fn always_refused(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) if ip.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(ip) if ip.is_link_local() => Some("a link-local (cloud metadata) address"),
        IpAddr::V4(ip) if ip.is_broadcast() || ip.is_multicast() => Some("a broadcast or multicast address"),
        IpAddr::V6(ip) if ip.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(ip) if (ip.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(ip) if ip.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// IPv6 forms that carry an IPv4 address (`::ffff:10.0.0.1`, `::10.0.0.1`, NAT64
/// `64:ff9b::10.0.0.1`) are judged by that address.
fn canonical(address: IpAddr) -> IpAddr {
    let IpAddr::V6(ip) = address else { return address };
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return IpAddr::V4(mapped);
    }
    let segments = ip.segments();
    let embedded = || {
        let octets = ip.octets();
        IpAddr::V4(Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]))
    };
    if segments[..6] == [0, 0, 0, 0, 0, 0] && ip != Ipv6Addr::LOCALHOST && ip != Ipv6Addr::UNSPECIFIED {
        return embedded();
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return embedded();
    }
    address
}

fn forbidden(host: &str, address: IpAddr, reason: &str) -> AddressError {
    let shown = if host.trim_matches(['[', ']']) == address.to_string() {
        format!("{host} is {reason}")
    } else {
        format!("{host} resolves to {address}, {reason}")
    };
    AddressError::Forbidden(format!("{shown}; the platform connects only to public addresses"))
}

/// Checks the URL's host if it is an IP literal, which never reaches a resolver (names are
/// checked where they are resolved: [`CheckingResolver`]).
pub fn check_literal(url: &url::Url, access: NetworkAccess) -> Result<(), AddressError> {
    let address = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match refusal(address, access) {
        Some(reason) => Err(forbidden(&address.to_string(), address, reason)),
        None => Ok(()),
    }
}

/// Checks the URL's host: an IP literal directly, a name by resolving it and checking
/// every address it has.
pub async fn check_url(url: &url::Url, access: NetworkAccess) -> Result<(), AddressError> {
    let host = url.host_str().ok_or(AddressError::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => resolve(host, port).await?.into_iter().map(|address| address.ip()).collect(),
    };
    for address in addresses {
        if let Some(reason) = refusal(address, access) {
            return Err(forbidden(host, address, reason));
        }
    }
    Ok(())
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, AddressError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| AddressError::Unresolvable(format!("cannot resolve {host}: {error}")))?
        .collect();
    if addresses.is_empty() {
        return Err(AddressError::Unresolvable(format!("{host} has no address")));
    }
    Ok(addresses)
}

/// reqwest's resolver for clients that fetch tenants' URLs: the addresses a connection uses
/// are the ones checked, so a name cannot change between the check and the connection. A
/// refusal surfaces in the request error's sources as an [`AddressError`].
pub struct CheckingResolver {
    pub access: NetworkAccess,
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let access = self.access;
        let host = name.as_str().to_string();
        type Boxed = Box<dyn std::error::Error + Send + Sync>;
        let resolving: Pin<Box<dyn Future<Output = Result<reqwest::dns::Addrs, Boxed>> + Send>> =
            Box::pin(async move {
                // The port is replaced by the connector; any will do for the lookup.
                let addresses = resolve(&host, 0).await.map_err(|error| Box::new(error) as Boxed)?;
                for address in &addresses {
                    if let Some(reason) = refusal(address.ip(), access) {
                        return Err(Box::new(forbidden(&host, address.ip(), reason)) as Boxed);
                    }
                }
                Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
            });
        resolving
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str, access: NetworkAccess) -> bool {
        refusal(text.parse().unwrap(), access).is_some()
    }

    #[test]
    fn internal_networks_are_refused_in_every_spelling() {
        for address in [
            "0.0.0.0",
            "::",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            assert!(refused(address, NetworkAccess::PublicOnly), "{address} must be refused");
        }
        for address in ["8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(!refused(address, NetworkAccess::PublicOnly), "{address} is public");
        }
    }

    #[test]
    fn allowing_private_networks_still_refuses_metadata_and_unspecified() {
        for address in ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "::ffff:192.168.0.1"] {
            assert!(!refused(address, NetworkAccess::AllowPrivate), "{address} allowed in development");
        }
        for address in ["169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0", "::", "fe80::1"] {
            assert!(refused(address, NetworkAccess::AllowPrivate), "{address} never allowed");
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let local = url::Url::parse("http://localhost:8090").unwrap();
        let error = check_url(&local, NetworkAccess::PublicOnly).await.unwrap_err();
        assert!(
            matches!(&error, AddressError::Forbidden(message) if message.contains("localhost resolves to")),
            "{error}"
        );
        assert!(check_url(&local, NetworkAccess::AllowPrivate).await.is_ok());
        let literal = url::Url::parse("https://[::ffff:10.0.0.1]/").unwrap();
        assert!(check_url(&literal, NetworkAccess::PublicOnly).await.is_err());
        let refused = check_literal(&literal, NetworkAccess::PublicOnly).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "::ffff:10.0.0.1 is a private address; the platform connects only to public addresses"
        );
        assert!(check_literal(&local, NetworkAccess::PublicOnly).is_ok(), "names are left to the resolver");
    }
}
