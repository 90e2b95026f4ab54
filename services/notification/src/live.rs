//! The live stream of in-app notifications. Whichever process stores a notification, the
//! stream may be open on another: every process follows `notification.sent` on the bus from
//! now on (an ephemeral consumer, nothing durable to clean up) and hands each in-app one to
//! the streams open here, which read it back in the recipient's tenant.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::auth::Identity;
use complianceiq_kit::bus::{EventBus, SubscriptionSpec};
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::module::Worker;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::StreamNotificationsResponse;
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::store;

/// Arrivals a process buffers for its slowest stream before that stream is ended.
const BACKLOG: usize = 1024;
/// Streams one person may hold open on one process (tabs, devices); more is a leak or abuse.
pub const MAX_STREAMS_PER_PERSON: usize = 8;
/// Wait before following the bus again after it failed.
const REFOLLOW_DELAY: Duration = Duration::from_secs(1);

/// An in-app notification just stored, by whom it is for.
#[derive(Clone, Debug)]
struct Arrival {
    organization_id: String,
    user_id: String,
    notification_id: String,
}

/// The process's open streams' source.
pub struct Live {
    arrivals: broadcast::Sender<Arrival>,
    /// Cancelled when the process stops, which ends every stream so shutdown does not wait.
    closing: CancellationToken,
    open: OpenStreams,
}

/// Open streams per (organization, person).
type OpenStreams = Arc<std::sync::Mutex<std::collections::HashMap<(String, String), usize>>>;

