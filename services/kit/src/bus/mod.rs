//! The event bus: where the outbox relay publishes and where subscribers consume. NATS
//! JetStream in production (durable, at-least-once, de-duplicated by event id); an
//! in-process fan-out in dev, where every module lives in one process.
//!
//! Every delivery names its publisher as the broker vouches for it: on NATS the subject
//! `<prefix>.events.<module>.<type>`, which only that module's credentials may publish to;
//! in process, the module whose outbox row it was. Consumers check it against the event's
//! owner (see [`crate::subscription`]).

mod memory;
mod nats;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use complianceiq_proto::complianceiq::events::v1::Event;
use futures::Stream;
use tonic::async_trait;

pub use memory::InProcessBus;

use crate::auth::revocations::{RevocationFeed, RevokedToken};
pub use nats::NatsBus;

/// An event ready to publish: the encoded envelope with the fields routing needs.
#[derive(Clone, Debug)]
pub struct BusMessage {
    /// Event id; JetStream de-duplicates on it.
    pub event_id: String,
    /// Event type, e.g. `organization.created`.
    pub event_type: String,
    /// The module that emitted it (the outbox row's), which the subject names.
    pub source: String,
    /// The encoded `complianceiq.events.v1.Event`.
    pub payload: Bytes,
}

/// Bus failures.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Connecting or talking to the broker failed.
    #[error("event bus: {0}")]
    Broker(String),
    /// A subscription pattern is malformed.
    #[error("invalid event type pattern {0:?}: use dot-separated tokens, `*` for one token, `>` for the rest")]
    Pattern(String),
}

/// What a consumer wants.
#[derive(Clone, Debug)]
pub struct SubscriptionSpec {
    /// The subscribing module: dead letters it writes go under its name.
    pub module: String,
    /// Event types to receive: `organization.created`, `organization.*`, `>`.
    pub pattern: String,
    /// A durable consumer name resumes where it stopped and receives events published
    /// while it was away (JetStream); `None` receives events from now on only.
    pub durable_name: Option<String>,
}

/// Settles one delivery with the broker.
#[async_trait]
pub(crate) trait Acknowledge: Send + Sync {
    /// Handled: never deliver it again.
    async fn acknowledge(&self) -> Result<(), BusError>;
    /// Not handled: deliver it again after `delay`.
    async fn retry_after(&self, delay: Duration) -> Result<(), BusError>;
}

/// One event delivered to a subscriber.
pub struct Delivery {
    /// The decoded envelope.
    pub event: Event,
    /// The module the broker vouches published it.
    pub publisher: String,
    /// The event type the delivery was routed by (the subject's).
    pub routed_type: String,
    /// Which delivery of this event this is: 1 the first time.
    pub delivered: u32,
    /// The envelope as published, for the dead-letter stream.
    pub payload: Bytes,
    acknowledgement: Option<Box<dyn Acknowledge>>,
}

impl Delivery {
    pub(crate) fn new(
        event: Event,
        route: Route,
        delivered: u32,
        payload: Bytes,
        acknowledgement: Option<Box<dyn Acknowledge>>,
    ) -> Self {
        Self { event, publisher: route.publisher, routed_type: route.event_type, delivered, payload, acknowledgement }
    }

    /// Tells the broker the event was handled (or given up on): it is not delivered again.
    pub async fn ack(&self) -> Result<(), BusError> {
        match &self.acknowledgement {
            Some(acknowledgement) => acknowledgement.acknowledge().await,
            None => Ok(()),
        }
    }

    /// Asks for the event again after `delay`.
    pub async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        match &self.acknowledgement {
            Some(acknowledgement) => acknowledgement.retry_after(delay).await,
            None => Ok(()),
        }
    }
}

/// Where a delivery came from, as the broker saw it.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub publisher: String,
    pub event_type: String,
}

/// An event a consumer gave up on, kept for inspection and replay.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The module whose consumer gave up.
    pub module: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// The event id, when the envelope decoded.
    pub event_id: String,
    /// The event type it was routed by.
    pub event_type: String,
    /// The module that published it.
    pub publisher: String,
    /// Why it was given up on.
    pub reason: String,
    /// The envelope as published.
    pub payload: Bytes,
}

/// Deliveries of one subscription.
pub type DeliveryStream = Pin<Box<dyn Stream<Item = Delivery> + Send>>;

/// A place to publish events and subscribe to them.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes; returns once the broker has stored the event.
    async fn publish(&self, message: BusMessage) -> Result<(), BusError>;

    /// Subscribes to the event types matching a pattern.
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<DeliveryStream, BusError>;

    /// Keeps an event a consumer gave up on (NATS: the dead-letter stream).
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BusError>;

    /// The dead letters kept so far, oldest first (at most `limit`).
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError>;

    /// Announces a revoked access token to every process; returns once the broker keeps it.
    async fn publish_revocation(&self, token: RevokedToken) -> Result<(), BusError>;

    /// Every announced revocation of a token not yet expired, then each new one, with
    /// reports of how complete that is (see [`crate::auth::revocations`]).
    async fn follow_revocations(&self) -> Result<RevocationFeed, BusError>;

    /// `nats` or `in-process`, for start-up messages.
    fn kind(&self) -> &'static str;
}

/// Validates a pattern: dot-separated non-empty tokens, `*` a whole token, `>` only last.
pub fn validate_pattern(pattern: &str) -> Result<(), BusError> {
    let tokens: Vec<&str> = pattern.split('.').collect();
    let valid = tokens.iter().enumerate().all(|(index, token)| {
        !token.is_empty()
            && (*token == "*"
                || (*token == ">" && index == tokens.len() - 1)
                || token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    });
    if valid { Ok(()) } else { Err(BusError::Pattern(pattern.to_string())) }
}

/// NATS subject-style matching of an event type against a pattern.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    let mut types = event_type.split('.');
    for token in pattern.split('.') {
        match (token, types.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (expected, Some(actual)) if expected == actual => {}
            _ => return false,
        }
    }
    types.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_nats_subjects() {
        assert!(pattern_matches("organization.created", "organization.created"));
        assert!(pattern_matches("organization.*", "organization.deleted"));
        assert!(pattern_matches(">", "sync.completed"));
        assert!(pattern_matches("sync.>", "sync.completed"));
        assert!(!pattern_matches("organization.*", "organization"));
        assert!(!pattern_matches("organization.created", "organization.created.extra"));
        assert!(!pattern_matches("sync.>", "sync"));
        assert!(!pattern_matches("user.*", "organization.created"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "a..b", ">.a", "a.b c", "a.*x"] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "a.*", ">", "a.>", "user.email_verified"] {
            assert!(validate_pattern(good).is_ok(), "{good:?}");
        }
    }
}
