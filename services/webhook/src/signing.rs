//! Standard Webhooks signatures: a secret is `whsec_` and the base64 of its key; a message is
//! signed as `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`, and
//! the `webhook-signature` header holds one such signature per secret in use, separated by
//! spaces, so a receiver holding either the new or the previous secret verifies during a
//! rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use complianceiq_kit::crypto::{hmac_sha256, random_bytes};

const PREFIX: &str = "whsec_";
/// Key lengths the specification allows.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Bytes of a generated key.
const GENERATED_KEY_BYTES: usize = 32;

/// A fresh secret.
pub fn generate_secret() -> String {
    format!("{PREFIX}{}", STANDARD.encode(random_bytes(GENERATED_KEY_BYTES)))
}

/// The key of a secret, or what is wrong with it.
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(PREFIX).ok_or_else(|| format!("a secret starts with {PREFIX}"))?;
    let key = STANDARD.decode(encoded).map_err(|_| format!("after {PREFIX}, a secret is standard base64"))?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(format!(
            "a secret's key is {} to {} bytes; this one has {}",
            KEY_BYTES.start(),
            KEY_BYTES.end(),
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header of a message under each of `keys`.
pub fn signature_header(keys: &[Vec<u8>], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(message_id.len() + body.len() + 24);
    signed.extend_from_slice(message_id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    keys.iter().map(|key| format!("v1,{}", STANDARD.encode(hmac_sha256(key, &signed)))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_librarys_signature() {
        // The vector of the Standard Webhooks Rust library's own tests.
        let key = key_of("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature_header(&[key], "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_are_checked_and_generated_well_formed() {
        let generated = generate_secret();
        assert_eq!(key_of(&generated).unwrap().len(), GENERATED_KEY_BYTES);
        assert_ne!(generated, generate_secret());
        for bad in ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="] {
            assert!(key_of(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_key_signs() {
        let (old, new) = (vec![1; 32], vec![2; 32]);
        let header = signature_header(&[new.clone(), old.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [signature_header(&[new], "id", 1, b"{}"), signature_header(&[old], "id", 1, b"{}")]);
    }
}
