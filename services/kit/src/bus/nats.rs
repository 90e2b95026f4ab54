use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use bytes::Bytes;
use complianceiq_proto::complianceiq::events::v1::Event;
use futures::StreamExt;
use prost::Message;
use tonic::async_trait;

use super::{
    Acknowledge, BusError, BusMessage, DeadLetter, Delivery, DeliveryStream, EventBus, Route, SubscriptionSpec,
    validate_pattern,
};
use crate::auth::jwt;
use crate::auth::revocations::{RevocationFeed, RevocationNews, RevokedToken};
use crate::config::EventsConfig;

/// Events are kept this long in the stream; a consumer away longer misses them.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Window in which JetStream drops a second publish of the same event id (relay retries).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Redelivery delay for an event a consumer did not acknowledge.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Dead letters are kept this long.
const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Revocations are kept while the tokens they name could still be accepted (twice over).
const REVOCATION_RETENTION: Duration =
    Duration::from_secs(2 * (jwt::ACCESS_TOKEN_SECONDS + jwt::LEEWAY_SECONDS) as u64);
/// How often a follower asks how far the revocation stream goes, to report completeness.
const REVOCATION_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// NATS JetStream: one stream holds every event under `<prefix>.events.<module>.<type>`, a
/// second one the dead letters under `<prefix>.deadletter.<consumer>`.
pub struct NatsBus {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    dead_letter_stream: stream::Stream,
    revocation_stream: stream::Stream,
    subject_prefix: String,
    /// Deliveries after which JetStream itself stops redelivering: a backstop above the
    /// consumers' own limit, so an event can never loop even if a consumer dies each time.
    max_deliver: i64,
}

impl NatsBus {
    /// Connects and makes sure the streams exist. Fails at once if the server is not there.
    pub async fn connect(url: &str, config: &EventsConfig) -> Result<Self, BusError> {
        let mut options =
            async_nats::ConnectOptions::new().name("complianceiq").connection_timeout(Duration::from_secs(5));
        if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &config.nats_ca_file {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        let client = options
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
        let dead_letter_name = format!("{}_DEAD_LETTERS", config.stream);
        let dead_letter_stream = jetstream
            .get_or_create_stream(stream::Config {
                name: dead_letter_name.clone(),
                subjects: vec![format!("{}.deadletter.>", config.subject_prefix)],
                max_age: DEAD_LETTER_RETENTION,
                duplicate_window: DUPLICATE_WINDOW,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|error| BusError::Broker(format!("creating JetStream stream {dead_letter_name}: {error}")))?;
        let revocation_name = format!("{}_REVOCATIONS", config.stream);
        let revocation_stream = jetstream
            .get_or_create_stream(stream::Config {
                name: revocation_name.clone(),
                subjects: vec![format!("{}.revocations", config.subject_prefix)],
                max_age: REVOCATION_RETENTION,
                duplicate_window: DUPLICATE_WINDOW,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|error| BusError::Broker(format!("creating JetStream stream {revocation_name}: {error}")))?;
        Ok(Self {
            jetstream,
            stream,
            dead_letter_stream,
            revocation_stream,
            subject_prefix: config.subject_prefix.clone(),
            max_deliver: i64::from(config.max_deliver.max(1)) + 2,
        })
    }

    /// The subject of `event_type` (or a pattern of types) published by `publisher` (or `*`).
    fn subject(&self, publisher: &str, event_type_or_pattern: &str) -> String {
        format!("{}.events.{publisher}.{event_type_or_pattern}", self.subject_prefix)
    }

    /// Publisher and event type of an event subject.
    fn route(prefix: &str, subject: &str) -> Option<Route> {
        let rest = subject.strip_prefix(prefix)?.strip_prefix(".events.")?;
        let (publisher, event_type) = rest.split_once('.')?;
        Some(Route { publisher: publisher.to_string(), event_type: event_type.to_string() })
    }

    /// Deletes the streams and everything in them (test teardown).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        for stream in [&self.stream, &self.dead_letter_stream, &self.revocation_stream] {
            let name = stream.cached_info().config.name.clone();
            self.jetstream.delete_stream(&name).await.map_err(|error| BusError::Broker(error.to_string()))?;
        }
        Ok(())
    }
}

struct JetStreamAck(jetstream::Message);

#[async_trait]
impl Acknowledge for JetStreamAck {
    async fn acknowledge(&self) -> Result<(), BusError> {
        self.0.ack().await.map_err(|error| BusError::Broker(format!("acknowledging: {error}")))
    }

