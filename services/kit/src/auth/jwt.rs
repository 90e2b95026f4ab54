//! JSON Web Tokens, RS256 only (RFC 7519 / 7515), on ring. Verification accepts exactly one
//! algorithm and one issuer, requires a known key id, and checks time claims with a small
//! leeway for clock skew. Anything else — `alg: none`, HMAC, unknown keys, bad signatures,
//! malformed encodings — is refused before the payload is trusted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};

/// The `iss` of every access token.
pub const ISSUER: &str = "complianceiq-auth-service";
/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// Lifetime of a staff access token: cross-tenant power is held briefly.
pub const STAFF_ACCESS_TOKEN_SECONDS: i64 = 10 * 60;
/// Clock skew tolerated between services, seconds.
pub const LEEWAY_SECONDS: i64 = 10;
/// Longest token accepted; real ones are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims of an access token: exactly the design's, plus `jti`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub user_id: String,
    /// The organization the token is scoped to; `null` when the person belongs to none.
    pub organization_id: Option<String>,
    /// The user's email.
    pub email: String,
    /// Role names in that organization.
    pub roles: Vec<String>,
    /// Effective permissions in that organization.
    pub permissions: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Unique token id, for revocation.
    pub jti: String,
    /// Not-before; never issued by us, honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Platform staff (Super Admin): no organization, no permissions; only the contracts'
    /// `staff` RPCs take it. Absent from every tenant token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staff: bool,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token uses algorithm {0:?}; only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the access token was signed with an unknown key")]
    UnknownKey(String),
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token has expired; refresh it")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token was not issued by ComplianceIQ")]
    WrongIssuer,
    #[error("the access token was revoked")]
    Revoked,
}

impl TokenError {
    /// Stable reason for `google.rpc.ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::UnsupportedAlgorithm(_) => "TOKEN_ALGORITHM_NOT_ALLOWED",
            Self::UnknownKey(_) => "TOKEN_KEY_UNKNOWN",
            Self::BadSignature => "TOKEN_SIGNATURE_INVALID",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::WrongIssuer => "TOKEN_ISSUER_INVALID",
            Self::Revoked => "TOKEN_REVOKED",
        }
    }
}

/// A public key as published in the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// Key id.
    pub kid: String,
    /// Modulus, big-endian.
    pub n: Vec<u8>,
    /// Exponent, big-endian.
    pub e: Vec<u8>,
}

impl PublicKey {
    /// The public half of a key pair.
    pub fn of(kid: &str, pair: &RsaKeyPair) -> Self {
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        Self { kid: kid.to_string(), n: components.n, e: components.e }
    }

    /// From JWK fields (`n`, `e` base64url).
    pub fn from_jwk(kid: &str, n: &str, e: &str) -> Result<Self, TokenError> {
        let decode = |text: &str| URL_SAFE_NO_PAD.decode(text).map_err(|_| TokenError::Malformed);
        Ok(Self { kid: kid.to_string(), n: decode(n)?, e: decode(e)? })
    }

    /// `n` as a JWK field.
    pub fn n_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.n)
    }

    /// `e` as a JWK field.
    pub fn e_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.e)
    }
}

fn encode_json<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("claims serialize"))
}

/// Signs `claims` with `pair`, naming `kid` in the header.
pub fn sign(claims: &Claims, kid: &str, pair: &RsaKeyPair) -> String {
    let header = Header { alg: "RS256".into(), typ: Some("JWT".into()), kid: Some(kid.to_string()) };
    let signing_input = format!("{}.{}", encode_json(&header), encode_json(claims));
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .expect("RSA signing with a valid key");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut pieces = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text).map_err(|_| TokenError::Malformed);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
    Ok(Parts {
        header,
        signing_input: &token[..token.len() - signature.len() - 1],
        payload: decode(payload)?,
        signature: decode(signature)?,
    })
}

/// The key id a token names, checking only its shape and algorithm (to pick or fetch keys).
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let parts = split(token)?;
    if parts.header.alg != "RS256" {
        return Err(TokenError::UnsupportedAlgorithm(parts.header.alg));
    }
    parts.header.kid.filter(|kid| !kid.is_empty()).ok_or(TokenError::Malformed)
}

/// Verifies signature, issuer and time claims; `now` in seconds since the epoch.
pub fn verify<'k>(token: &str, key: impl Fn(&str) -> Option<&'k PublicKey>, now: i64) -> Result<Claims, TokenError> {
    let parts = split(token)?;
    if parts.header.alg != "RS256" {
        return Err(TokenError::UnsupportedAlgorithm(parts.header.alg));
    }
    let kid = parts.header.kid.filter(|kid| !kid.is_empty()).ok_or(TokenError::Malformed)?;
    let public = key(&kid).ok_or(TokenError::UnknownKey(kid))?;
    RsaPublicKeyComponents { n: public.n.as_slice(), e: public.e.as_slice() }
        .verify(&RSA_PKCS1_2048_8192_SHA256, parts.signing_input.as_bytes(), &parts.signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = serde_json::from_slice(&parts.payload).map_err(|_| TokenError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(TokenError::WrongIssuer);
    }
    if claims.exp <= now - LEEWAY_SECONDS {
        return Err(TokenError::Expired);
    }
    if claims.iat > now + LEEWAY_SECONDS || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
        return Err(TokenError::NotYetValid);
    }
    if claims.jti.is_empty() || claims.user_id.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(claims)
}
