//! Encryption of secrets at rest (MFA seeds, ServiceNow credentials, webhook secrets):
//! AES-256-GCM with a random nonce, tagged with the key id so keys can rotate. The first
//! configured key encrypts; every configured key decrypts.
//!
//! Stored form: `v1:<key id>:<base64url(nonce || ciphertext || tag)>`. The associated data
//! binds a ciphertext to its purpose and owner (say `mfa:<user id>`), so one secret cannot be
//! copied into another row and decrypt there.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

use crate::crypto::random_bytes;

/// Errors of key loading and decryption.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Malformed key configuration.
    #[error("encryption keys: {0}")]
    Keys(String),
    /// The ciphertext is malformed, tampered with, bound to other data, or its key is gone.
    #[error("cannot decrypt a stored secret: {0}")]
    Decrypt(&'static str),
}

struct Key {
    id: String,
    key: LessSafeKey,
    /// For keyed hashes: derived from the key, never used to encrypt.
    mac: hmac::Key,
}

/// The configured keys.
pub struct SecretBox {
    keys: Vec<Key>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("SecretBox").field("key_ids", &ids).finish()
    }
}

impl SecretBox {
    /// Parses `id:base64key,id:base64key`.
    pub fn from_config(value: &str) -> Result<Self, SecretError> {
        let mut keys = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| SecretError::Keys("each key is <key id>:<base64 of 32 bytes>".into()))?;
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(SecretError::Keys(format!("key id {id:?} must be letters, digits, - or _")));
            }
            let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Keys(format!("key {id} is not base64")))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| SecretError::Keys(format!("key {id} must be 32 bytes")))?;
            if keys.iter().any(|key: &Key| key.id == id) {
                return Err(SecretError::Keys(format!("key id {id} appears twice")));
            }
            let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &bytes), b"complianceiq keyed hash v1");
            let mac = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
            keys.push(Key { id: id.to_string(), key: LessSafeKey::new(unbound), mac });
        }
        if keys.is_empty() {
            return Err(SecretError::Keys("no key configured".into()));
        }
        Ok(Self { keys })
    }

    /// Reads the dev key file, creating it with a fresh key the first time.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        if !path.exists() {
            let id = format!("dev{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let line = format!("{id}:{}", STANDARD.encode(random_bytes(32)));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| SecretError::Keys(format!("{}: {e}", parent.display())))?;
            }
            write_private(path, line.as_bytes()).map_err(|e| SecretError::Keys(format!("{}: {e}", path.display())))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::Keys(format!("{}: {e}", path.display())))?;
        Self::from_config(&text.lines().collect::<Vec<_>>().join(","))
    }

    /// Encrypts `plaintext`, bound to `associated_data`.
    pub fn seal(&self, plaintext: &[u8], associated_data: &str) -> String {
        let key = &self.keys[0];
        let nonce_bytes = random_bytes(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).expect("nonce length");
        let mut sealed = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
            .expect("AES-GCM sealing cannot fail for in-memory data");
        let mut blob = nonce_bytes;
        blob.extend_from_slice(&sealed);
        format!("v1:{}:{}", key.id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same associated data.
    pub fn open(&self, stored: &str, associated_data: &str) -> Result<Vec<u8>, SecretError> {
        let mut parts = stored.splitn(3, ':');
        let (Some("v1"), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Decrypt("unknown format"));
        };
        let key = self.keys.iter().find(|key| key.id == id).ok_or(SecretError::Decrypt("its key is not configured"))?;
        let blob = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SecretError::Decrypt("not base64"))?;
        if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SecretError::Decrypt("too short"));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Decrypt("bad nonce"))?;
        let mut sealed = sealed.to_vec();
        let plaintext = key
            .key
            .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Decrypt("authentication failed"))?;
        Ok(plaintext.to_vec())
    }

    /// A keyed hash (HMAC-SHA256 under a key derived from the current key) of `value` in
    /// `context`, for secrets that are checked, never read back (recovery codes): a stolen
    /// database alone cannot test guesses against it. Stored form `k1:<key id>:<hex>`.
    pub fn keyed_hash(&self, value: &[u8], context: &str) -> String {
        Self::keyed_hash_with(&self.keys[0], value, context)
    }

    /// The keyed hash of `value` under every configured key, the current one first: what a
    /// stored hash may equal after a rotation.
    pub fn keyed_hashes(&self, value: &[u8], context: &str) -> Vec<String> {
        self.keys.iter().map(|key| Self::keyed_hash_with(key, value, context)).collect()
    }

    fn keyed_hash_with(key: &Key, value: &[u8], context: &str) -> String {
        let mut context_ctx = hmac::Context::with_key(&key.mac);
        // Length-prefixed, so (context, value) pairs cannot collide by shifting bytes.
        context_ctx.update(&(context.len() as u64).to_be_bytes());
        context_ctx.update(context.as_bytes());
        context_ctx.update(value);
        let tag = context_ctx.sign();
        let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
        format!("k1:{}:{hex}", key.id)
    }

    /// The id of the key that encrypts.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// `stored` encrypted again under the current key, if another key encrypted it.
    pub fn reseal(&self, stored: &str, associated_data: &str) -> Result<Option<String>, SecretError> {
        if !self.needs_rotation(stored) {
            return Ok(None);
        }
        let plaintext = self.open(stored, associated_data)?;
        Ok(Some(self.seal(&plaintext, associated_data)))
    }

    /// Whether `stored` was encrypted with a key other than the current one (re-encrypt it).
    pub fn needs_rotation(&self, stored: &str) -> bool {
        stored.split(':').nth(1) != Some(self.keys[0].id.as_str())
    }
}

