//! Each module's certificate material, read from `<dir>/<module>/tls.crt` (leaf first, then
//! intermediates), `tls.key` and `ca.crt` (the trust bundle), the layout cert-manager and
//! Kubernetes secrets give. A store re-reads its files when their content changes and swaps
//! the material in only when it is whole and coherent (key matches certificate, certificate
//! chains to the bundle and names the module), so a half-written rotation never breaks a call.
//!
//! In development a [`DevAuthority`] creates a CA and every module's certificate instead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier, danger::ClientCertVerifier};
use rustls::sign::CertifiedKey;

use super::MeshError;
use super::identity::{ServiceIdentity, TrustScope};

/// File names inside a module's directory.
pub const CERT_FILE: &str = "tls.crt";
/// Private key, PKCS#8 or SEC1 PEM.
pub const KEY_FILE: &str = "tls.key";
/// Trust bundle: every CA whose certificates are accepted (old and new during a CA rotation).
pub const CA_FILE: &str = "ca.crt";

/// A coherent set of one module's certificate, key and trust bundle.
pub(crate) struct Material {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) client_verifier: Arc<dyn ClientCertVerifier>,
    fingerprint: Vec<u8>,
}

/// One module's certificate material, current as of the last reload.
pub struct CertStore {
    identity: ServiceIdentity,
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Material>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertStore({})", self.identity)
    }
}

impl CertStore {
    /// Loads `<dir>` (a module's directory); an error says which file is missing or wrong.
    pub fn load(identity: ServiceIdentity, dir: PathBuf, provider: Arc<CryptoProvider>) -> Result<Self, MeshError> {
        let (fingerprint, files) = read_files(&dir)?;
        let material = parse(&identity, &dir, &provider, fingerprint, files)?;
        Ok(Self { identity, dir, provider, current: RwLock::new(Arc::new(material)) })
    }

    /// The module identity the certificate carries.
    pub fn identity(&self) -> &ServiceIdentity {
        &self.identity
    }

    pub(crate) fn current(&self) -> Arc<Material> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The provider every handshake uses.
    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Re-reads the files; swaps in new material when they changed and are coherent.
    /// `Ok(true)`: new material is in use. An error leaves the old material in use.
    pub fn reload(&self) -> Result<bool, MeshError> {
        let (fingerprint, files) = read_files(&self.dir)?;
        if fingerprint == self.current().fingerprint {
            return Ok(false);
        }
        let material = parse(&self.identity, &self.dir, &self.provider, fingerprint, files)?;
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(material);
        Ok(true)
    }
}

struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

fn read_files(dir: &Path) -> Result<(Vec<u8>, Files), MeshError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|error| MeshError(format!("{}: {error}", path.display())))
    };
    let files = Files { cert: read(CERT_FILE)?, key: read(KEY_FILE)?, ca: read(CA_FILE)? };
    let fingerprint = [&files.cert, &files.key, &files.ca]
        .iter()
        .fold(ring::digest::Context::new(&ring::digest::SHA256), |mut context, bytes| {
            context.update(&(bytes.len() as u64).to_be_bytes());
            context.update(bytes);
            context
        })
        .finish()
        .as_ref()
        .to_vec();
    Ok((fingerprint, files))
}

