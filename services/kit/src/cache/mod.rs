//! The cache and revocation store: short-lived keys with a time to live. Redis in
//! production, so every replica sees a revoked token or a rate-limit counter; a map in
//! the process in dev.

mod memory;
mod redis;

use std::time::Duration;

use tonic::async_trait;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

/// Cache failures.
#[derive(Debug, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(pub String);

impl From<CacheError> for crate::error::ApiError {
    fn from(error: CacheError) -> Self {
        crate::error::ApiError::Unavailable {
            reason: "CACHE_UNAVAILABLE",
            message: "a dependency is unavailable; try again".into(),
            retry_after: Some(Duration::from_secs(1)),
        }
        .log_cause(&error)
    }
}

/// Key-value storage with expiry. Keys are namespaced by the implementation.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The value, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores a value for `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// Stores a value only if the key is absent; true when stored. Atomic across replicas
    /// (single-use tokens, locks).
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;

    /// Removes a key; true when it existed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;

    /// Adds one to a counter and returns the new value. The first increment starts the
    /// counter's `ttl` (a fixed window), later ones do not extend it.
    async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError>;

    /// `redis` or `in-process`, for start-up messages.
    fn kind(&self) -> &'static str;
}
