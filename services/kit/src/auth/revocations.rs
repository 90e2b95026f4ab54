//! Revoked access tokens, known to every process without a network call per request. The
//! auth module announces a revocation on the bus; every process follows the announcements
//! into a local set (NATS: a JetStream stream replayed from its start, so a process that
//! starts late still learns the revocations of tokens that have not expired yet).
//!
//! A process that cannot tell whether its set is complete fails closed: the feed reports
//! the instant up to which every announcement has been applied, and while that is more than
//! [`STALENESS_LIMIT`] old (the bus is lost, or the feed lags), every authenticated call is
//! refused with UNAVAILABLE. So a revoked token is refused by every process within that
//! limit, and never served on a stale set.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{jwt, verifier};
use crate::bus::{BusError, EventBus};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// How old the set may be before checks fail closed; every process refuses a revoked token
/// within this time of its revocation.
pub const STALENESS_LIMIT: Duration = Duration::from_secs(1);
/// How long a process waits at start-up for its set to be complete.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(10);
/// Expired entries are dropped at most this often.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// An access token revoked before its expiry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevokedToken {
    /// Its `jti`.
    pub token_id: String,
    /// Its `exp`: after this (plus leeway) it is refused anyway and can be forgotten.
    pub expires_at: i64,
}

/// What the bus reports to a follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationNews {
    /// A revocation, in publication order.
    Revoked(RevokedToken),
    /// Every revocation published before this instant has been reported.
    CompleteAsOf(Instant),
    /// Revocations are handed over as they are published (in process): never stale.
    AlwaysComplete,
}

/// The news a bus sends a follower.
pub type RevocationFeed = Pin<Box<dyn Stream<Item = RevocationNews> + Send>>;

#[derive(Default)]
struct State {
    revoked: HashMap<String, i64>,
    complete_as_of: Option<Instant>,
    always_complete: bool,
    reported_stale: bool,
    /// Whether the set was ever complete: before that a process is starting, not degraded.
    ever_complete: bool,
    purged_at: Option<Instant>,
}