/// Writes a file readable by its owner only (keys).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> String {
        format!("{id}:{}", STANDARD.encode(random_bytes(32)))
    }

    #[test]
    fn secrets_round_trip_and_are_bound_to_their_context() {
        let secrets = SecretBox::from_config(&key("k1")).unwrap();
        let sealed = secrets.seal(b"JBSWY3DPEHPK3PXP", "mfa:user-1");
        assert!(sealed.starts_with("v1:k1:"));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(secrets.open(&sealed, "mfa:user-1").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(secrets.open(&sealed, "mfa:user-2").is_err(), "bound to its owner");
        let mut tampered = sealed.clone();
        tampered.replace_range(sealed.len() - 2.., "AA");
        assert!(secrets.open(&tampered, "mfa:user-1").is_err());
        assert_ne!(secrets.seal(b"x", "a"), secrets.seal(b"x", "a"), "random nonces");
    }

    #[test]
    fn old_keys_still_decrypt_after_rotation() {
        let old = key("old");
        let before = SecretBox::from_config(&old).unwrap();
        let sealed = before.seal(b"secret", "ctx");
        let after = SecretBox::from_config(&format!("{},{old}", key("new"))).unwrap();
        assert_eq!(after.open(&sealed, "ctx").unwrap(), b"secret");
        assert!(after.needs_rotation(&sealed));
        assert!(!after.needs_rotation(&after.seal(b"secret", "ctx")));
        let dropped = SecretBox::from_config(&key("new")).unwrap();
        assert!(dropped.open(&sealed, "ctx").is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_key_context_and_value() {
        let old = key("old");
        let before = SecretBox::from_config(&old).unwrap();
        let hash = before.keyed_hash(b"ABCD-EFGH", "recovery:u1");
        assert!(hash.starts_with("k1:old:") && hash.len() == "k1:old:".len() + 64);
        assert_eq!(hash, before.keyed_hash(b"ABCD-EFGH", "recovery:u1"), "deterministic");
        assert_ne!(hash, before.keyed_hash(b"ABCD-EFGH", "recovery:u2"), "bound to its context");
        assert_ne!(hash, before.keyed_hash(b"ABCD-EFGI", "recovery:u1"));
        let other = SecretBox::from_config(&key("old")).unwrap();
        assert_ne!(hash, other.keyed_hash(b"ABCD-EFGH", "recovery:u1"), "another key, another hash");
        let rotated = SecretBox::from_config(&format!("{},{old}", key("new"))).unwrap();
        assert!(rotated.keyed_hashes(b"ABCD-EFGH", "recovery:u1").contains(&hash), "old hashes still match");
    }

    #[test]
    fn bad_key_configuration_is_refused() {
        for bad in [
            "",
            "nokey",
            "k:notbase64!",
            &format!("k:{}", STANDARD.encode([0u8; 16])),
            &format!("{},{}", key("a"), key("a")),
        ] {
            assert!(SecretBox::from_config(bad).is_err(), "{bad:?}");
        }
    }
}
