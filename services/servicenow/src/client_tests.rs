//! The client against the simulator over real HTTP: paging, authentication, throttling,
//! retries and each failure named for what it is.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientSettings, Credentials, PageRequest, SnError};
use crate::query::Query;
use crate::sim::{self, SimConfig, Simulator};
use crate::tables;

struct Running {
    simulator: Arc<Simulator>,
    url: String,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(config: SimConfig) -> Running {
    let simulator = Arc::new(Simulator::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve(simulator.clone(), listener, stop.clone()));
    Running { simulator, url, stop }
}

fn basic(config: &SimConfig) -> Credentials {
    Credentials::Basic { username: config.username.clone(), password: config.password.clone() }
}

fn quick() -> ClientSettings {
    ClientSettings {
        requests_per_second: 1000.0,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(100),
        network: crate::NetworkAccess::AllowPrivate,
        ..ClientSettings::default()
    }
}

/// Every sys_id of `table`, by keyset pages of `size`.
async fn all_ids(client: &Client, table: &str, size: u32) -> Result<(BTreeSet<String>, usize), SnError> {
    let (mut ids, mut pages, mut after): (BTreeSet<String>, usize, Option<String>) = (BTreeSet::new(), 0, None);
    loop {
        let request = PageRequest {
            query: Query::ids_after(after.as_deref()),
            fields: "sys_id".into(),
            limit: size,
            ..Default::default()
        };
        let page = client.page(table, &request).await?;
        pages += 1;
        let Some(last) = page.records.last() else { return Ok((ids, pages)) };
        after = last["sys_id"].as_str().map(str::to_string);
        for record in &page.records {
            assert!(ids.insert(record["sys_id"].as_str().unwrap().to_string()), "a record came twice");
        }
        if page.records.len() < size as usize {
            return Ok((ids, pages));
        }
    }
}

#[tokio::test]
async fn pages_with_basic_auth_return_every_record_once() {
    let config = SimConfig { controls: 120, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let client = Client::new(&running.url, basic(&config), quick()).unwrap();
    let (ids, pages) = all_ids(&client, "sn_compliance_control", 37).await.unwrap();
    assert_eq!(ids, running.simulator.ids("sn_compliance_control"));
    assert_eq!(pages, 4);

    let request = PageRequest {
        query: Query::default(),
        fields: tables::CONTROLS.field_list(),
        limit: 10,
        count: true,
        ..Default::default()
    };
    let page = client.page("sn_compliance_control", &request).await.unwrap();
    assert_eq!(page.total, Some(120));
    assert!(page.has_next);
    // Without a count (sysparm_no_count=true) the page still says whether another follows.
    let uncounted =
        client.page("sn_compliance_control", &PageRequest { count: false, ..request.clone() }).await.unwrap();
    assert_eq!((uncounted.total, uncounted.has_next, uncounted.records.len()), (None, true, 10));
    let last = PageRequest { offset: 110, count: false, ..request.clone() };
    let last = client.page("sn_compliance_control", &last).await.unwrap();
    assert_eq!((last.has_next, last.records.len()), (false, 10));
    assert!(page.server_time.is_some_and(|time| (time - sim::now()).abs() < 5));
    let record = &page.records[0];
    // References arrive as plain sys_ids (sysparm_exclude_reference_link), values as text.
    assert!(running.simulator.ids("sn_compliance_policy_statement").contains(record["content"].as_str().unwrap()));
    assert!(matches!(record["key_control"].as_str(), Some("true" | "false")));
    assert_eq!(record.len(), tables::CONTROLS.field_list().split(',').count());
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_every_page_is_read() {
    let config =
        SimConfig { controls: 60, throttle_every: 3, fail_every: 5, retry_after_seconds: 0, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let client = Client::new(&running.url, basic(&config), quick()).unwrap();
    let (ids, pages) = all_ids(&client, "sn_compliance_control", 10).await.unwrap();
    assert_eq!(ids, running.simulator.ids("sn_compliance_control"));
    assert!(running.simulator.requests() > pages as u64, "no request was refused and retried");

    // Throttled without end: the client gives up, saying so.
    let config = SimConfig { throttle_every: 1, retry_after_seconds: 0, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let client = Client::new(&running.url, basic(&config), quick()).unwrap();
    let error = client.page("sn_grc_issue", &PageRequest { limit: 1, ..Default::default() }).await.unwrap_err();
    assert_eq!(error, SnError::Throttled { attempts: 10 });
}

#[tokio::test]
async fn the_request_rate_per_instance_is_bounded() {
    let config = SimConfig { controls: 10, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let settings = ClientSettings { requests_per_second: 20.0, ..quick() };
    let client = Client::new(&running.url, basic(&config), settings).unwrap();
    let started = Instant::now();
    // Eleven requests at once, at 20 per second: at least half a second.
    let calls: Vec<_> = (0..11)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.page("sys_user", &PageRequest { limit: 1, ..Default::default() }).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(480), "{:?}", started.elapsed());
}

#[tokio::test]
async fn oauth_tokens_are_fetched_reused_renewed_and_replaced_when_revoked() {
    let config = SimConfig { controls: 10, token_lifetime: Duration::from_secs(2), ..SimConfig::default() };
    let running = start(config.clone()).await;
    let credentials = Credentials::ClientCredentials {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
    };
    let client = Client::new(&running.url, credentials, quick()).unwrap();
    let request = PageRequest { limit: 5, ..Default::default() };
    for _ in 0..3 {
        client.page("sn_grc_profile", &request).await.unwrap();
    }
    assert_eq!(running.simulator.live_tokens(), 1, "one token for three requests");
    // Renewed at four fifths of its lifetime, before the instance would refuse it.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    client.page("sn_grc_profile", &request).await.unwrap();
    assert_eq!(running.simulator.live_tokens(), 2);
    // Revoked by an administrator: one 401, a new token, the request succeeds.
    running.simulator.revoke_tokens();
    client.page("sn_grc_profile", &request).await.unwrap();
    assert_eq!(running.simulator.live_tokens(), 1);

    let password = Credentials::Password {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        username: config.username.clone(),
        password: config.password.clone(),
    };
    Client::new(&running.url, password, quick()).unwrap().page("sn_grc_profile", &request).await.unwrap();
}

#[tokio::test]
async fn each_failure_is_named_for_what_it_is() {
    let config = SimConfig { controls: 10, denied_tables: vec!["sn_grc_issue".into()], ..SimConfig::default() };
    let running = start(config.clone()).await;
    let request = PageRequest { limit: 1, ..Default::default() };

    let wrong = Credentials::Basic { username: config.username.clone(), password: "wrong".into() };
    let error = Client::new(&running.url, wrong, quick()).unwrap().page("sys_user", &request).await.unwrap_err();
    assert_eq!(error, SnError::Unauthorized("User Not Authenticated (Required to provide Auth information)".into()));

    let wrong = Credentials::ClientCredentials { client_id: config.client_id.clone(), client_secret: "nope".into() };
    let error = Client::new(&running.url, wrong, quick()).unwrap().page("sys_user", &request).await.unwrap_err();
    assert!(matches!(&error, SnError::Unauthorized(message) if message.contains("invalid client")), "{error:?}");

    let client = Client::new(&running.url, basic(&config), quick()).unwrap();
    let error = client.page("sn_grc_issue", &request).await.unwrap_err();
    assert_eq!(
        error,
        SnError::Forbidden {
            access: "read",
            table: "sn_grc_issue".into(),
            message: "User Not Authorized (ACL restricts the record retrieval)".into()
        }
    );
    let error = client.page("incident_typo", &request).await.unwrap_err();
    assert_eq!(error, SnError::Status { status: 400, message: "Invalid table incident_typo".into() });

    // Nothing listens: refused at once, after the retries.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let started = Instant::now();
    let error =
        Client::new(&format!("http://{address}"), basic(&config), quick()).unwrap().page("sys_user", &request).await;
    assert!(matches!(error, Err(SnError::Unreachable(_))), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    for bad in ["not a url", "ftp://host", "https://user:pw@host", "https://host/?x=1"] {
        assert!(matches!(Client::new(bad, basic(&config), quick()), Err(SnError::InvalidUrl(_))), "{bad}");
    }
}

#[tokio::test]
async fn slow_instances_time_out() {
    let config = SimConfig { controls: 5, latency: Duration::from_millis(800), ..SimConfig::default() };
    let running = start(config.clone()).await;
    let settings = ClientSettings { request_timeout: Duration::from_millis(200), max_attempts: 2, ..quick() };
    let error = Client::new(&running.url, basic(&config), settings)
        .unwrap()
        .page("sys_user", &PageRequest { limit: 1, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(error, SnError::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake_and_a_trusted_one_works() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certificate = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let mut server =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![certificate], key).unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = SimConfig { controls: 5, ..SimConfig::default() };
    let simulator = Arc::new(Simulator::new(config.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let stop = CancellationToken::new();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(sim::serve_tls(simulator.clone(), listener, Some(acceptor), stop.clone()));

    let request = PageRequest { limit: 1, ..Default::default() };
    let error = Client::new(&url, basic(&config), quick()).unwrap().page("sys_user", &request).await.unwrap_err();
    assert!(matches!(&error, SnError::Tls(detail) if detail.contains("certificate")), "{error:?}");
    let trusted =
        Client::with_root_certificate(&url, basic(&config), quick(), certified.cert.pem().as_bytes()).unwrap();
    assert_eq!(trusted.page("sys_user", &request).await.unwrap().records.len(), 1);
    stop.cancel();
}

#[tokio::test]
async fn the_simulators_churn_control_changes_records_for_another_process() {
    let config = SimConfig { controls: 40, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let churn = |query: &str| format!("{}/sim/churn?{query}", running.url);
    let answer =
        http.post(churn("changes=60")).basic_auth(&config.username, Some(&config.password)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let counts: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    let changed: u64 = ["updated", "created", "deleted"].iter().map(|key| counts[key].as_u64().unwrap()).sum();
    assert!((1..=60).contains(&changed), "{counts}");
    let refused = http.post(churn("changes=60")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let bad = http.post(churn("changes=many")).basic_auth(&config.username, Some(&config.password)).send().await;
    assert_eq!(bad.unwrap().status(), 400);
    let read = http.get(churn("changes=1")).basic_auth(&config.username, Some(&config.password)).send().await;
    assert_eq!(read.unwrap().status(), 405);
}

#[tokio::test]
async fn upserts_create_once_update_what_differs_and_skip_what_is_equal() {
    use crate::client::{Upserted, Written};
    let config = SimConfig { controls: 5, ..SimConfig::default() };
    let running = start(config.clone()).await;
    let client = Client::new(&running.url, basic(&config), quick()).unwrap();
    let fields = |template: &str| -> serde_json::Map<String, serde_json::Value> {
        [("name", "Posture"), ("template", template), ("unknown_column", "dropped")]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.into()))
            .collect()
    };
    let created = client.upsert("sp_widget", "id", "ciq-1", &fields("<div>1</div>")).await.unwrap();
    assert_eq!(created.written, Written::Created);
    let writes = running.simulator.writes();
    // The same values again: read, nothing written (the column ServiceNow ignored included).
    let unchanged = client.upsert("sp_widget", "id", "ciq-1", &fields("<div>1</div>")).await.unwrap();
    assert_eq!(unchanged, Upserted { sys_id: created.sys_id.clone(), written: Written::Unchanged });
    assert_eq!(running.simulator.writes(), writes);
    let updated = client.upsert("sp_widget", "id", "ciq-1", &fields("<div>2</div>")).await.unwrap();
    assert_eq!(updated, Upserted { sys_id: created.sys_id.clone(), written: Written::Updated });
    let records = running.simulator.written("sp_widget");
    assert_eq!(records.len(), 1, "an update, not a duplicate");
    assert_eq!((records[0]["template"].as_str(), records[0].get("unknown_column")), (Some("<div>2</div>"), None));
    assert_eq!(client.delete_by_key("sp_widget", "id", "ciq-1").await.unwrap(), Some(created.sys_id));
    assert!(running.simulator.written("sp_widget").is_empty());
    assert_eq!(client.delete_by_key("sp_widget", "id", "ciq-1").await.unwrap(), None);

    // An ACL that denies writes, and a changed password, are errors that say so.
    let denied = SimConfig { write_denied_tables: vec!["sp_widget".into()], ..config.clone() };
    let running = start(denied.clone()).await;
    let client = Client::new(&running.url, basic(&denied), quick()).unwrap();
    let error = client.upsert("sp_widget", "id", "ciq-1", &fields("x")).await.unwrap_err();
    assert!(matches!(&error, SnError::Forbidden { access: "write", .. }), "{error:?}");
    assert!(error.to_string().contains("may not write sp_widget"), "{error}");
    running.simulator.change_password("rotated");
    let error = client.upsert("sp_widget", "id", "ciq-1", &fields("x")).await.unwrap_err();
    assert!(matches!(error, SnError::Unauthorized(_)), "{error:?}");
}
