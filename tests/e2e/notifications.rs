//! Notifications: what notifies whom (instance admins hear of a failed sync, a viewer does
//! not), each person's preferences (channels per topic, a minimum severity, quiet hours in
//! their time zone that hold email; a security alert ignores them all), in-app reading (list, unread count, read, delete), email through a real SMTP
//! server as multipart text and HTML whose link works, nothing twice for a repeated event,
//! and a second organization that sees none of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use complianceiq_proto::complianceiq::common::v1::Severity;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{SecurityAlert, SyncFailed};
use complianceiq_proto::complianceiq::instance::v1::SyncRun;
use complianceiq_proto::complianceiq::notification::v1::notification_service_client::NotificationServiceClient;
use complianceiq_proto::complianceiq::notification::v1::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tonic::Code;

use crate::harness::{Backend, TestPlatform, bus_message};
use crate::people::{Tenant, authorized};

/// A small SMTP server: accepts every message and files it in the platform's dev mailbox
/// (where the test harness reads verification mail), as the raw message it received.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    pub(crate) mailbox: Arc<Mutex<Option<std::path::PathBuf>>>,
    received: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mailbox: Arc<Mutex<Option<std::path::PathBuf>>> = Arc::default();
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let (dir, all) = (mailbox.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (dir, all) = (dir.clone(), all.clone());
                tokio::spawn(async move {
                    let _ = session(stream, dir, all).await;
                });
            }
        });
        Self { port, mailbox, received }
    }

    /// The notification mails to `to` (not the sign-up's), once there are `count` (20 s at
    /// most).
    pub(crate) async fn messages_to(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found: Vec<String> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.contains(&format!("To: {to}")) && !m.contains("Subject: Verify your email"))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} of {count} mails to {to}", found.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mailbox: Arc<Mutex<Option<std::path::PathBuf>>>,
    received: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test-smtp ready\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => write.write_all(b"250 test-smtp\r\n").await?,
            "DATA" => {
                write.write_all(b"354 end with a dot\r\n").await?;
                let mut message = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    message.push_str(line.strip_prefix('.').unwrap_or(&line));
                    message.push_str("\r\n");
                }
                if let Some(dir) = mailbox.lock().unwrap().clone() {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(dir.join(format!("{}-smtp.eml", uuid::Uuid::now_v7().simple())), &message)?;
                }
                received.lock().unwrap().push(message);
                write.write_all(b"250 queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 ok\r\n").await?,
        }
    }
    Ok(())
}

async fn client(platform: &TestPlatform) -> NotificationServiceClient<tonic::transport::Channel> {
    NotificationServiceClient::new(platform.channel("notification").await)
}

async fn list(platform: &TestPlatform, token: &str) -> ListNotificationsResponse {
    let request = ListNotificationsRequest { page_size: 100, ..Default::default() };
    client(platform).await.list_notifications(authorized(request, token)).await.expect("list").into_inner()
}

/// The caller's in-app list once it has `count` notifications (20 s at most).
async fn listed(platform: &TestPlatform, token: &str, count: usize) -> Vec<Notification> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let notifications = list(platform, token).await.notifications;
        if notifications.len() >= count {
            return notifications;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {count} notifications", notifications.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sync_failed(tenant: &Tenant, run_id: &str) -> complianceiq_kit::bus::BusMessage {
    let run = SyncRun {
        id: run_id.into(),
        organization_id: tenant.id().into(),
        instance_id: "0190f0c4-0000-7000-8000-000000000001".into(),
        error: "the instance answered 401".into(),
        ..Default::default()
    };
    bus_message(tenant.id(), Payload::SyncFailed(SyncFailed { sync_run: Some(run) }), "instance")
}

mod routed_by_preferences_and_mailed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::routed_by_preferences_and_mailed(Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        super::routed_by_preferences_and_mailed(Backend::Servers).await;
    }
}

