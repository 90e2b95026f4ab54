//! A webhook receiver for tests and benchmarks: an HTTP server on 127.0.0.1 that verifies
//! each message with the Standard Webhooks reference library, records it, and answers with a
//! chosen status (204 by default; 400 when the signature does not verify). It can go down
//! (its listener and every open connection close, so the platform sees connections refused)
//! and come back on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    pub headers: http::HeaderMap,
    /// Whether the reference library verified it with the receiver's secret then.
    pub verified: bool,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn accepted(&self) -> bool {
        self.verified && (200..300).contains(&self.answered)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a webhook body is JSON")
    }
}

struct State {
    secret: Mutex<String>,
    status: AtomicU16,
    received: Mutex<Vec<Received>>,
    /// How many of them were verified and answered 2xx.
    accepted: AtomicUsize,
    arrived: tokio::sync::Notify,
}

pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<State>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let address = listener.local_addr().unwrap();
        let state = Arc::new(State {
            secret: Mutex::new(String::new()),
            status: AtomicU16::new(204),
            received: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            arrived: tokio::sync::Notify::new(),
        });
        let server = Some(tokio::spawn(serve(listener, state.clone())));
        Self { address, state, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks?token=receiver-token", self.address)
    }

    /// The secret messages are verified with.
    pub fn trust(&self, secret: &str) {
        *self.state.secret.lock().unwrap() = secret.to_string();
    }

    /// The status verified messages get from now on.
    pub fn answer_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Closes the listener and every connection.
    pub fn go_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.address).await.expect("bind the receiver's port again");
        self.server = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// What it accepted (verified and answered 2xx), once there are at least `count`
    /// such requests; panics after `within`.
    pub async fn accepted(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            let accepted: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|received| received.verified && (200..300).contains(&received.answered))
                .collect();
            if accepted.len() >= count {
                return accepted;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the receiver accepted {} of {count} messages in {within:?}: {:?}",
                    accepted.len(),
                    self.received()
                );
            }
        }
    }

    /// Waits until at least `count` requests arrived, whatever they were answered.
    pub async fn requests(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("the receiver got {} of {count} requests in {within:?}", received.len());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.go_down();
    }
}

/// Accepts connections until aborted; aborting drops the connections' tasks too.
async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    state: Arc<State>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let secret = state.secret.lock().unwrap().clone();
    let verified = !secret.is_empty()
        && standardwebhooks::Webhook::new(&secret).is_ok_and(|webhook| webhook.verify(&body, &headers).is_ok());
    let answered = if verified { state.status.load(Ordering::SeqCst) } else { 400 };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    let received = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        headers: headers.clone(),
        verified,
        answered,
    };
    if received.accepted() {
        state.accepted.fetch_add(1, Ordering::SeqCst);
    }
    state.received.lock().unwrap().push(received);
    state.arrived.notify_waiters();
    let mut response = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"receiver says no")));
    *response.status_mut() = http::StatusCode::from_u16(answered).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}
