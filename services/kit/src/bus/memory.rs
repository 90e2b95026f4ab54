use std::sync::Mutex;

use complianceiq_proto::complianceiq::events::v1::Event;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::async_trait;

use super::{
    BusError, BusMessage, Delivery, DeliveryStream, EventBus, SubscriptionSpec, pattern_matches, validate_pattern,
};

/// Subscriber queue depth; a full queue makes the publisher wait rather than drop.
const QUEUE_DEPTH: usize = 1024;

/// Fan-out to subscribers in this process. Nothing is stored: a subscriber receives what
/// is published while it is subscribed. The outbox, not the bus, is what survives restarts.
#[derive(Default)]
pub struct InProcessBus {
    subscribers: Mutex<Vec<(String, mpsc::Sender<Delivery>)>>,
}

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
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
        for target in targets {
            // A subscriber that went away between the snapshot and now is simply skipped.
            let _ = target.send(Delivery::new(event.clone(), None)).await;
        }
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<DeliveryStream, BusError> {
        validate_pattern(&spec.pattern)?;
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((spec.pattern, sender));
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
