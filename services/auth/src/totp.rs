//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the
//! parameters every authenticator app accepts, with the secret in base32 (RFC 4648).

use ring::hmac;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Steps of clock drift accepted either side.
const DRIFT_STEPS: i64 = 1;
/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The code for one time step.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let digest = hmac::sign(&key, &(step as u64).to_be_bytes());
    let digest = digest.as_ref();
    let offset = (digest[19] & 0x0f) as usize;
    let binary =
        u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", binary % 1_000_000)
}

/// The step a code matches, within the drift window and after `last_used_step` (a code is
/// good once), or `None`.
pub fn matching_step(secret: &[u8], code: &str, now: i64, last_used_step: Option<i64>) -> Option<i64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP_SECONDS);
    (current - DRIFT_STEPS..=current + DRIFT_STEPS)
        .filter(|step| last_used_step.is_none_or(|last| *step > last))
        .find(|step| complianceiq_kit::crypto::constant_time_eq(code_at(secret, *step).as_bytes(), code.as_bytes()))
}

/// The `otpauth://` URI authenticator apps scan.
pub fn provisioning_uri(secret: &[u8], account: &str) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/ComplianceIQ:{}?secret={}&issuer=ComplianceIQ&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        encode(account),
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 secret "12345678901234567890" (8-digit values truncated to 6).
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(secret, time / STEP_SECONDS), expected, "t={time}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_within_the_drift_window() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let code = code_at(secret, now / STEP_SECONDS);
        let step = matching_step(secret, &code, now + 25, None).expect("within drift");
        assert_eq!(matching_step(secret, &code, now, Some(step)), None, "replayed");
        assert_eq!(matching_step(secret, &code, now + 120, None), None, "too old");
        assert_eq!(matching_step(secret, "12345", now, None), None);
    }

    #[test]
    fn base32_follows_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = provisioning_uri(b"12345678901234567890", "ada+ops@example.com");
        assert!(uri.starts_with("otpauth://totp/ComplianceIQ:ada%2Bops@example.com?secret=GEZDGNBV"));
    }
}
