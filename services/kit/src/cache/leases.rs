//! Rate limits checked in the process against budgets leased from the shared store in
//! batches: a request usually costs no network call. A lease takes several requests' worth
//! of the limit at once (atomically, in Redis), so the limit still holds across replicas
//! and never admits more than it allows. The stated error is the other way: cells a process
//! leased and did not use within [`LEASE_LIFETIME`] are lost, so a client may be refused up
//! to `batch − 1` requests early per process and second. Small limits (under 128 per period)
//! are not batched and stay exact. A refusal is also kept until its retry time, so a client
//! over its limit costs no store call either.
//!
//! The shared store is not a single point of failure: while it cannot be reached, each
//! process enforces every limit on its own budget (so across `n` replicas a client may get up
//! to `n` times its limit), asks the store again after [`STORE_RETRY`], and says so in the
//! log and in the `dependency_degraded{dependency="redis"}` metric.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Cache, MemoryCache, RateDecision};
use crate::metrics::Metrics;

/// How long leased cells may be used.
pub const LEASE_LIFETIME: Duration = Duration::from_secs(1);
/// How long per-process budgets are used after the shared store failed before asking it again.
pub const STORE_RETRY: Duration = Duration::from_secs(1);
/// Longest a request waits for the shared store before deciding on its own: a store that
/// stopped answering must not stall the edge.
const STORE_PATIENCE: Duration = Duration::from_millis(300);
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
    /// Per-process budgets, used while the shared store is unreachable.
    local: MemoryCache,
    /// Until when the shared store is not asked (it failed); `None` while it answers.
    store_failed_until: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl LeasedLimits {
    /// Leases from `cache`; reports falling back to per-process budgets into `metrics`.
    pub fn new(cache: Arc<dyn Cache>, metrics: Arc<Metrics>) -> Self {
        Self {
            cache,
            leases: Mutex::default(),
            local: MemoryCache::new(),
            store_failed_until: Mutex::default(),
            metrics,
        }
    }

    /// One request against `limit` per `period` on `key`.
    pub async fn check(&self, key: &str, limit: u32, period: Duration) -> RateDecision {
        let now = Instant::now();
        if !self.may_ask_store(now) {
            return self.decide_locally(key, limit, period).await;
        }
        let batch = batch_for(limit);
        if batch > 1
            && let Some(decision) = self.take_leased(key, now)
        {
            return decision;
        }
        let asked = tokio::time::timeout(STORE_PATIENCE, self.cache.rate_limit_cells(key, limit, period, batch)).await;
        let (taken, decision) = match asked {
            Ok(Ok(answer)) => {
                self.store_answered();
                answer
            }
            Ok(Err(error)) => {
                self.store_failed(now, &error.to_string());
                return self.decide_locally(key, limit, period).await;
            }
            Err(_) => {
                self.store_failed(now, "no answer within the patience of a request");
                return self.decide_locally(key, limit, period).await;
            }
        };
        let lease = match taken {
            // A refusal stands until its retry time (the limit's state only moves forward):
            // repeated requests are refused here without asking the store.
            0 if batch > 1 => Lease { cells: 0, used: 0, until: now + decision.retry_after, decision },
            0 | 1 => return decision,
            _ => Lease { cells: taken - 1, used: 0, until: now + LEASE_LIFETIME, decision },
        };
        let mut leases = self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if leases.len() >= LEASES_KEPT {
            leases.clear();
        }
        leases.insert(key.to_string(), lease);
        decision
    }

    /// Whether this request asks the shared store. While it is failing, one request per
    /// [`STORE_RETRY`] asks (the others decide locally rather than all wait on a dead store).
    fn may_ask_store(&self, now: Instant) -> bool {
        let mut failed_until = self.store_failed_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match *failed_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) => {
                *failed_until = Some(now + STORE_RETRY);
                true
            }
        }
    }

    fn store_failed(&self, now: Instant, error: &str) {
        let mut failed_until = self.store_failed_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failed_until.is_none() {
            tracing::warn!(
                %error,
                "the shared rate-limit store is unreachable; limits are enforced per process until it answers"
            );
            self.metrics.set_degraded("redis", true);
        }
        *failed_until = Some(now + STORE_RETRY);
    }

    fn store_answered(&self) {
        let mut failed_until = self.store_failed_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failed_until.take().is_some() {
            tracing::info!("the shared rate-limit store answers again; limits are shared across processes");
            self.metrics.set_degraded("redis", false);
        }
    }

    async fn decide_locally(&self, key: &str, limit: u32, period: Duration) -> RateDecision {
        self.metrics.record_local_rate_decision();
        // The in-process store cannot fail.
        let answer = self.local.rate_limit(key, limit, period).await;
        answer.unwrap_or(RateDecision {
            allowed: true,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
        })
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
    use crate::cache::CacheError;

    fn metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new())
    }

    /// Counts the store's rate-limit calls; fails them while `down`.
    struct Counting {
        inner: MemoryCache,
        calls: std::sync::atomic::AtomicU32,
        down: std::sync::atomic::AtomicBool,
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
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(CacheError("connection refused".into()));
            }
            self.inner.rate_limit_cells(key, limit, period, cells).await
        }
        fn kind(&self) -> &'static str {
            "counting"
        }
    }

    #[tokio::test]
    async fn leases_never_admit_more_than_the_limit_across_processes_and_save_calls() {
        let store =
            Arc::new(Counting { inner: MemoryCache::new(), calls: Default::default(), down: Default::default() });
        let period = Duration::from_secs(3600);
        let limit = 640; // batches of 10
        // Two processes sharing one store.
        let (first, second) =
            (LeasedLimits::new(store.clone(), metrics()), LeasedLimits::new(store.clone(), metrics()));
        let mut admitted = 0;
        for round in 0..2000 {
            let limits = if round % 3 == 0 { &second } else { &first };
            if limits.check("client", limit, period).await.allowed {
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
        let limits = LeasedLimits::new(store, metrics());
        let period = Duration::from_secs(3600);
        let admitted = {
            let mut admitted = 0;
            for _ in 0..10 {
                admitted += u32::from(limits.check("tight", 6, period).await.allowed);
            }
            admitted
        };
        assert_eq!(admitted, 6);
    }

    #[tokio::test]
    async fn a_lost_store_leaves_per_process_budgets_then_sharing_resumes() {
        let store =
            Arc::new(Counting { inner: MemoryCache::new(), calls: Default::default(), down: Default::default() });
        let metrics = metrics();
        let limits = LeasedLimits::new(store.clone(), metrics.clone());
        let period = Duration::from_secs(3600);
        assert!(limits.check("client", 6, period).await.allowed);
        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        // Still limited, on this process's own budget of the same limit.
        let admitted = {
            let mut admitted = 0;
            for _ in 0..10 {
                admitted += u32::from(limits.check("client", 6, period).await.allowed);
            }
            admitted
        };
        assert_eq!(admitted, 6, "the full limit per process while the store is down");
        let text = metrics.encode();
        assert!(text.contains("dependency_degraded{dependency=\"redis\"} 1"), "{text}");
        assert!(text.contains("rate_limit_local_decisions_total 10"), "{text}");
        let asked = store.calls.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(asked, 2, "the failed store is not asked again within a second");

        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(STORE_RETRY).await;
        assert!(limits.check("other", 6, period).await.allowed);
        assert!(metrics.encode().contains("dependency_degraded{dependency=\"redis\"} 0"));
    }
}
