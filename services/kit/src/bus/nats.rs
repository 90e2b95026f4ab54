use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use complianceiq_proto::complianceiq::events::v1::Event;
use futures::StreamExt;
use prost::Message;
use tonic::async_trait;

use super::{
    Acknowledge, BusError, BusMessage, Delivery, DeliveryStream, EventBus, SubscriptionSpec, validate_pattern,
};
use crate::config::EventsConfig;

/// Events are kept this long in the stream; a consumer away longer misses them.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Window in which JetStream drops a second publish of the same event id (relay retries).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Redelivery delay for an event a consumer did not acknowledge.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// NATS JetStream: one stream holds every event under `<prefix>.events.>`.
pub struct NatsBus {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    subject_prefix: String,
}

impl NatsBus {
    /// Connects and makes sure the stream exists. Fails at once if the server is not there.
    pub async fn connect(url: &str, config: &EventsConfig) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("complianceiq")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|error| BusError::Broker(format!("connecting to NATS at {url}: {error}")))?;
        let jetstream = jetstream::new(client);
        let subjects = vec![format!("{}.events.>", config.subject_prefix)];
        let stream = jetstream
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects,
                max_age: RETENTION,
                duplicate_window: DUPLICATE_WINDOW,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|error| {
                BusError::Broker(format!(
                    "creating JetStream stream {} (is JetStream enabled?): {error}",
                    config.stream
                ))
            })?;
        Ok(Self { jetstream, stream, subject_prefix: config.subject_prefix.clone() })
    }

    fn subject(&self, event_type_or_pattern: &str) -> String {
        format!("{}.events.{}", self.subject_prefix, event_type_or_pattern)
    }

    /// Deletes the stream and everything in it (test teardown).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        let name = self.stream.cached_info().config.name.clone();
        self.jetstream.delete_stream(&name).await.map_err(|error| BusError::Broker(error.to_string()))?;
        Ok(())
    }
}

struct JetStreamAck(jetstream::Message);

#[async_trait]
impl Acknowledge for JetStreamAck {
    async fn acknowledge(&self) -> Result<(), BusError> {
        self.0.ack().await.map_err(|error| BusError::Broker(format!("acknowledging: {error}")))
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, message: BusMessage) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.event_id.as_str());
        self.jetstream
            .publish_with_headers(self.subject(&message.event_type), headers, message.payload)
            .await
            .map_err(|error| BusError::Broker(format!("publishing {}: {error}", message.event_id)))?
            .await
            .map_err(|error| BusError::Broker(format!("storing {}: {error}", message.event_id)))?;
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<DeliveryStream, BusError> {
        validate_pattern(&spec.pattern)?;
        let mut config = consumer::pull::Config {
            filter_subject: self.subject(&spec.pattern),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            ..Default::default()
        };
        let consumer = match spec.durable_name {
            Some(name) => {
                config.durable_name = Some(name.clone());
                config.deliver_policy = consumer::DeliverPolicy::All;
                self.stream.get_or_create_consumer(&name, config).await
            }
            None => {
                config.deliver_policy = consumer::DeliverPolicy::New;
                config.inactive_threshold = Duration::from_secs(300);
                self.stream.create_consumer(config).await
            }
        }
        .map_err(|error| BusError::Broker(format!("creating consumer for {}: {error}", spec.pattern)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|error| BusError::Broker(format!("consuming {}: {error}", spec.pattern)))?;
        let deliveries = messages.filter_map(|message| async move {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "receiving from JetStream");
                    return None;
                }
            };
            match Event::decode(message.payload.as_ref()) {
                Ok(event) => Some(Delivery::new(event, Some(Box::new(JetStreamAck(message))))),
                Err(error) => {
                    // Poison message: acknowledge so it is not redelivered forever.
                    tracing::error!(subject = %message.subject, %error, "dropping an event that does not decode");
                    let _ = message.ack().await;
                    None
                }
            }
        });
        Ok(Box::pin(deliveries))
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}
