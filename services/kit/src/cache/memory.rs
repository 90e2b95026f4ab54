use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::async_trait;

use super::{Cache, CacheError};

/// Entries above which a write first sweeps expired ones, bounding memory.
const SWEEP_THRESHOLD: usize = 10_000;

/// A cache in this process (dev and tests).
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, (Vec<u8>, Instant)>, Instant) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if entries.len() > SWEEP_THRESHOLD {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        f(&mut entries, now)
    }
}

fn live(entry: Option<&(Vec<u8>, Instant)>, now: Instant) -> Option<&Vec<u8>> {
    entry.filter(|(_, expires)| *expires > now).map(|(value, _)| value)
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.with_entries(|entries, now| live(entries.get(key), now).cloned()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.with_entries(|entries, now| entries.insert(key.to_string(), (value.to_vec(), now + ttl)));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        Ok(self.with_entries(|entries, now| {
            if live(entries.get(key), now).is_some() {
                return false;
            }
            entries.insert(key.to_string(), (value.to_vec(), now + ttl));
            true
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.with_entries(|entries, now| entries.remove(key).is_some_and(|(_, expires)| expires > now)))
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        self.with_entries(|entries, now| {
            let current = live(entries.get(key), now)
                .map(|value| {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok())
                        .ok_or_else(|| CacheError(format!("{key} does not hold a counter")))
                })
                .transpose()?;
            let (next, expires) = match current {
                Some(count) => (count + 1, entries[key].1),
                None => (1, now + ttl),
            };
            entries.insert(key.to_string(), (next.to_string().into_bytes(), expires));
            Ok(next)
        })
    }

    async fn rate_limit_cells(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        cells: u32,
    ) -> Result<(u32, super::RateDecision), CacheError> {
        let now_micros = crate::time::now_micros();
        Ok(self.with_entries(|entries, now| {
            let stored = live(entries.get(key), now)
                .and_then(|value| std::str::from_utf8(value).ok().and_then(|text| text.parse::<i64>().ok()));
            let (taken, decision, new_tat) = super::gcra_cells(now_micros, stored, limit, period, cells);
            if let Some(tat) = new_tat {
                entries.insert(key.to_string(), (tat.to_string().into_bytes(), now + decision.reset_after));
            }
            (taken, decision)
        }))
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