fn parse(
    identity: &ServiceIdentity,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
    fingerprint: Vec<u8>,
    files: Files,
) -> Result<Material, MeshError> {
    let wrong = |file: &str, problem: String| MeshError(format!("{}: {problem}", dir.join(file).display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<_, _>>()
        .map_err(|error| wrong(CERT_FILE, format!("not PEM certificates ({error})")))?;
    if chain.is_empty() {
        return Err(wrong(CERT_FILE, "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|error| wrong(KEY_FILE, format!("not a PEM private key ({error})")))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&files.ca) {
        let certificate = certificate.map_err(|error| wrong(CA_FILE, format!("not PEM certificates ({error})")))?;
        roots.add(certificate).map_err(|error| wrong(CA_FILE, format!("not a usable CA certificate ({error})")))?;
    }
    if roots.is_empty() {
        return Err(wrong(CA_FILE, "holds no certificate".into()));
    }
    let certified = CertifiedKey::from_der(chain.clone(), key, provider)
        .map_err(|error| wrong(KEY_FILE, format!("does not belong to {CERT_FILE} ({error})")))?;
    verify_chain(&chain, &roots, provider, UnixTime::now())
        .map_err(|error| wrong(CERT_FILE, format!("is not trusted by {CA_FILE}: {error}")))?;
    let names = uri_names(&chain[0]).map_err(|error| wrong(CERT_FILE, error))?;
    let expected = identity.to_string();
    if !names.contains(&expected) {
        return Err(wrong(CERT_FILE, format!("names {names:?}, not {expected}")));
    }
    let roots = Arc::new(roots);
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|error| wrong(CA_FILE, error.to_string()))?;
    Ok(Material { key: Arc::new(certified), roots, client_verifier, fingerprint })
}

/// Checks that `chain` (leaf first) leads to one of `roots` and is valid at `at`.
pub(crate) fn verify_chain(
    chain: &[CertificateDer<'_>],
    roots: &RootCertStore,
    provider: &CryptoProvider,
    at: UnixTime,
) -> Result<(), rustls::Error> {
    let leaf = ParsedCertificate::try_from(&chain[0])?;
    verify_server_cert_signed_by_trust_anchor(
        &leaf,
        roots,
        &chain[1..],
        at,
        provider.signature_verification_algorithms.all,
    )
}

/// The URI SANs of a certificate.
pub(crate) fn uri_names(certificate: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let parsed = webpki::EndEntityCert::try_from(certificate).map_err(|error| format!("unreadable ({error:?})"))?;
    Ok(parsed.valid_uri_names().map(str::to_string).collect())
}

/// The development CA: creates itself and each module's certificate under a directory,
/// in the same layout production reads. Never used by `serve`.
pub struct DevAuthority {
    dir: PathBuf,
    key: rcgen::KeyPair,
    certificate_pem: String,
}

/// Leaf certificates live a year and are renewed when less than 30 days remain.
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const CA_NAME: &str = "ComplianceIQ development mesh CA";

fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, CA_NAME);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params
}

fn validity(params: &mut rcgen::CertificateParams, lifetime: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks of other machines that run slightly behind.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + lifetime;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&crate::crypto::random_bytes(16)));
}

fn generation_error(what: &str) -> impl FnOnce(rcgen::Error) -> MeshError + '_ {
    move |error| MeshError(format!("generating {what}: {error}"))
}

impl DevAuthority {
    /// Opens the CA under `<dir>/ca`, creating it on first use.
    pub fn open_or_create(dir: &Path) -> Result<Self, MeshError> {
        let ca_dir = dir.join("ca");
        let (cert_path, key_path) = (ca_dir.join(CA_FILE), ca_dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            let read = |path: &Path| {
                std::fs::read_to_string(path).map_err(|error| MeshError(format!("{}: {error}", path.display())))
            };
            let key = rcgen::KeyPair::from_pem(&read(&key_path)?)
                .map_err(|error| MeshError(format!("{}: {error}", key_path.display())))?;
            return Ok(Self { dir: dir.to_path_buf(), key, certificate_pem: read(&cert_path)? });
        }
        let key = rcgen::KeyPair::generate().map_err(generation_error("the CA key"))?;
        let mut params = ca_params();
        validity(&mut params, CA_LIFETIME);
        let certificate = params.self_signed(&key).map_err(generation_error("the CA certificate"))?;
        write_atomically(&key_path, key.serialize_pem().as_bytes(), true)?;
        write_atomically(&cert_path, certificate.pem().as_bytes(), false)?;
        Ok(Self { dir: dir.to_path_buf(), key, certificate_pem: certificate.pem() })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Makes sure `module` has a certificate from this CA for `identity` that is good for
    /// at least 30 more days; issues one otherwise.
    pub fn ensure(
        &self,
        module: &str,
        identity: &ServiceIdentity,
        provider: &Arc<CryptoProvider>,
    ) -> Result<(), MeshError> {
        let module_dir = self.dir.join(module);
        let current = CertStore::load(identity.clone(), module_dir.clone(), provider.clone()).ok().filter(|store| {
            let material = store.current();
            let later = UnixTime::since_unix_epoch(
                SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default() + RENEW_BEFORE,
            );
            let from_this_ca = material.roots.len() == 1
                && std::fs::read(module_dir.join(CA_FILE)).is_ok_and(|ca| ca == self.certificate_pem.as_bytes());
            from_this_ca && verify_chain(&material.key.cert, &material.roots, provider, later).is_ok()
        });
        if current.is_none() {
            self.issue(module, identity)?;
        }
        Ok(())
    }

    /// Issues a fresh certificate and key for `module`, replacing its files (a rotation).
    pub fn issue(&self, module: &str, identity: &ServiceIdentity) -> Result<(), MeshError> {
        let key = rcgen::KeyPair::generate().map_err(generation_error("a module key"))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{module}-service"));
        let uri = rcgen::string::Ia5String::try_from(identity.to_string())
            .map_err(|error| MeshError(format!("identity {identity}: {error}")))?;
        // The URI is the identity the mesh checks; the DNS names let ordinary TLS clients
        // (grpcurl -servername user-service) talk to a module too.
        let mut names = vec![rcgen::SanType::URI(uri)];
        for name in [
            format!("{module}-service"),
            format!("{module}-service.{}", identity.namespace),
            format!("{module}-service.{}.svc", identity.namespace),
            "localhost".to_string(),
        ] {
            let name = rcgen::string::Ia5String::try_from(name.clone())
                .map_err(|error| MeshError(format!("DNS name {name}: {error}")))?;
            names.push(rcgen::SanType::DnsName(name));
        }
        params.subject_alt_names = names;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, LEAF_LIFETIME);
        let issuer = rcgen::Issuer::new(ca_params(), &self.key);
        let certificate = params.signed_by(&key, &issuer).map_err(generation_error("a module certificate"))?;
        let module_dir = self.dir.join(module);
        // The key first: a reader that sees the new certificate with the old key keeps the
        // old material (the pair does not match) and picks the new one up next time.
        write_atomically(&module_dir.join(KEY_FILE), key.serialize_pem().as_bytes(), true)?;
        write_atomically(&module_dir.join(CERT_FILE), certificate.pem().as_bytes(), false)?;
        write_atomically(&module_dir.join(CA_FILE), self.certificate_pem.as_bytes(), false)
    }
}