async fn routed_by_preferences_and_mailed(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let platform = TestPlatform::start_with(backend, move |config| {
        config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    *smtp.mailbox.lock().unwrap() = Some(platform.config.data_dir.join("mailbox"));
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let tenant = platform.tenant("Notified").await;
        let other = platform.tenant("Elsewhere").await;
        // An Organization Member (the default role) administers no instance.
        let (viewer, _) = platform.member(&tenant, "viewer@notified.example.com", &[]).await;
        let admin = &tenant.admin.email;

        // A failed sync reaches the instance admins in-app and by email, not a viewer.
        let bus = platform.platform().bus.clone();
        let failed = sync_failed(&tenant, "0190f0c4-0000-7000-8000-0000000000aa");
        bus.publish(failed.clone()).await.unwrap();
        let inbox = listed(&platform, tenant.token(), 1).await;
        let notification = &inbox[0];
        assert_eq!(
            (notification.topic.as_str(), notification.title.as_str()),
            ("sync.failed", "A ServiceNow sync failed")
        );
        assert!(notification.body.contains("the instance answered 401"));
        assert!(!notification.read);
        let mails = smtp.messages_to(admin, 1).await;
        let mail = &mails[0];
        assert!(mail.contains("Subject: A ServiceNow sync failed"), "{mail}");
        assert!(
            mail.contains("multipart/alternative") && mail.contains("text/plain") && mail.contains("text/html"),
            "{mail}"
        );
        let channels: Vec<(Channel, DeliveryState)> = {
            let request = GetNotificationRequest { notification_id: notification.id.clone() };
            let got = client(&platform).await.get_notification(authorized(request, tenant.token())).await.unwrap();
            got.into_inner().deliveries.iter().map(|d| (d.channel(), d.state())).collect()
        };
        assert!(channels.contains(&(Channel::InApp, DeliveryState::Sent)), "{channels:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let request = GetNotificationRequest { notification_id: notification.id.clone() };
            let got = client(&platform).await.get_notification(authorized(request, tenant.token())).await.unwrap();
            if got
                .get_ref()
                .deliveries
                .iter()
                .any(|d| d.channel() == Channel::Email && d.state() == DeliveryState::Sent)
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the email delivery never became SENT: {got:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(list(&platform, viewer.token()).await.notifications.is_empty(), "a viewer administers no instance");

        // The same event again notifies nobody twice.
        bus.publish(failed).await.unwrap();

        // SendNotification's link leads into the platform, and works there.
        let send = SendNotificationRequest {
            user_ids: vec![tenant.admin.user_id.clone()],
            topic: "team.news".into(),
            severity: Severity::Medium as i32,
            title: "Quarterly review".into(),
            body: "Review the <b>controls</b> & risks.".into(),
            link_uri: "/api/v1/users/me".into(),
            channels: vec![],
        };
        let sent = client(&platform).await.send_notification(authorized(send.clone(), tenant.token())).await.unwrap();
        let link = sent.get_ref().notifications[0].link_uri.clone();
        assert_eq!(link, format!("{}/api/v1/users/me", platform.config.mail.public_url));
        let mails = smtp.messages_to(admin, 2).await;
        let mail = mails.iter().find(|m| m.contains("Quarterly review")).unwrap();
        assert!(mail.contains("&lt;b&gt;controls&lt;&#x2f;b&gt; &amp; risks"), "HTML is escaped: {mail}");
        let gateway = platform.address("gateway");
        let path = link.strip_prefix(&platform.config.mail.public_url).unwrap();
        let response = reqwest::Client::new()
            .get(format!("http://{gateway}{path}"))
            .bearer_auth(tenant.token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the mailed link works");

        // In-app reading: unread count, read, delete.
        let inbox = listed(&platform, tenant.token(), 2).await;
        assert_eq!(inbox.len(), 2, "the repeated event notified nobody twice: {inbox:#?}");
        assert_eq!(list(&platform, tenant.token()).await.unread_count, 2);
        let read = MarkNotificationReadRequest { notification_id: inbox[1].id.clone() };
        let read = client(&platform).await.mark_notification_read(authorized(read, tenant.token())).await.unwrap();
        assert!(read.get_ref().read && read.get_ref().read_time.is_some());
        assert_eq!(list(&platform, tenant.token()).await.unread_count, 1);
        let unread = ListNotificationsRequest { unread_only: true, ..Default::default() };
        let unread = client(&platform).await.list_notifications(authorized(unread, tenant.token())).await.unwrap();
        assert_eq!(unread.get_ref().notifications.len(), 1);

        // Nobody else reaches them: not another member, not another organization.
        for token in [viewer.token(), other.token()] {
            let request = GetNotificationRequest { notification_id: inbox[0].id.clone() };
            let status = client(&platform).await.get_notification(authorized(request, token)).await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
            let request = DeleteNotificationRequest { notification_id: inbox[0].id.clone() };
            let status = client(&platform).await.delete_notification(authorized(request, token)).await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
        }
        let outsider = SendNotificationRequest { user_ids: vec![other.admin.user_id.clone()], ..send.clone() };
        let status = client(&platform).await.send_notification(authorized(outsider, tenant.token())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "only members are notified");
        let delete = DeleteNotificationRequest { notification_id: inbox[0].id.clone() };
        client(&platform).await.delete_notification(authorized(delete, tenant.token())).await.unwrap();
        assert_eq!(list(&platform, tenant.token()).await.notifications.len(), 1);

        // Preferences: failed syncs in-app only; nothing below critical otherwise.
        let preferences = NotificationPreferences {
            topics: vec![
                TopicPreference {
                    topic: "sync.failed".into(),
                    channels: vec![Channel::InApp as i32],
                    ..Default::default()
                },
                TopicPreference {
                    topic: "*".into(),
                    channels: vec![Channel::InApp as i32, Channel::Email as i32],
                    min_severity: Severity::Critical as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let update = UpdateNotificationPreferencesRequest { preferences: Some(preferences), update_mask: None };
        let saved =
            client(&platform).await.update_notification_preferences(authorized(update, tenant.token())).await.unwrap();
        assert_eq!(saved.get_ref().topics.len(), 2);
        let bad = NotificationPreferences {
            quiet_hours_start: "25:00".into(),
            phone_number: "555".into(),
            time_zone: "Mars/Olympus".into(),
            ..Default::default()
        };
        let update = UpdateNotificationPreferencesRequest { preferences: Some(bad), update_mask: None };
        let status = client(&platform)
            .await
            .update_notification_preferences(authorized(update, tenant.token()))
            .await
            .unwrap_err();
        let fields: Vec<String> = crate::harness::violations(&status).into_iter().map(|(field, _)| field).collect();
        assert_eq!(
            fields,
            [
                "preferences.phone_number",
                "preferences.quiet_hours_start",
                "preferences.quiet_hours_end",
                "preferences.time_zone"
            ]
        );

        bus.publish(sync_failed(&tenant, "0190f0c4-0000-7000-8000-0000000000bb")).await.unwrap();
        client(&platform).await.send_notification(authorized(send.clone(), tenant.token())).await.unwrap();

        // Quiet hours from an hour ago to an hour from now in Tokyo (UTC+9, as the service must
        // reckon them): a critical message shows in-app at once and its email waits.
        let tokyo = complianceiq_kit::time::now_micros() / 60_000_000 + 9 * 60;
        let clock = |minutes: i64| format!("{:02}:{:02}", minutes.rem_euclid(1440) / 60, minutes.rem_euclid(60));
        let quiet = NotificationPreferences {
            quiet_hours_start: clock(tokyo - 60),
            quiet_hours_end: clock(tokyo + 60),
            time_zone: "Asia/Tokyo".into(),
            ..Default::default()
        };
        let update = UpdateNotificationPreferencesRequest { preferences: Some(quiet), update_mask: None };
        client(&platform).await.update_notification_preferences(authorized(update, tenant.token())).await.unwrap();
        let critical = SendNotificationRequest {
            severity: Severity::Critical as i32,
            title: "Critical but not urgent".into(),
            ..send
        };
        let held = client(&platform).await.send_notification(authorized(critical, tenant.token())).await.unwrap();
        let held = &held.get_ref().notifications[0];
        let state = |channel| held.deliveries.iter().find(|d| d.channel() == channel).map(|d| d.state());
        assert_eq!(
            (state(Channel::InApp), state(Channel::Email)),
            (Some(DeliveryState::Sent), Some(DeliveryState::Pending))
        );

        // A security alert ignores preferences and quiet hours: the person hears of it by email.
        let alert = SecurityAlert {
            kind: "refresh_token.reused".into(),
            severity: "high".into(),
            user_id: tenant.admin.user_id.clone(),
            ip_address: "203.0.113.9".into(),
            ..Default::default()
        };
        bus.publish(bus_message(tenant.id(), Payload::SecurityAlert(alert), "auth")).await.unwrap();
        let mails = smtp.messages_to(admin, 3).await;
        assert!(mails[2].contains("Security alert on your ComplianceIQ account"), "{}", mails[2]);
        let inbox = listed(&platform, tenant.token(), 3).await;
        let titles: Vec<&str> = inbox.iter().map(|n| n.title.as_str()).collect();
        assert_eq!(titles, ["Critical but not urgent", "A ServiceNow sync failed", "A ServiceNow sync failed"]);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let mails = smtp.messages_to(admin, 3).await;
        assert_eq!(mails.len(), 3, "no email for the sync (in-app only), the medium news, or the held critical one");
        let request = GetNotificationRequest { notification_id: held.id.clone() };
        let still = client(&platform).await.get_notification(authorized(request, tenant.token())).await.unwrap();
        assert!(
            still
                .get_ref()
                .deliveries
                .iter()
                .any(|d| d.channel() == Channel::Email && d.state() == DeliveryState::Pending)
        );
    }))
    .await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

crate::platform_tests!(
    in_app_notifications_stream_over_grpc_web,
    a_daily_digest_gathers_a_topics_email,
    an_organization_words_its_own_mail,
    the_webhook_channel_hands_a_notification_to_partner_systems
);

/// A StreamNotifications call over grpc-web (binary), read frame by frame as it arrives.
struct WebStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl WebStream {
    async fn open(platform: &TestPlatform, token: &str) -> Self {
        let content_type = "application/grpc-web+proto";
        let response = reqwest::Client::new()
            .post(format!(
                "http://{}/complianceiq.notification.v1.NotificationService/StreamNotifications",
                platform.address("gateway")
            ))
            .header("content-type", content_type)
            .header("accept", content_type)
            .header("x-grpc-web", "1")
            .bearer_auth(token)
            .body(vec![0u8; 5]) // one frame holding the empty request
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Self { response, buffer: Vec::new() }
    }

    /// The next message (10 s at most); a panic with the status if the stream ended.
    async fn next(&mut self) -> StreamNotificationsResponse {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.buffer.len() >= 5 {
                let length = u32::from_be_bytes(self.buffer[1..5].try_into().unwrap()) as usize;
                if self.buffer.len() >= 5 + length {
                    let frame: Vec<u8> = self.buffer.drain(..5 + length).collect();
                    assert_eq!(frame[0] & 0x80, 0, "the stream ended: {}", String::from_utf8_lossy(&frame[5..]));
                    return prost::Message::decode(&frame[5..]).unwrap();
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("a message within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// Sends `title` to `user_id` in-app once the notification service knows them as a member.
async fn send_in_app(platform: &TestPlatform, token: &str, user_id: &str, title: &str) {
    let request = SendNotificationRequest {
        user_ids: vec![user_id.into()],
        topic: "team.news".into(),
        title: title.into(),
        channels: vec![Channel::InApp as i32],
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match client(platform).await.send_notification(authorized(request.clone(), token)).await {
            Ok(_) => return,
            Err(status) if status.code() == Code::InvalidArgument && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("sending {title}: {status:?}"),
        }
    }
}

async fn in_app_notifications_stream_over_grpc_web(platform: &TestPlatform) {
    let tenant = platform.tenant("Streaming").await;
    let other = platform.tenant("Not Streaming").await;
    let (viewer, _) = platform.member(&tenant, "viewer@streaming.example.com", &[]).await;
    let mut admin = WebStream::open(platform, tenant.token()).await;
    let mut watching = WebStream::open(platform, viewer.token()).await;
    let mut elsewhere = WebStream::open(platform, other.token()).await;
    for stream in [&mut admin, &mut watching, &mut elsewhere] {
        let first = stream.next().await;
        assert_eq!((first.notification, first.unread_count), (None, 0), "first the unread count: the stream is live");
    }

    send_in_app(platform, tenant.token(), &tenant.admin.user_id, "Welcome").await;
    let welcome = admin.next().await;
    assert_eq!((welcome.notification.unwrap().title.as_str(), welcome.unread_count), ("Welcome", 1));

    // An event's notification reaches the stream within a second of the event.
    let published = tokio::time::Instant::now();
    platform.platform().bus.publish(sync_failed(&tenant, "0190f0c4-0000-7000-8000-0000000000cc")).await.unwrap();
    let failed = admin.next().await;
    let latency = published.elapsed();
    let notification = failed.notification.unwrap();
    assert_eq!((notification.topic.as_str(), failed.unread_count), ("sync.failed", 2));
    assert!(latency < Duration::from_secs(1), "the event's notification took {latency:?}");

    // The other member and the other organization saw none of it: the next thing each
    // stream carries is their own.
    send_in_app(platform, tenant.token(), &viewer.user_id, "For the viewer").await;
    assert_eq!(watching.next().await.notification.unwrap().title, "For the viewer");
    send_in_app(platform, other.token(), &other.admin.user_id, "Elsewhere").await;
    assert_eq!(elsewhere.next().await.notification.unwrap().title, "Elsewhere");

    // REST carries the same stream as newline-delimited JSON.
    let mut rest = reqwest::Client::new()
        .get(format!("http://{}/api/v1/notifications:stream", platform.address("gateway")))
        .bearer_auth(tenant.token())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.headers()["content-type"], "application/x-ndjson");
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        let chunk = tokio::time::timeout(Duration::from_secs(10), rest.chunk()).await.unwrap().unwrap().unwrap();
        line.extend_from_slice(&chunk);
    }
    let first: serde_json::Value = serde_json::from_slice(line.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first, serde_json::json!({"result": {"unreadCount": 2}}));
}

/// Each text the stand-in received: `<account> <authorization>`, and the form.
type Texts = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A stand-in for Twilio's Messages API: records each message; refuses Twilio's magic
/// invalid number as Twilio does.
async fn twilio_messages(
    axum::extract::State(log): axum::extract::State<Texts>,
    axum::extract::Path(account): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let to = form.iter().find(|(name, _)| name == "To").map(|(_, v)| v.clone()).unwrap_or_default();
    log.lock().unwrap().push((format!("{account} {authorization}"), form));
    let (status, answer) = if to == "+15005550001" {
        (
            400,
            serde_json::json!({"code": 21211, "message": format!("The 'To' number {to} is not a valid phone number."), "status": 400}),
        )
    } else {
        (201, serde_json::json!({"sid": "SM0123", "status": "queued"}))
    };
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
}

/// The delivery of `notification` on `channel` once it is no longer pending (20 s at most).
async fn settled(platform: &TestPlatform, token: &str, notification: &str, channel: Channel) -> ChannelDelivery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let request = GetNotificationRequest { notification_id: notification.into() };
        let got = client(platform).await.get_notification(authorized(request, token)).await.unwrap().into_inner();
        let delivery = got.deliveries.iter().find(|d| d.channel() == channel).cloned().expect("a delivery");
        if delivery.state() != DeliveryState::Pending {
            return delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "the {channel:?} delivery stayed pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SMS is a provider call, not a storage matter: embedded defaults only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_go_to_the_provider_and_its_refusals_are_kept() {
    let log: Texts = Arc::default();
    let app = axum::Router::new()
        .route("/2010-04-01/Accounts/{account}/Messages.json", axum::routing::post(twilio_messages))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let platform = TestPlatform::start_with(Backend::Embedded, move |config| {
        config.sms.api_url = format!("http://127.0.0.1:{port}");
        config.sms.account_sid = Some("ACtest".into());
        config.sms.auth_token = Some("not-a-real-token".into());
        config.sms.from = Some("+14155550199".into());
    })
    .await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let tenant = platform.tenant("Texted").await;
        let (wrong, _) = platform.member(&tenant, "wrong-number@texted.example.com", &[]).await;
        let (silent, _) = platform.member(&tenant, "no-number@texted.example.com", &[]).await;
        for (token, phone) in [(tenant.token(), "+14155550100"), (wrong.token(), "+15005550001")] {
            let preferences = NotificationPreferences { phone_number: phone.into(), ..Default::default() };
            let update = UpdateNotificationPreferencesRequest { preferences: Some(preferences), update_mask: None };
            client(&platform).await.update_notification_preferences(authorized(update, token)).await.unwrap();
        }
        send_in_app(&platform, tenant.token(), &silent.user_id, "Known").await;
        let send = SendNotificationRequest {
            user_ids: vec![tenant.admin.user_id.clone(), wrong.user_id.clone(), silent.user_id.clone()],
            topic: "team.news".into(),
            title: "Controls review".into(),
            body: "Three controls need evidence".into(),
            link_uri: "/api/v1/users/me".into(),
            channels: vec![Channel::Sms as i32],
            ..Default::default()
        };
        let sent = client(&platform).await.send_notification(authorized(send, tenant.token())).await.unwrap();
        let by_user = |user: &str| sent.get_ref().notifications.iter().find(|n| n.user_id == user).unwrap().id.clone();

        let delivered = settled(&platform, tenant.token(), &by_user(&tenant.admin.user_id), Channel::Sms).await;
        assert_eq!(delivered.state(), DeliveryState::Sent, "{delivered:?}");
        let refused = settled(&platform, wrong.token(), &by_user(&wrong.user_id), Channel::Sms).await;
        assert_eq!(refused.state(), DeliveryState::Failed, "a refused number is not retried");
        assert!(refused.error.contains("21211") && refused.error.contains("not a valid phone number"), "{refused:?}");
        let none = settled(&platform, silent.token(), &by_user(&silent.user_id), Channel::Sms).await;
        assert_eq!(
            (none.state(), none.error.as_str()),
            (DeliveryState::Suppressed, "no phone number in the preferences")
        );

        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 2, "one request per number, none for the refused one again: {log:?}");
        let (who, form) = log.iter().find(|(_, form)| form.contains(&("To".into(), "+14155550100".into()))).unwrap();
        use base64::Engine;
        let credentials = base64::engine::general_purpose::STANDARD.encode("ACtest:not-a-real-token");
        assert_eq!(who, &format!("ACtest Basic {credentials}"));
        assert!(form.contains(&("From".into(), "+14155550199".into())));
        let body = &form.iter().find(|(name, _)| name == "Body").unwrap().1;
        assert!(
            body.starts_with("Controls review: Three controls need evidence\n")
                && body.ends_with(&format!("{}/api/v1/users/me", platform.config.mail.public_url)),
            "{body}"
        );
    }))
    .await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn a_daily_digest_gathers_a_topics_email(platform: &TestPlatform) {
    use complianceiq_kit::config::DatabaseGroup;

    let tenant = platform.tenant("Digested").await;
    let admin = tenant.admin.email.clone();
    // The person lives in Tokyo (their profile says so; the notification preferences name no
    // time zone): team news gathered into a digest at 07:30 there; everything else at once.
    use complianceiq_proto::complianceiq::user::v1::user_service_client::UserServiceClient;
    use complianceiq_proto::complianceiq::user::v1::{UpdateCurrentUserRequest, User, UserPreferences};
    let profile = UpdateCurrentUserRequest {
        user: Some(User {
            preferences: Some(UserPreferences { timezone: "Asia/Tokyo".into(), ..Default::default() }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["preferences.timezone".into()] }),
    };
    UserServiceClient::new(platform.channel("user").await)
        .update_current_user(authorized(profile, tenant.token()))
        .await
        .expect("the profile's time zone");
    let carried = format!(
        "SELECT COUNT(*) FROM notification_recipients WHERE organization_id = '{}' AND time_zone = 'Asia/Tokyo'",
        tenant.id()
    );
    platform.stored_count_reaches(DatabaseGroup::Core, &carried, 1).await;
    let preferences = NotificationPreferences {
        topics: vec![TopicPreference {
            topic: "team.news".into(),
            channels: vec![Channel::InApp as i32, Channel::Email as i32],
            cadence: Cadence::DailyDigest as i32,
            ..Default::default()
        }],
        digest_time: "07:30".into(),
        ..Default::default()
    };
    let update = UpdateNotificationPreferencesRequest { preferences: Some(preferences), update_mask: None };
    client(platform).await.update_notification_preferences(authorized(update, tenant.token())).await.unwrap();
    send_in_app(platform, tenant.token(), &tenant.admin.user_id, "Known").await;
    let mut gathered = Vec::new();
    for (topic, title) in [("team.news", "First news"), ("team.news", "Second news"), ("other.news", "Other news")] {
        let send = SendNotificationRequest {
            user_ids: vec![tenant.admin.user_id.clone()],
            topic: topic.into(),
            title: title.into(),
            ..Default::default()
        };
        let sent = client(platform).await.send_notification(authorized(send, tenant.token())).await.unwrap();
        if topic == "team.news" {
            gathered.push(sent.into_inner().notifications[0].id.clone());
        }
    }
    let mailbox = platform.config.data_dir.join("mailbox");
    crate::people::mail_from_mailbox(&mailbox, &admin, "Subject: Other news").await;
    for id in &gathered {
        let request = GetNotificationRequest { notification_id: id.clone() };
        let got = client(platform).await.get_notification(authorized(request, tenant.token())).await.unwrap();
        let email = got.get_ref().deliveries.iter().find(|d| d.channel() == Channel::Email).unwrap().clone();
        assert_eq!(email.state(), DeliveryState::Pending, "waits for the digest");
    }

    // One digest job, due at the next 07:30 in Tokyo (22:30 UTC).
    let now = complianceiq_kit::time::now_micros();
    let day = 86_400_000_000_i64;
    let mut due = now - now.rem_euclid(day) + (22 * 60 + 30) * 60_000_000;
    if due <= now {
        due += day;
    }
    let queued = format!(
        "SELECT COUNT(*) FROM ciq_jobs WHERE kind = 'notification-digest' AND organization_id = '{}' \
         AND lease_until = {due}",
        tenant.id()
    );
    assert_eq!(platform.stored_count(DatabaseGroup::Core, &queued).await, 1);

    // The time comes: one mail with both.
    platform
        .execute_as_owner(
            DatabaseGroup::Core,
            &format!(
                "UPDATE ciq_jobs SET lease_until = 0 WHERE kind = 'notification-digest' AND organization_id = '{}'",
                tenant.id()
            ),
        )
        .await;
    let digest = crate::people::mail_from_mailbox(&mailbox, &admin, "Your ComplianceIQ digest: 2 notifications").await;
    assert!(
        digest.contains("First news") && digest.contains("Second news") && !digest.contains("Other news"),
        "{digest}"
    );
    for id in &gathered {
        let email = settled(platform, tenant.token(), id, Channel::Email).await;
        assert_eq!(email.state(), DeliveryState::Sent);
    }
    let any_queued = format!(
        "SELECT COUNT(*) FROM ciq_jobs WHERE kind = 'notification-digest' AND organization_id = '{}'",
        tenant.id()
    );
    assert_eq!(platform.stored_count(DatabaseGroup::Core, &any_queued).await, 0, "nothing left to gather");
}

async fn an_organization_words_its_own_mail(platform: &TestPlatform) {
    let tenant = platform.tenant("Worded").await;
    let other = platform.tenant("Plain").await;
    let (member, _) = platform.member(&tenant, "member@worded.example.com", &[]).await;
    let mailbox = platform.config.data_dir.join("mailbox");
    let template = NotificationTemplate {
        name: "notification".into(),
        subject: "[Worded] {{ title }}".into(),
        text: "Worded GRC desk: {{ title }}\n{{ body }}\n{{ link }}".into(),
        html: "<h1>Worded</h1><p>{{ body }}</p>".into(),
        ..Default::default()
    };
    let update = UpdateNotificationTemplateRequest { name: "notification".into(), template: Some(template.clone()) };
    let status = client(platform).await.update_notification_template(authorized(update.clone(), member.token())).await;
    assert_eq!(status.unwrap_err().code(), Code::PermissionDenied, "only those who administer the organization");
    let saved = client(platform).await.update_notification_template(authorized(update, tenant.token())).await.unwrap();
    assert!(saved.get_ref().customized && saved.get_ref().updated_by == tenant.admin.user_id);

    // Its mail goes out in its words; another organization's does not.
    for (who, token, user) in [("tenant", tenant.token(), &tenant.admin), ("other", other.token(), &other.admin)] {
        send_in_app(platform, token, &user.user_id, "Known").await;
        let send = SendNotificationRequest {
            user_ids: vec![user.user_id.clone()],
            topic: "team.news".into(),
            title: format!("Evidence due ({who})"),
            body: "<b>Friday</b>".into(),
            channels: vec![Channel::Email as i32],
            ..Default::default()
        };
        client(platform).await.send_notification(authorized(send, token)).await.unwrap();
    }
    let worded = crate::people::mail_from_mailbox(&mailbox, &tenant.admin.email, "Evidence due (tenant)").await;
    assert!(worded.contains("Subject: [Worded] Evidence due (tenant)"), "{worded}");
    assert!(
        worded.contains("Worded GRC desk: Evidence due (tenant)") && worded.contains("&lt;b&gt;Friday"),
        "{worded}"
    );
    let plain = crate::people::mail_from_mailbox(&mailbox, &other.admin.email, "Evidence due (other)").await;
    assert!(!plain.contains("Worded") && plain.contains("Subject: Evidence due (other)"), "{plain}");

    // A broken template is refused with the part that is wrong; nothing is kept.
    let broken = NotificationTemplate { text: "{% if title %}unclosed".into(), ..template };
    let update = UpdateNotificationTemplateRequest { name: "notification".into(), template: Some(broken) };
    let status =
        client(platform).await.update_notification_template(authorized(update, tenant.token())).await.unwrap_err();
    assert_eq!(crate::harness::violations(&status), [("template.text".to_string(), "INVALID_TEMPLATE".to_string())]);
    let get = |token: &str| {
        let request = GetNotificationTemplateRequest { name: "notification".into() };
        let token = token.to_string();
        async move { client(platform).await.get_notification_template(authorized(request, &token)).await }
    };
    assert_eq!(get(tenant.token()).await.unwrap().get_ref().subject, "[Worded] {{ title }}");
    assert!(!get(other.token()).await.unwrap().get_ref().customized, "the other organization has the platform's");

    // Deleted: the platform's again; deleting twice finds nothing.
    let delete = DeleteNotificationTemplateRequest { name: "notification".into() };
    client(platform).await.delete_notification_template(authorized(delete.clone(), tenant.token())).await.unwrap();
    assert_eq!(get(tenant.token()).await.unwrap().get_ref().subject, "{{ title }}");
    let again = client(platform).await.delete_notification_template(authorized(delete, tenant.token())).await;
    assert_eq!(again.unwrap_err().code(), Code::NotFound);
    let unknown = GetNotificationTemplateRequest { name: "newsletter".into() };
    let status =
        client(platform).await.get_notification_template(authorized(unknown, tenant.token())).await.unwrap_err();
    assert_eq!(crate::harness::violations(&status), [("name".to_string(), "UNKNOWN_TEMPLATE".to_string())]);
}

async fn the_webhook_channel_hands_a_notification_to_partner_systems(platform: &TestPlatform) {
    let tenant = platform.tenant("Bridged").await;
    let receiver = crate::receiver::Receiver::start().await;
    crate::webhooks::subscribe(platform, &tenant, &receiver, &["notification.sent"]).await;
    send_in_app(platform, tenant.token(), &tenant.admin.user_id, "Only for the person").await;
    let send = SendNotificationRequest {
        user_ids: vec![tenant.admin.user_id.clone()],
        topic: "audit.week".into(),
        title: "Audit week starts Monday".into(),
        body: "Evidence for 12 controls is due".into(),
        severity: Severity::Medium as i32,
        link_uri: "/api/v1/users/me".into(),
        channels: vec![Channel::Webhook as i32],
    };
    let sent = client(platform).await.send_notification(authorized(send, tenant.token())).await.unwrap();
    let delivery = &sent.get_ref().notifications[0].deliveries[0];
    assert_eq!((delivery.channel(), delivery.state()), (Channel::Webhook, DeliveryState::Sent), "handed over at once");

    let messages: Vec<serde_json::Value> =
        receiver.accepted(2, Duration::from_secs(20)).await.iter().map(|received| received.json()).collect();
    let data = |channel: &str| {
        messages
            .iter()
            .map(|message| &message["data"])
            .find(|data| data["channels"] == serde_json::json!([channel]))
            .unwrap_or_else(|| panic!("no {channel} message in {messages:#?}"))
            .clone()
    };
    let handed = data("webhook");
    assert_eq!(handed["title"], "Audit week starts Monday");
    assert_eq!(
        (handed["body"].as_str(), handed["severity"].as_str()),
        (Some("Evidence for 12 controls is due"), Some("MEDIUM"))
    );
    assert!(handed["linkUri"].as_str().unwrap_or_default().ends_with("/api/v1/users/me"), "{handed}");
    let private = data("in_app");
    assert!(
        private.get("title").is_none() && private.get("body").is_none(),
        "what a person is told stays theirs: {private}"
    );
}
