use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use complianceiq_proto::complianceiq::events::v1::Event;
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::async_trait;

use crate::auth::revocations::{RevocationFeed, RevocationNews, RevokedToken};

use super::{
    Acknowledge, BusError, BusMessage, DeadLetter, Delivery, DeliveryStream, EventBus, Route, SubscriptionSpec,
    pattern_matches, validate_pattern,
};

/// Subscriber queue depth; a full queue makes the publisher wait rather than drop.
const QUEUE_DEPTH: usize = 1024;
/// Revocations a slow follower may fall behind by. In process, the revoking module's own
/// set (which every module of the process shares) has the revocation already.
const REVOCATION_QUEUE_DEPTH: usize = 4096;
/// Dead letters kept in memory (dev); the oldest go first.
const DEAD_LETTERS_KEPT: usize = 1000;

/// Fan-out to subscribers in this process. Nothing is stored: a subscriber receives what
/// is published while it is subscribed. The outbox, not the bus, is what survives restarts.
pub struct InProcessBus {
    subscribers: Mutex<Vec<(String, mpsc::Sender<Delivery>)>>,
    dead_letters: Mutex<VecDeque<DeadLetter>>,
    revocations: tokio::sync::broadcast::Sender<RevokedToken>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            subscribers: Mutex::default(),
            dead_letters: Mutex::default(),
            revocations: tokio::sync::broadcast::channel(REVOCATION_QUEUE_DEPTH).0,
        }
    }
}

/// Redelivers to the same subscriber after a delay, as JetStream does after a NAK.
struct Redelivery {
    sender: mpsc::Sender<Delivery>,
    event: Event,
    route: Route,
    delivered: u32,
    payload: Bytes,
}

impl Redelivery {
    fn delivery(
        sender: mpsc::Sender<Delivery>,
        event: Event,
        route: Route,
        delivered: u32,
        payload: Bytes,
    ) -> Delivery {
        let again =
            Redelivery { sender, event: event.clone(), route: route.clone(), delivered, payload: payload.clone() };
        Delivery::new(event, route, delivered, payload, Some(Box::new(again)))
    }
}

#[async_trait]
impl Acknowledge for Redelivery {
    async fn acknowledge(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        let next = Redelivery::delivery(
            self.sender.clone(),
            self.event.clone(),
            self.route.clone(),
            self.delivered + 1,
            self.payload.clone(),
        );
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A subscriber that went away meanwhile gets nothing, as on publish.
            let _ = sender.send(next).await;
        });
        Ok(())
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, message: BusMessage) -> Result<(), BusError> {
        let event = Event::decode(message.payload.as_ref())
            .map_err(|error| BusError::Broker(format!("event {} does not decode: {error}", message.event_id)))?;
        let targets: Vec<mpsc::Sender<Delivery>> = {
            let mut subscribers = self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            subscribers.retain(|(_, sender)| !sender.is_closed());
            subscribers
                .iter()
                .filter(|(pattern, _)| pattern_matches(pattern, &message.event_type))
                .map(|(_, sender)| sender.clone())
                .collect()
        };
        let route = Route { publisher: message.source.clone(), event_type: message.event_type.clone() };
        for target in targets {
            let delivery =
                Redelivery::delivery(target.clone(), event.clone(), route.clone(), 1, message.payload.clone());
            // A subscriber that went away between the snapshot and now is simply skipped.
            let _ = target.send(delivery).await;
        }
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<DeliveryStream, BusError> {
        validate_pattern(&spec.pattern)?;
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((spec.pattern, sender));
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BusError> {
        let mut kept = self.dead_letters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() == DEAD_LETTERS_KEPT {
            kept.pop_front();
        }
        kept.push_back(letter);
        Ok(())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let kept = self.dead_letters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(kept.iter().take(limit).cloned().collect())
    }

    async fn publish_revocation(&self, token: RevokedToken) -> Result<(), BusError> {
        // No follower yet is not an error: nothing can have accepted the token in between.
        let _ = self.revocations.send(token);
        Ok(())
    }

    async fn follow_revocations(&self) -> Result<RevocationFeed, BusError> {
        let announced = tokio_stream::wrappers::BroadcastStream::new(self.revocations.subscribe())
            .filter_map(|token| std::future::ready(token.ok().map(RevocationNews::Revoked)));
        Ok(Box::pin(futures::stream::once(std::future::ready(RevocationNews::AlwaysComplete)).chain(announced)))
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
