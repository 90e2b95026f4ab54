//! The cache and revocation store: short-lived keys with a time to live. Redis in
//! production, so every replica sees a revoked token or a rate-limit counter; a map in
//! the process in dev.

mod leases;
mod memory;
mod redis;

use std::time::Duration;

use tonic::async_trait;

pub use self::leases::LeasedLimits;
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

    /// One request against a GCRA rate limit of `limit` per `period` (bursts up to `limit`),
    /// atomic across replicas sharing the store.
    async fn rate_limit(&self, key: &str, limit: u32, period: Duration) -> Result<RateDecision, CacheError> {
        Ok(self.rate_limit_cells(key, limit, period, 1).await?.1)
    }

    /// Takes `cells` requests' worth of a GCRA rate limit at once when they fit, else one,
    /// else none: returns how many were taken (0 when refused) and the decision for the
    /// first. Atomic across replicas; what [`LeasedLimits`] leases with.
    async fn rate_limit_cells(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        cells: u32,
    ) -> Result<(u32, RateDecision), CacheError>;

    /// `redis` or `in-process`, for start-up messages.
    fn kind(&self) -> &'static str;
}

/// The outcome of a rate-limited request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// When the limit is fully replenished.
    pub reset_after: Duration,
    /// When to retry, if refused.
    pub retry_after: Duration,
}

/// The generic cell rate algorithm on a stored "theoretical arrival time" (`tat`, in
/// microseconds): each request pushes it by one emission interval; a request that would push
/// it beyond one period ahead of now is refused. Returns the decision and the new `tat`.
pub fn gcra(now: i64, stored_tat: Option<i64>, limit: u32, period: Duration) -> (RateDecision, Option<i64>) {
    let (_, decision, tat) = gcra_cells(now, stored_tat, limit, period, 1);
    (decision, tat)
}

/// [`gcra`] taking `cells` requests at once when they fit, else one: (taken, decision, new tat).
pub fn gcra_cells(
    now: i64,
    stored_tat: Option<i64>,
    limit: u32,
    period: Duration,
    cells: u32,
) -> (u32, RateDecision, Option<i64>) {
    let period = period.as_micros() as i64;
    let interval = (period / i64::from(limit.max(1))).max(1);
    let tat = stored_tat.unwrap_or(now).max(now);
    let batch = i64::from(cells.max(1));
    if batch > 1 && tat + interval * batch - period <= now {
        let new_tat = tat + interval * batch;
        let decision = RateDecision {
            allowed: true,
            remaining: ((period - (new_tat - now)) / interval).max(0) as u32 + cells - 1,
            reset_after: Duration::from_micros((new_tat - now) as u64),
            retry_after: Duration::ZERO,
        };
        return (cells, decision, Some(new_tat));
    }
    let new_tat = tat + interval;
    let allow_at = new_tat - period;
    if allow_at > now {
        let decision = RateDecision {
            allowed: false,
            remaining: 0,
            reset_after: Duration::from_micros((tat - now) as u64),
            retry_after: Duration::from_micros((allow_at - now) as u64),
        };
        return (0, decision, None);
    }
    let remaining = ((period - (new_tat - now)) / interval).max(0) as u32;
    let decision = RateDecision {
        allowed: true,
        remaining,
        reset_after: Duration::from_micros((new_tat - now) as u64),
        retry_after: Duration::ZERO,
    };
    (1, decision, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_a_burst_then_spaces_requests() {
        let period = Duration::from_secs(60);
        let (mut tat, mut now) = (None, 0);
        for expected_remaining in (0..3).rev() {
            let (decision, next) = gcra(now, tat, 3, period);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, unchanged) = gcra(now, tat, 3, period);
        assert!(!refused.allowed && unchanged.is_none());
        assert_eq!(refused.retry_after, Duration::from_secs(20), "one emission interval");
        now += 20_000_000;
        let (decision, _) = gcra(now, tat, 3, period);
        assert!(decision.allowed, "one request per interval after the burst");
    }
}