    async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|error| BusError::Broker(format!("asking for redelivery: {error}")))
    }
}

/// Publishes dead letters; cheap to clone into a stream's closure.
#[derive(Clone)]
struct DeadLetterWriter {
    jetstream: jetstream::Context,
    subject_prefix: String,
}

impl DeadLetterWriter {
    async fn write(&self, letter: DeadLetter) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        let one_line = |text: &str| text.replace(['\r', '\n'], " ").chars().take(1000).collect::<String>();
        headers.insert("Nats-Msg-Id", format!("{}:{}", letter.consumer, letter.event_id).as_str());
        headers.insert("Ciq-Event-Id", one_line(&letter.event_id).as_str());
        headers.insert("Ciq-Event-Type", one_line(&letter.event_type).as_str());
        headers.insert("Ciq-Publisher", one_line(&letter.publisher).as_str());
        headers.insert("Ciq-Reason", one_line(&letter.reason).as_str());
        // Under the module's name, the only dead-letter subjects its credentials may publish to.
        let subject = format!("{}.deadletter.{}.{}", self.subject_prefix, letter.module, letter.consumer);
        self.jetstream
            .publish_with_headers(subject, headers, letter.payload)
            .await
            .map_err(|error| BusError::Broker(format!("dead-lettering {}: {error}", letter.event_id)))?
            .await
            .map_err(|error| BusError::Broker(format!("storing dead letter {}: {error}", letter.event_id)))?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, message: BusMessage) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.event_id.as_str());
        let source_is_a_token = !message.source.is_empty()
            && message.source.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !source_is_a_token {
            return Err(BusError::Broker(format!("event {} names no publishing module", message.event_id)));
        }
        self.jetstream
            .publish_with_headers(self.subject(&message.source, &message.event_type), headers, message.payload)
            .await
            .map_err(|error| BusError::Broker(format!("publishing {}: {error}", message.event_id)))?
            .await
            .map_err(|error| BusError::Broker(format!("storing {}: {error}", message.event_id)))?;
        Ok(())
    }

    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<DeliveryStream, BusError> {
        validate_pattern(&spec.pattern)?;
        let consumer_name = spec.durable_name.clone().unwrap_or_else(|| "ephemeral".into());
        let module = spec.module.clone();
        let mut config = consumer::pull::Config {
            filter_subject: self.subject("*", &spec.pattern),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: self.max_deliver,
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
        let writer =
            DeadLetterWriter { jetstream: self.jetstream.clone(), subject_prefix: self.subject_prefix.clone() };
        let prefix = self.subject_prefix.clone();
        let deliveries = messages.filter_map(move |message| {
            let (writer, prefix, consumer_name, module) =
                (writer.clone(), prefix.clone(), consumer_name.clone(), module.clone());
            async move {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "receiving from JetStream");
                        return None;
                    }
                };
                let delivered = message.info().map(|info| info.delivered.max(1) as u32).unwrap_or(1);
                let route = NatsBus::route(&prefix, message.subject.as_str());
                match (Event::decode(message.payload.as_ref()), route) {
                    (Ok(event), Some(route)) => {
                        let payload = message.payload.clone();
                        Some(Delivery::new(event, route, delivered, payload, Some(Box::new(JetStreamAck(message)))))
                    }
                    (decoded, route) => {
                        // Nothing can handle it: kept as a dead letter, never redelivered.
                        let reason = match decoded {
                            Err(error) => format!("the event does not decode: {error}"),
                            Ok(_) => "the subject names no publisher".into(),
                        };
                        tracing::error!(subject = %message.subject, %reason, "dead-lettering an event");
                        let route = route.unwrap_or(Route { publisher: String::new(), event_type: String::new() });
                        let letter = DeadLetter {
                            module,
                            consumer: consumer_name,
                            event_id: String::new(),
                            event_type: route.event_type,
                            publisher: route.publisher,
                            reason,
                            payload: Bytes::copy_from_slice(&message.payload),
                        };
                        if writer.write(letter).await.is_ok() {
                            let _ = message.ack_with(AckKind::Term).await;
                        }
                        None
                    }
                }
            }
        });
        Ok(Box::pin(deliveries))
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BusError> {
        DeadLetterWriter { jetstream: self.jetstream.clone(), subject_prefix: self.subject_prefix.clone() }
            .write(letter)
            .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let mut stream = self.dead_letter_stream.clone();
        let state = stream
            .info()
            .await
            .map_err(|error| BusError::Broker(format!("reading dead letters: {error}")))?
            .state
            .clone();
        let (first, last) = (state.first_sequence, state.last_sequence);
        let mut letters = Vec::new();
        for sequence in first..=last {
            if letters.len() >= limit || state.messages == 0 {
                break;
            }
            // Gaps (deleted messages) are skipped.
            let Ok(message) = stream.get_raw_message(sequence).await else { continue };
            let header =
                |name: &str| message.headers.get(name).map(|value| value.as_str().to_string()).unwrap_or_default();
            let mut subject = message.subject.as_str().rsplit('.');
            let (consumer, module) = (subject.next().unwrap_or_default(), subject.next().unwrap_or_default());
            letters.push(DeadLetter {
                module: module.to_string(),
                consumer: consumer.to_string(),
                event_id: header("Ciq-Event-Id"),
                event_type: header("Ciq-Event-Type"),
                publisher: header("Ciq-Publisher"),
                reason: header("Ciq-Reason"),
                payload: message.payload,
            });
        }
        Ok(letters)
    }

    async fn publish_revocation(&self, token: RevokedToken) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("revoked:{}", token.token_id).as_str());
        let payload = serde_json::to_vec(&token).map_err(|error| BusError::Broker(error.to_string()))?;
        self.jetstream
            .publish_with_headers(format!("{}.revocations", self.subject_prefix), headers, payload.into())
            .await
            .map_err(|error| BusError::Broker(format!("announcing a revocation: {error}")))?
            .await
            .map_err(|error| BusError::Broker(format!("storing a revocation: {error}")))?;
        Ok(())
    }

    async fn follow_revocations(&self) -> Result<RevocationFeed, BusError> {
        let consumer = self
            .revocation_stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|error| BusError::Broker(format!("following revocations: {error}")))?;
        let messages =
            consumer.messages().await.map_err(|error| BusError::Broker(format!("following revocations: {error}")))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(relay_revocations(messages, self.revocation_stream.clone(), sender));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}

