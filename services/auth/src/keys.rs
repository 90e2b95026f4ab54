//! The RS256 keys that sign access tokens: a directory of PKCS#8 PEM files named
//! `<key id>.pem`. Key ids start with their UTC creation time (`20261125T220000Z-ab12`), so
//! the greatest id is the newest: it signs. The JWKS publishes every key that can still
//! have live tokens: the active one, and older ones until a token lifetime (plus leeway)
//! after their successor appeared. Rotation is adding a file; the auth service reloads the
//! directory periodically, so a mounted Secret can rotate without a restart.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use complianceiq_kit::auth::jwt::{self, PublicKey};
use complianceiq_kit::secrets::write_private;
use complianceiq_proto::complianceiq::auth::v1::JsonWebKey;
use ring::signature::RsaKeyPair;

/// One key of the ring.
pub struct SigningKey {
    pub id: String,
    pub pair: RsaKeyPair,
    pub public: PublicKey,
    /// Creation time from the id, seconds since the epoch (0 if the id carries none).
    created_at: i64,
}

/// The keys in the directory, newest first.
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

/// Key loading failures.
#[derive(Debug)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JWT signing keys: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END PRIVATE KEY-----"))
        .collect();
    STANDARD.decode(body.trim()).ok()
}

fn der_to_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let lines: Vec<&str> =
        encoded.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap_or_default()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// Seconds since the epoch encoded at the start of a key id (`YYYYMMDDTHHMMSSZ`).
fn created_at_of(id: &str) -> i64 {
    let digits: String = id.chars().take(16).filter(char::is_ascii_digit).collect();
    if digits.len() != 14 {
        return 0;
    }
    let field = |range: std::ops::Range<usize>| digits[range].parse::<i64>().unwrap_or(0);
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3_600 + minute * 60 + second
}

fn new_key_id(now: i64) -> String {
    let days = now.div_euclid(86_400);
    let seconds = now.rem_euclid(86_400);
    // Civil date from days (inverse of the above).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..4];
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z-{suffix}",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}

/// Seconds a new key is published before it signs.
pub const PUBLISHED_BEFORE_SIGNING: i64 = 2;

impl KeyRing {
    /// Loads every `*.pem` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let entries = std::fs::read_dir(dir).map_err(|e| KeyError(format!("reading {}: {e}", dir.display())))?;
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| KeyError(e.to_string()))?.path();
            if path.extension().is_none_or(|ext| ext != "pem") {
                continue;
            }
            let id = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default().to_string();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(KeyError(format!("{}: key ids are letters, digits, - and _", path.display())));
            }
            let pem = std::fs::read_to_string(&path).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
            let der = pem_to_der(&pem)
                .ok_or_else(|| KeyError(format!("{}: not a PKCS#8 PEM private key", path.display())))?;
            let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
            if pair.public().modulus_len() < 256 {
                return Err(KeyError(format!("{}: RSA keys must have at least 2048 bits", path.display())));
            }
            let public = PublicKey::of(&id, &pair);
            keys.push(SigningKey { created_at: created_at_of(&id), id, pair, public });
        }
        if keys.is_empty() {
            return Err(KeyError(format!("no *.pem key in {}", dir.display())));
        }
        keys.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(Self { keys })
    }

    /// Generates a new 2048-bit key into `dir`; it becomes the active key. Returns its id.
    pub fn generate_into(dir: &Path) -> Result<String, KeyError> {
        use rsa::pkcs8::EncodePrivateKey;
        std::fs::create_dir_all(dir).map_err(|e| KeyError(format!("{}: {e}", dir.display())))?;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| KeyError(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| KeyError(e.to_string()))?;
        // Ids sort by creation time, and the greatest signs: a key made within the same
        // second as the newest one takes the next second, so it still sorts after it.
        let newest = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| entry.path().file_stem().and_then(|stem| stem.to_str()).map(created_at_of))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let id = new_key_id(complianceiq_kit::auth::verifier::now_seconds().max(newest + 1));
        let path: PathBuf = dir.join(format!("{id}.pem"));
        write_private(&path, der_to_pem(der.as_bytes()).as_bytes())
            .map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        Ok(id)
    }

    /// The newest key.
    pub fn active(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The key that signs tokens at `now`: the newest one published for at least
    /// [`PUBLISHED_BEFORE_SIGNING`] seconds, so every verifier can have fetched it (they
    /// refetch for an unknown key at most once a second) before a token names it; the
    /// newest while none is that old (a first key).
    pub fn signing_key(&self, now: i64) -> &SigningKey {
        self.keys
            .iter()
            .find(|key| key.created_at == 0 || key.created_at + PUBLISHED_BEFORE_SIGNING <= now)
            .unwrap_or(&self.keys[0])
    }

    /// A public key by id, if it is still published.
    pub fn public_key(&self, id: &str, now: i64) -> Option<&PublicKey> {
        self.published(now).find(|key| key.id == id).map(|key| &key.public)
    }

    fn published(&self, now: i64) -> impl Iterator<Item = &SigningKey> {
        let horizon = jwt::ACCESS_TOKEN_SECONDS + jwt::LEEWAY_SECONDS;
        // keys[i] was superseded when keys[i - 1] appeared; its tokens live a lifetime longer.
        self.keys
            .iter()
            .enumerate()
            .filter(move |(index, _)| {
                *index == 0 || self.keys[index - 1].created_at == 0 || now - self.keys[index - 1].created_at <= horizon
            })
            .map(|(_, key)| key)
    }

    /// The JSON Web Key Set.
    pub fn jwks(&self, now: i64) -> Vec<JsonWebKey> {
        self.published(now)
            .map(|key| JsonWebKey {
                kty: "RSA".into(),
                kid: key.id.clone(),
                r#use: "sig".into(),
                alg: "RS256".into(),
                n: key.public.n_base64(),
                e: key.public.e_base64(),
            })
            .collect()
    }
}

