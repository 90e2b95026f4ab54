//! Addresses that keep presenting bad tokens, counted in this process before any token is
//! verified: a flood of forged tokens from one address is refused without costing a
//! signature check (or a key fetch) each. In memory on purpose: no network call on the
//! request path, and a per-process budget is enough to stop one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bad tokens one address may present per window before it is refused.
pub const FAILURES_PER_WINDOW: u32 = 100;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past that the oldest windows are dropped.
const TRACKED: usize = 10_000;

/// Failed token checks per address.
#[derive(Default)]
pub struct TokenFailures {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl TokenFailures {
    /// How long `address` must wait, if it has failed too often.
    pub fn blocked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (started, failures) = windows.get(&address)?;
        let elapsed = now.saturating_duration_since(*started);
        (elapsed < WINDOW && *failures >= FAILURES_PER_WINDOW).then(|| WINDOW - elapsed)
    }

    /// Counts a failed token check of `address`.
    pub fn record(&self, address: IpAddr, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= TRACKED && !windows.contains_key(&address) {
            windows.retain(|_, (started, _)| now.saturating_duration_since(*started) < WINDOW);
            if windows.len() >= TRACKED {
                windows.clear();
            }
        }
        let window = windows.entry(address).or_insert((now, 0));
        if now.saturating_duration_since(window.0) >= WINDOW {
            *window = (now, 0);
        }
        window.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_budget_until_the_window_ends() {
        let failures = TokenFailures::default();
        let (address, other) = ("203.0.113.9".parse().unwrap(), "203.0.113.10".parse().unwrap());
        let start = Instant::now();
        for _ in 0..FAILURES_PER_WINDOW {
            assert!(failures.blocked(address, start).is_none());
            failures.record(address, start);
        }
        assert!(failures.blocked(address, start + Duration::from_secs(1)).is_some());
        assert!(failures.blocked(other, start).is_none(), "per address");
        assert!(failures.blocked(address, start + WINDOW).is_none(), "a new window");
    }
}