/// Hands a follower the revocations in stream order, and after each look at the stream's
/// last sequence (taken at instant `t`), once everything up to it was handed over, reports
/// completeness as of `t`. Ends when the follower goes away.
async fn relay_revocations(
    mut messages: consumer::pull::Ordered,
    mut stream: stream::Stream,
    follower: tokio::sync::mpsc::Sender<RevocationNews>,
) {
    let mut handed_over: u64 = 0;
    // (asked at, last sequence then): complete as of the instant once handed over up to it.
    let mut looks: std::collections::VecDeque<(std::time::Instant, u64)> = Default::default();
    let mut tick = tokio::time::interval(REVOCATION_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let news = tokio::select! {
            message = messages.next() => match message {
                Some(Ok(message)) => {
                    let Ok(info) = message.info() else { continue };
                    handed_over = handed_over.max(info.stream_sequence);
                    match serde_json::from_slice::<RevokedToken>(&message.payload) {
                        Ok(token) => Some(RevocationNews::Revoked(token)),
                        Err(error) => {
                            tracing::error!(%error, sequence = info.stream_sequence, "an unreadable revocation");
                            None
                        }
                    }
                }
                // The ordered consumer recreates itself after errors; completeness stops being
                // reported meanwhile, so checks fail closed.
                Some(Err(error)) => {
                    tracing::warn!(%error, "following revocations");
                    None
                }
                None => return,
            },
            _ = tick.tick() => {
                let asked = std::time::Instant::now();
                if let Ok(Ok(info)) = tokio::time::timeout(REVOCATION_CHECK_INTERVAL * 5, stream.info()).await {
                    // An empty stream (everything aged out) has nothing left to hand over.
                    let last = if info.state.messages == 0 { 0 } else { info.state.last_sequence };
                    if looks.len() == 64 {
                        looks.pop_front();
                    }
                    looks.push_back((asked, last));
                }
                let mut complete_as_of = None;
                while let Some(&(at, last)) = looks.front() {
                    if last > handed_over {
                        break;
                    }
                    complete_as_of = Some(at);
                    looks.pop_front();
                }
                complete_as_of.map(RevocationNews::CompleteAsOf)
            }
        };
        if let Some(news) = news
            && follower.send(news).await.is_err()
        {
            return;
        }
    }
}