/// The key ring of a directory, re-read when the directory changes (a key added or removed),
/// checked at most once a second, so a rotation takes effect within a second everywhere.
pub struct KeyStore {
    dir: std::path::PathBuf,
    ring: std::sync::RwLock<std::sync::Arc<KeyRing>>,
    checked: std::sync::Mutex<(std::time::Instant, Option<std::time::SystemTime>)>,
}

impl KeyStore {
    /// Loads the directory.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let modified = std::fs::metadata(dir).and_then(|meta| meta.modified()).ok();
        Ok(Self {
            dir: dir.to_path_buf(),
            ring: std::sync::RwLock::new(std::sync::Arc::new(KeyRing::load(dir)?)),
            checked: std::sync::Mutex::new((std::time::Instant::now(), modified)),
        })
    }

    /// The current keys.
    pub fn current(&self) -> std::sync::Arc<KeyRing> {
        self.reload_if_changed();
        self.ring.read().map(|ring| ring.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn reload_if_changed(&self) {
        let Ok(mut checked) = self.checked.try_lock() else { return };
        if checked.0.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        checked.0 = std::time::Instant::now();
        let modified = std::fs::metadata(&self.dir).and_then(|meta| meta.modified()).ok();
        if modified == checked.1 {
            return;
        }
        match KeyRing::load(&self.dir) {
            Ok(ring) => {
                checked.1 = modified;
                if let Ok(mut current) = self.ring.write() {
                    *current = std::sync::Arc::new(ring);
                }
                tracing::info!(dir = %self.dir.display(), "JWT signing keys reloaded");
            }
            Err(error) => tracing::error!(%error, "reloading JWT signing keys; keeping the previous ones"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_encode_their_creation_time() {
        for now in [0, 1_764_108_000, 1_795_000_123] {
            let id = new_key_id(now);
            assert_eq!(created_at_of(&id), now, "{id}");
        }
        assert_eq!(&new_key_id(1_764_108_000)[..16], "20251125T220000Z");
    }

    #[test]
    fn the_newest_key_signs_and_old_keys_stay_published_for_a_token_lifetime() {
        let dir = std::env::temp_dir().join(format!("ciq-keys-{}", uuid::Uuid::new_v4().simple()));
        let first = KeyRing::generate_into(&dir).unwrap();
        // A second key "created" a little later: rename so the id sorts after and carries a time.
        let second = KeyRing::generate_into(&dir).unwrap();
        let later = new_key_id(created_at_of(&first) + 60);
        std::fs::rename(dir.join(format!("{second}.pem")), dir.join(format!("{later}.pem"))).unwrap();

        let ring = KeyRing::load(&dir).unwrap();
        assert_eq!(ring.active().id, later);
        let switched = created_at_of(&later);
        let kids = |now| ring.jwks(now).into_iter().map(|key| key.kid).collect::<Vec<_>>();
        assert_eq!(kids(switched + 60), [later.clone(), first.clone()], "the old key still verifies");
        assert_eq!(kids(switched + jwt::ACCESS_TOKEN_SECONDS + jwt::LEEWAY_SECONDS + 1), std::slice::from_ref(&later));
        // Published first, signing after: the old key signs until the new one is two seconds old.
        assert_eq!(ring.signing_key(switched).id, first);
        assert_eq!(ring.signing_key(switched + PUBLISHED_BEFORE_SIGNING).id, later);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