/// Writes through a temporary file and a rename, so readers see the old or the new file.
fn write_atomically(path: &Path, contents: &[u8], secret: bool) -> Result<(), MeshError> {
    let fail = |error: std::io::Error| MeshError(format!("{}: {error}", path.display()));
    let dir = path.parent().ok_or_else(|| MeshError(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(dir).map_err(fail)?;
    let temporary = dir.join(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&temporary, contents).map_err(fail)?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    std::fs::rename(&temporary, path).map_err(fail)
}

/// Creates the development CA (once) and a certificate for each of `modules` under `dir`.
pub fn ensure_dev_certificates(
    dir: &Path,
    scope: &TrustScope,
    modules: &[&str],
    provider: &Arc<CryptoProvider>,
) -> Result<DevAuthority, MeshError> {
    let authority = DevAuthority::open_or_create(dir)?;
    for module in modules {
        authority.ensure(module, &scope.identity(module), provider)?;
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn scope() -> TrustScope {
        TrustScope { trust_domain: "cluster.local".into(), namespace: "test".into() }
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("ciq-mesh-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn development_certificates_are_created_once_and_load() {
        let dir = temp_dir();
        ensure_dev_certificates(&dir, &scope(), &["auth", "user"], &provider()).unwrap();
        let first = std::fs::read(dir.join("auth").join(CERT_FILE)).unwrap();
        ensure_dev_certificates(&dir, &scope(), &["auth", "user"], &provider()).unwrap();
        assert_eq!(std::fs::read(dir.join("auth").join(CERT_FILE)).unwrap(), first, "kept while valid");
        let store = CertStore::load(scope().identity("auth"), dir.join("auth"), provider()).unwrap();
        assert_eq!(store.identity().to_string(), "spiffe://cluster.local/ns/test/sa/auth-service");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_store_refuses_material_that_does_not_fit_and_keeps_what_it_had() {
        let dir = temp_dir();
        let authority = ensure_dev_certificates(&dir, &scope(), &["auth", "user"], &provider()).unwrap();
        let store = CertStore::load(scope().identity("auth"), dir.join("auth"), provider()).unwrap();
        let before = store.current().key.cert[0].clone();
        assert!(!store.reload().unwrap(), "unchanged files are not re-parsed");

        // Another module's key beside auth's certificate.
        std::fs::copy(dir.join("user").join(KEY_FILE), dir.join("auth").join(KEY_FILE)).unwrap();
        let error = store.reload().unwrap_err().to_string();
        assert!(error.contains("does not belong to tls.crt"), "{error}");
        // Another module's certificate and key: coherent, but not auth's identity.
        std::fs::copy(dir.join("user").join(CERT_FILE), dir.join("auth").join(CERT_FILE)).unwrap();
        let error = store.reload().unwrap_err().to_string();
        assert!(error.contains("not spiffe://cluster.local/ns/test/sa/auth-service"), "{error}");
        // A certificate of another CA.
        let other = temp_dir();
        ensure_dev_certificates(&other, &scope(), &["auth"], &provider()).unwrap();
        std::fs::copy(other.join("auth").join(CERT_FILE), dir.join("auth").join(CERT_FILE)).unwrap();
        std::fs::copy(other.join("auth").join(KEY_FILE), dir.join("auth").join(KEY_FILE)).unwrap();
        let error = store.reload().unwrap_err().to_string();
        assert!(error.contains("is not trusted by ca.crt"), "{error}");
        assert_eq!(store.current().key.cert[0], before, "the old material stays in use");

        authority.issue("auth", &scope().identity("auth")).unwrap();
        assert!(store.reload().unwrap());
        assert_ne!(store.current().key.cert[0], before, "a proper rotation is taken");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other).unwrap();
    }
}