/// One open stream counted in [`Live::open`]; uncounted when the stream's task ends.
struct Slot {
    open: OpenStreams,
    key: (String, String),
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

pub type NotificationStream = Pin<Box<dyn Stream<Item = Result<StreamNotificationsResponse, Status>> + Send>>;

impl Live {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            arrivals: broadcast::channel(BACKLOG).0,
            closing: CancellationToken::new(),
            open: Arc::default(),
        })
    }

    /// Follows the bus until the process stops.
    pub fn follower(self: Arc<Self>, bus: Arc<dyn EventBus>) -> Worker {
        Worker {
            name: "notification-live",
            run: Box::new(move |stop| {
                Box::pin(async move {
                    while !stop.is_cancelled() {
                        if let Err(error) = self.follow(bus.as_ref(), &stop).await {
                            tracing::warn!(%error, "following notification.sent for live streams");
                        }
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = tokio::time::sleep(REFOLLOW_DELAY) => {}
                        }
                    }
                    self.closing.cancel();
                })
            }),
        }
    }

    async fn follow(&self, bus: &dyn EventBus, stop: &CancellationToken) -> Result<(), String> {
        let spec =
            SubscriptionSpec { module: "notification".into(), pattern: "notification.sent".into(), durable_name: None };
        let mut deliveries = bus.subscribe(spec).await.map_err(|error| error.to_string())?;
        loop {
            let delivery = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                delivery = deliveries.next() => match delivery {
                    Some(delivery) => delivery,
                    None => return Err("the bus ended the subscription".into()),
                },
            };
            // Only this module may say a notification was sent (the broker vouches for the
            // publisher); anything else is ignored here and refused by the durable consumers.
            if delivery.publisher == "notification"
                && let Some(Payload::NotificationSent(sent)) = &delivery.event.payload
                && sent.channels.iter().any(|channel| channel == "in_app")
            {
                // No receiver is not an error: nobody here is following.
                let _ = self.arrivals.send(Arrival {
                    organization_id: delivery.event.organization_id.clone(),
                    user_id: sent.user_id.clone(),
                    notification_id: sent.notification_id.clone(),
                });
            }
            if let Err(error) = delivery.ack().await {
                tracing::debug!(%error, "acknowledging a live notification");
            }
        }
    }

    /// Counts a stream of `key` against [`MAX_STREAMS_PER_PERSON`].
    fn take_slot(&self, key: (String, String)) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(key.clone()).or_default();
        if *count >= MAX_STREAMS_PER_PERSON {
            return Err(ApiError::ResourceExhausted {
                reason: "TOO_MANY_STREAMS",
                message: format!(
                    "at most {MAX_STREAMS_PER_PERSON} notification streams per person are open at once; close one"
                ),
                retry_after: None,
            });
        }
        *count += 1;
        Ok(Slot { open: self.open.clone(), key })
    }

    /// The stream of `identity`'s in-app notifications: the unread count, then each new one.
    pub async fn stream(&self, database: ModuleDatabase, identity: &Identity) -> Result<NotificationStream, ApiError> {
        let organization = identity.tenant()?;
        let user_id = identity.user_id.to_string();
        let slot = self.take_slot((organization.to_string(), user_id.clone()))?;
        // Subscribed before counting, so nothing stored in between is missed.
        let arrivals = self.arrivals.subscribe();
        let mut tx = database.read(organization).await?;
        let unread = store::unread_count(&mut tx, &user_id).await?;
        tx.commit().await?;
        let (sender, receiver) = mpsc::channel(16);
        let _ = sender.try_send(Ok(StreamNotificationsResponse { notification: None, unread_count: count(unread) }));
        let expires_in =
            Duration::from_micros(u64::try_from(identity.expires_at * 1_000_000 - time::now_micros()).unwrap_or(0));
        let recipient = (organization.to_string(), user_id.clone());
        let load = move |arrival: Arrival| {
            let (database, user_id) = (database.clone(), user_id.clone());
            async move {
                let mut tx = database.read(organization).await?;
                let notification = store::notification(&mut tx, Some(&user_id), &arrival.notification_id).await?;
                let unread = store::unread_count(&mut tx, &user_id).await?;
                tx.commit().await?;
                // Deleted before it could be streamed: nothing to show.
                Ok(notification.map(|notification| StreamNotificationsResponse {
                    notification: Some(notification),
                    unread_count: count(unread),
                }))
            }
        };
        let relaying = relay(arrivals, sender, recipient, expires_in, self.closing.clone(), load);
        tokio::spawn(async move {
            relaying.await;
            drop(slot);
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }
}

/// Hands one person's arrivals to their stream, read by `load`, until the stream is dropped,
/// the process stops, the token expires (`expires_in`) or the stream falls behind.
async fn relay<Load, Loading>(
    mut arrivals: broadcast::Receiver<Arrival>,
    sender: mpsc::Sender<Result<StreamNotificationsResponse, Status>>,
    (organization_id, user_id): (String, String),
    expires_in: Duration,
    closing: CancellationToken,
    load: Load,
) where
    Load: Fn(Arrival) -> Loading,
    Loading: Future<Output = Result<Option<StreamNotificationsResponse>, ApiError>>,
{
    let expired = tokio::time::sleep(expires_in);
    tokio::pin!(expired);
    loop {
        let arrival = tokio::select! {
            _ = closing.cancelled() => return,
            _ = sender.closed() => return,
            _ = &mut expired => {
                let ended = ApiError::Unauthenticated {
                    reason: "TOKEN_EXPIRED",
                    message: "the access token expired; reconnect with a fresh one".into(),
                };
                let _ = sender.send(Err(ended.into())).await;
                return;
            }
            arrival = arrivals.recv() => arrival,
        };
        let arrival = match arrival {
            Ok(arrival) if arrival.organization_id == organization_id && arrival.user_id == user_id => arrival,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let ended = ApiError::Aborted {
                    reason: "STREAM_FELL_BEHIND",
                    message: format!(
                        "the stream fell {missed} notifications behind; list notifications to catch up, then reconnect"
                    ),
                };
                let _ = sender.send(Err(ended.into())).await;
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match load(arrival).await {
            Ok(Some(message)) => {
                if sender.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                let _ = sender.send(Err(error.into())).await;
                return;
            }
        }
    }
}

fn count(unread: i64) -> i32 {
    i32::try_from(unread).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(organization_id: &str, user_id: &str, notification_id: &str) -> Arrival {
        Arrival {
            organization_id: organization_id.into(),
            user_id: user_id.into(),
            notification_id: notification_id.into(),
        }
    }

    /// Streams `arrivals` to ("org", "ada") with the given token lifetime; what it sends.
    async fn streamed(arrivals: &[Arrival], expires_in: Duration) -> Vec<Result<String, (tonic::Code, String)>> {
        let (source, receiver) = broadcast::channel(BACKLOG);
        let (sender, mut stream) = mpsc::channel(16);
        for arrival in arrivals {
            source.send(arrival.clone()).unwrap();
        }
        let load = |arrival: Arrival| async move {
            let notification = Notification { id: arrival.notification_id, ..Default::default() };
            Ok(Some(StreamNotificationsResponse { notification: Some(notification), unread_count: 1 }))
        };
        let recipient = ("org".to_string(), "ada".to_string());
        let relaying = tokio::spawn(relay(receiver, sender, recipient, expires_in, CancellationToken::new(), load));
        let mut sent = Vec::new();
        while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await.expect("an end") {
            sent.push(
                item.map(|message| message.notification.unwrap().id)
                    .map_err(|status| (status.code(), status.message().to_string())),
            );
        }
        drop(source);
        relaying.await.unwrap();
        sent
    }

    use complianceiq_proto::complianceiq::notification::v1::Notification;

    #[tokio::test]
    async fn only_the_recipients_notifications_then_an_end_when_the_token_expires() {
        let arrivals = [
            arrival("org", "ada", "1"),
            arrival("org", "bob", "2"),
            arrival("other", "ada", "3"),
            arrival("org", "ada", "4"),
        ];
        let sent = streamed(&arrivals, Duration::from_millis(200)).await;
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent[..2], [Ok("1".to_string()), Ok("4".to_string())]);
        let (code, message) = sent[2].clone().unwrap_err();
        assert_eq!(code, tonic::Code::Unauthenticated);
        assert!(message.contains("expired"), "{message}");
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_ended_not_silently_thinned() {
        let arrivals: Vec<Arrival> = (0..BACKLOG + 10).map(|n| arrival("org", "ada", &n.to_string())).collect();
        let sent = streamed(&arrivals, Duration::from_secs(60)).await;
        let (code, message) = sent.last().unwrap().clone().unwrap_err();
        assert_eq!(code, tonic::Code::Aborted);
        assert!(message.contains("fell 10 notifications behind"), "{message}");
        assert_eq!(sent.len(), 1, "nothing streamed before the lag was noticed: {sent:?}");
    }

    #[test]
    fn a_person_holds_a_bounded_number_of_streams_and_closing_one_frees_it() {
        let live = Live::new();
        let key = ("org".to_string(), "ada".to_string());
        let mut slots: Vec<Slot> =
            (0..MAX_STREAMS_PER_PERSON).map(|_| live.take_slot(key.clone()).expect("a slot")).collect();
        let refused = live.take_slot(key.clone()).map(|_| ()).unwrap_err();
        assert!(matches!(refused, ApiError::ResourceExhausted { reason: "TOO_MANY_STREAMS", .. }));
        assert!(live.take_slot(("org".into(), "bob".into())).is_ok(), "another person is not affected");
        slots.pop();
        assert!(live.take_slot(key).is_ok());
    }
}
