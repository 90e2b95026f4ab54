//! Passwords: a policy in the spirit of NIST SP 800-63B (length and a deny list rather than
//! composition rules), and argon2id hashing with OWASP's parameters. Hashing is slow on
//! purpose, so it runs on the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use complianceiq_kit::error::{ApiError, FieldViolations};

/// Shortest password, in characters.
pub const MIN_LENGTH: usize = 12;
/// Longest password: hashing cost grows with length, so very long inputs are refused.
pub const MAX_LENGTH: usize = 128;

/// Passwords too common to allow however long they are (a short sample of breach lists).
const COMMON: &[&str] = &[
    "password1234",
    "password12345",
    "123456789012",
    "1234567890123",
    "qwertyuiopas",
    "qwerty123456",
    "iloveyou1234",
    "administrator",
    "welcome12345",
    "letmein12345",
    "passw0rd1234",
    "changeme1234",
    "complianceiq",
    "complianceiq1",
    "servicenow123",
    "abcdefghijkl",
    "aaaaaaaaaaaa",
    "111111111111",
];

/// Checks a new password; `email` is the account's, which the password must not contain.
pub fn check(field: &str, password: &str, email: &str, violations: &mut FieldViolations) {
    let length = password.chars().count();
    if password.is_empty() {
        violations.required(field);
        return;
    }
    if length < MIN_LENGTH {
        violations.add(field, "TOO_SHORT", format!("{field} must have at least {MIN_LENGTH} characters"));
    } else if length > MAX_LENGTH {
        violations.add(field, "TOO_LONG", format!("{field} must have at most {MAX_LENGTH} characters"));
        return;
    }
    let lower = password.to_lowercase();
    let distinct: std::collections::BTreeSet<char> = lower.chars().collect();
    if length >= MIN_LENGTH && distinct.len() < 5 {
        violations.add(field, "TOO_SIMPLE", format!("{field} must use at least 5 different characters"));
    }
    if COMMON.contains(&lower.as_str()) {
        violations.add(field, "TOO_COMMON", format!("{field} is a commonly used password; choose another"));
    }
    let local = email.split('@').next().unwrap_or_default();
    if local.len() >= 3 && lower.contains(local) {
        violations.add(field, "CONTAINS_EMAIL", format!("{field} must not contain the email address"));
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP: argon2id, 19 MiB, 2 iterations, 1 lane.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid params"))
}

/// Hashes a password (PHC string with salt and parameters).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&complianceiq_kit::crypto::random_bytes(16)).map_err(|e| e.to_string())?;
        hasher().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(format!("password hashing task: {e}")))?
    .map_err(|e| ApiError::internal(format!("password hashing: {e}")))
}

/// Whether `password` matches `stored`. Takes as long for a wrong password as a right one.
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| e.to_string())?;
        Ok::<bool, String>(hasher().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| ApiError::internal(format!("password verification task: {e}")))?
    .map_err(|e| ApiError::internal(format!("stored password hash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(password: &str) -> Vec<String> {
        let mut violations = FieldViolations::default();
        check("password", password, "ada@example.com", &mut violations);
        match violations.check() {
            Ok(()) => vec![],
            Err(error) => error.field_violations().iter().map(|v| v.reason.clone()).collect(),
        }
    }

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert_eq!(reasons(""), ["REQUIRED"]);
        assert_eq!(reasons("short1!"), ["TOO_SHORT"]);
        assert_eq!(reasons(&"ab1!x".repeat(30)), ["TOO_LONG"]);
        assert_eq!(reasons("aaaabbbbcccc"), ["TOO_SIMPLE"]);
        assert_eq!(reasons("Password1234"), ["TOO_COMMON"]);
        assert_eq!(reasons("my-ada-password-long"), ["CONTAINS_EMAIL"]);
        assert!(reasons("correct horse battery staple").is_empty());
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let stored = hash("correct horse battery staple".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple".into(), stored.clone()).await.unwrap());
        assert!(!verify("correct horse battery stapler".into(), stored).await.unwrap());
    }
}