/// This process's set of revoked tokens.
pub struct Revocations {
    bus: Arc<dyn EventBus>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Revocations {
    /// Follows the bus's revocations until `stop`; returns once the set is complete (or fails
    /// after [`CATCH_UP_DEADLINE`], which is a start-up error).
    pub async fn follow(
        bus: Arc<dyn EventBus>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, BusError> {
        let feed = bus.follow_revocations().await?;
        let revocations = Self::from_feed(bus, metrics, feed, stop);
        let deadline = Instant::now() + CATCH_UP_DEADLINE;
        while revocations.check("").is_err() {
            if Instant::now() >= deadline {
                return Err(BusError::Broker("the revocation feed did not catch up within 10 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(revocations)
    }

    /// Applies `feed` in a task until `stop` or until the set is dropped.
    pub fn from_feed(
        bus: Arc<dyn EventBus>,
        metrics: Arc<Metrics>,
        mut feed: RevocationFeed,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let revocations = Arc::new(Self { bus, metrics, state: Mutex::default() });
        let weak: Weak<Self> = Arc::downgrade(&revocations);
        tokio::spawn(async move {
            loop {
                let news = tokio::select! {
                    () = stop.cancelled() => break,
                    news = feed.next() => news,
                };
                let (Some(news), Some(revocations)) = (news, weak.upgrade()) else { break };
                revocations.apply(news);
            }
        });
        revocations
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply(&self, news: RevocationNews) {
        let mut state = self.state();
        match news {
            RevocationNews::Revoked(token) => {
                state.revoked.insert(token.token_id, token.expires_at);
            }
            RevocationNews::CompleteAsOf(at) => {
                state.complete_as_of = Some(state.complete_as_of.map_or(at, |known| known.max(at)));
            }
            RevocationNews::AlwaysComplete => state.always_complete = true,
        }
        let now = Instant::now();
        if state.purged_at.is_none_or(|purged| now.duration_since(purged) >= PURGE_INTERVAL) {
            let horizon = verifier::now_seconds() - jwt::LEEWAY_SECONDS;
            state.revoked.retain(|_, expires_at| *expires_at >= horizon);
            state.purged_at = Some(now);
        }
    }

    /// Revokes a token in this process at once and announces it to every other one. An
    /// error means other processes may not know: the caller reports the failure.
    pub async fn revoke(&self, token_id: &str, expires_at: i64) -> Result<(), ApiError> {
        let token = RevokedToken { token_id: token_id.to_string(), expires_at };
        self.apply(RevocationNews::Revoked(token.clone()));
        self.bus.publish_revocation(token).await.map_err(|error| {
            ApiError::Unavailable {
                reason: "REVOCATION_NOT_ANNOUNCED",
                message: "the revocation could not be announced to every service; try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            }
            .log_cause(&error)
        })
    }

    /// Whether a token was revoked. Fails closed (UNAVAILABLE) while the set may be missing
    /// revocations older than [`STALENESS_LIMIT`].
    pub fn check(&self, token_id: &str) -> Result<bool, ApiError> {
        let mut state = self.state();
        let complete =
            state.always_complete || state.complete_as_of.is_some_and(|as_of| as_of.elapsed() <= STALENESS_LIMIT);
        let stale = !complete;
        if stale != state.reported_stale {
            state.reported_stale = stale;
            self.metrics.set_degraded("revocation_feed", stale);
            if complete && !state.ever_complete {
                state.ever_complete = true;
            } else if complete {
                tracing::info!("the revocation feed is complete again; authenticated calls are served");
            } else if state.ever_complete {
                tracing::error!(
                    limit_ms = STALENESS_LIMIT.as_millis() as u64,
                    "the revocation feed is behind (is the event bus reachable?); authenticated calls are refused \
                     until it catches up"
                );
            }
        }
        if stale {
            return Err(ApiError::Unavailable {
                reason: "REVOCATIONS_UNAVAILABLE",
                message: "token revocations cannot be checked right now; try again".into(),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        Ok(state.revoked.contains_key(token_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::InProcessBus;

    fn feed() -> (tokio::sync::mpsc::UnboundedSender<RevocationNews>, RevocationFeed) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (sender, Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(receiver)))
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn checks_fail_closed_until_the_feed_is_complete_and_again_when_it_goes_quiet() {
        let (news, feed) = feed();
        let metrics = Arc::new(Metrics::new());
        let revocations =
            Revocations::from_feed(Arc::new(InProcessBus::new()), metrics.clone(), feed, CancellationToken::new());
        let refused = |result: Result<bool, ApiError>| {
            matches!(result, Err(ApiError::Unavailable { reason: "REVOCATIONS_UNAVAILABLE", .. }))
        };
        assert!(refused(revocations.check("jti")), "nothing known yet");

        let expires_at = verifier::now_seconds() + 900;
        news.send(RevocationNews::Revoked(RevokedToken { token_id: "jti".into(), expires_at })).unwrap();
        news.send(RevocationNews::CompleteAsOf(Instant::now())).unwrap();
        settle().await;
        assert!(revocations.check("jti").unwrap());
        assert!(!revocations.check("other").unwrap());

        // The bus goes quiet: no more completeness reports.
        let quiet = Instant::now();
        let deadline = quiet + Duration::from_secs(5);
        while !refused(revocations.check("other")) {
            assert!(Instant::now() < deadline, "never failed closed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(quiet.elapsed() <= STALENESS_LIMIT + Duration::from_millis(100), "{:?}", quiet.elapsed());
        assert!(metrics.encode().contains("dependency_degraded{dependency=\"revocation_feed\"} 1"));

        news.send(RevocationNews::CompleteAsOf(Instant::now())).unwrap();
        settle().await;
        assert!(!revocations.check("other").unwrap(), "served again once complete");
        assert!(metrics.encode().contains("dependency_degraded{dependency=\"revocation_feed\"} 0"));
    }

    #[tokio::test]
    async fn a_revocation_here_applies_at_once_and_expired_ones_are_forgotten() {
        let bus = Arc::new(InProcessBus::new());
        let revocations = Revocations::follow(bus, Arc::new(Metrics::new()), CancellationToken::new()).await.unwrap();
        let now = verifier::now_seconds();
        revocations.revoke("live", now + 900).await.unwrap();
        assert!(revocations.check("live").unwrap());
        revocations.state().purged_at = None;
        revocations.revoke("long-expired", now - 3600).await.unwrap();
        assert!(!revocations.check("long-expired").unwrap(), "dropped by the purge");
        assert!(revocations.check("live").unwrap());
    }
}
