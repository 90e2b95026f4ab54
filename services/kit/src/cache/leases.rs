//! Rate limits checked in the process against budgets leased from the shared store in
//! batches: a request usually costs no network call. A lease takes several requests' worth
//! of the limit at once (atomically, in Redis), so the limit still holds across replicas
//! and never admits more than it allows. The stated error is the other way: cells a process
//! leased and did not use within [`LEASE_LIFETIME`] are lost, so a client may be refused up
//! to `batch − 1` requests early per process and second. Small limits (under 128 per period)
//! are not batched and stay exact. A refusal is also kept until its retry time, so a client
//! over its limit costs no store call either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Cache, CacheError, RateDecision};

/// How long leased cells may be used.
pub const LEASE_LIFETIME: Duration = Duration::from_secs(1);
/// Most cells one lease takes.
const MAX_BATCH: u32 = 32;
/// Leases kept at most; past that the map starts over (the leased cells are lost, which only
/// ever refuses early).
const LEASES_KEPT: usize = 100_000;

/// Cells a lease takes for a limit: a 64th of it, 1 to 32.
pub fn batch_for(limit: u32) -> u32 {
    (limit / 64).clamp(1, MAX_BATCH)
}

struct Lease {
    cells: u32,
    used: u32,
    until: Instant,
    decision: RateDecision,
}

/// Leased rate limits of one process.
pub struct LeasedLimits {
    cache: Arc<dyn Cache>,
    leases: Mutex<HashMap<String, Lease>>,
}

impl LeasedLimits {
    /// Leases from `cache`.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache, leases: Mutex::default() }
    }

    /// One request against `limit` per `period` on `key`.
    pub async fn check(&self, key: &str, limit: u32, period: Duration) -> Result<RateDecision, CacheError> {
        let batch = batch_for(limit);
        if batch == 1 {
            return self.cache.rate_limit(key, limit, period).await;
        }
        let now = Instant::now();
        if let Some(decision) = self.take_leased(key, now) {
            return Ok(decision);
        }
        let (taken, decision) = self.cache.rate_limit_cells(key, limit, period, batch).await?;
        let lease = match taken {
            // A refusal stands until its retry time (the limit's state only moves forward):
            // repeated requests are refused here without asking the store.
            0 => Lease { cells: 0, used: 0, until: now + decision.retry_after, decision },
            1 => return Ok(decision),
            _ => Lease { cells: taken - 1, used: 0, until: now + LEASE_LIFETIME, decision },
        };
        let mut leases = self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if leases.len() >= LEASES_KEPT {
            leases.clear();
        }
        leases.insert(key.to_string(), lease);
        Ok(decision)
    }

    fn take_leased(&self, key: &str, now: Instant) -> Option<RateDecision> {
        let mut leases = self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lease = leases.get_mut(key).filter(|lease| now < lease.until)?;
        if !lease.decision.allowed {
            let retry_after = lease.until.saturating_duration_since(now);
            return Some(RateDecision { retry_after, ..lease.decision });
        }
        if lease.cells == 0 {
            return None;
        }
        lease.cells -= 1;
        lease.used += 1;
        // The lease's decision counted its cells as still available; each use takes one.
        Some(RateDecision { remaining: lease.decision.remaining.saturating_sub(lease.used), ..lease.decision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    /// Counts the store's rate-limit calls.
    struct Counting {
        inner: MemoryCache,
        calls: std::sync::atomic::AtomicU32,
    }

    #[tonic::async_trait]
    impl Cache for Counting {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            self.inner.get(key).await
        }
        async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
            self.inner.set(key, value, ttl).await
        }
        async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
            self.inner.set_if_absent(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<bool, CacheError> {
            self.inner.delete(key).await
        }
        async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
            self.inner.increment(key, ttl).await
        }
        async fn rate_limit_cells(
            &self,
            key: &str,
            limit: u32,
            period: Duration,
            cells: u32,
        ) -> Result<(u32, RateDecision), CacheError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.rate_limit_cells(key, limit, period, cells).await
        }
        fn kind(&self) -> &'static str {
            "counting"
        }
    }

    #[tokio::test]
    async fn leases_never_admit_more_than_the_limit_across_processes_and_save_calls() {
        let store = Arc::new(Counting { inner: MemoryCache::new(), calls: Default::default() });
        let period = Duration::from_secs(3600);
        let limit = 640; // batches of 10
        // Two processes sharing one store.
        let (first, second) = (LeasedLimits::new(store.clone()), LeasedLimits::new(store.clone()));
        let mut admitted = 0;
        for round in 0..2000 {
            let limits = if round % 3 == 0 { &second } else { &first };
            if limits.check("client", limit, period).await.unwrap().allowed {
                admitted += 1;
            }
        }
        assert!(admitted <= limit, "admitted {admitted} of {limit}");
        assert!(admitted >= limit - 2 * (batch_for(limit) - 1), "at most a batch per process lost: {admitted}");
        let calls = store.calls.load(std::sync::atomic::Ordering::SeqCst);
        // About one per batch while admitting, then one per process while refused.
        assert!(calls < 100, "{calls} store calls for 2000 requests");
    }

    #[tokio::test]
    async fn small_limits_are_exact() {
        let store = Arc::new(MemoryCache::new());
        let limits = LeasedLimits::new(store);
        let period = Duration::from_secs(3600);
        let admitted = {
            let mut admitted = 0;
            for _ in 0..10 {
                admitted += u32::from(limits.check("tight", 6, period).await.unwrap().allowed);
            }
            admitted
        };
        assert_eq!(admitted, 6);
    }
}
