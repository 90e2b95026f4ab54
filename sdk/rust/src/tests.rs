//! The client against a test server that pages, throttles, and takes only fresh tokens.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use prost::Message;
use tonic::{Code, Request, Response, Status};

use crate::proto::complianceiq::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use crate::proto::complianceiq::auth::v1::{ExchangeApiKeyRequest, ExchangeApiKeyResponse, RefreshRequest, TokenPair};
use crate::proto::complianceiq::user::v1::user_service_client::UserServiceClient;
use crate::proto::complianceiq::user::v1::user_service_server::{UserService, UserServiceServer};
use crate::proto::complianceiq::user::v1::{GetCurrentUserRequest, ListUsersRequest, ListUsersResponse, User};
use crate::proto::google::rpc;
use crate::{Client, Credentials, Error, RetryPolicy};

const USERS: usize = 5;

/// What the server saw, and how it behaves.
#[derive(Default)]
struct Seen {
    /// Each GetCurrentUser call: when, and the token it carried.
    calls: Vec<(Instant, String)>,
    /// Page tokens ListUsers received.
    page_tokens: Vec<String>,
    refreshes: Vec<RefreshRequest>,
    exchanges: usize,
    /// Answers GetCurrentUser gives before it succeeds.
    failures: Vec<Status>,
    /// The token GetCurrentUser accepts.
    valid_token: String,
    /// Refresh refuses: the session was revoked.
    revoked: bool,
}

#[derive(Clone, Default)]
struct TestServer {
    seen: Arc<Mutex<Seen>>,
}

fn any<M: Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value: message.encode_to_vec() }
}

/// A status as the platform sends it: ErrorInfo, and RetryInfo when `retry_after` is given.
fn status(code: Code, reason: &str, retry_after: Option<Duration>) -> Status {
    let mut details = vec![any(
        "google.rpc.ErrorInfo",
        &rpc::ErrorInfo { reason: reason.into(), domain: "complianceiq.io".into(), metadata: Default::default() },
    )];
    if let Some(delay) = retry_after {
        let delay = prost_types::Duration { seconds: delay.as_secs() as i64, nanos: delay.subsec_nanos() as i32 };
        details.push(any("google.rpc.RetryInfo", &rpc::RetryInfo { retry_delay: Some(delay) }));
    }
    let message = format!("{reason} from the test server");
    let encoded = rpc::Status { code: code as i32, message: message.clone(), details }.encode_to_vec();
    Status::with_details(code, message, encoded.into())
}

#[tonic::async_trait]
impl UserService for TestServer {
    async fn get_current_user(&self, request: Request<GetCurrentUserRequest>) -> Result<Response<User>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_string();
        let mut seen = self.seen.lock().unwrap();
        seen.calls.push((Instant::now(), token.clone()));
        if token != seen.valid_token {
            return Err(status(Code::Unauthenticated, "TOKEN_INVALID", None));
        }
        if !seen.failures.is_empty() {
            return Err(seen.failures.remove(0));
        }
        Ok(Response::new(User { id: "me".into(), email: "me@example.com".into(), ..Default::default() }))
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Result<Response<ListUsersResponse>, Status> {
        let request = request.into_inner();
        self.seen.lock().unwrap().page_tokens.push(request.page_token.clone());
        let start: usize = if request.page_token.is_empty() {
            0
        } else {
            request.page_token.strip_prefix("from-").and_then(|n| n.parse().ok()).ok_or_else(|| {
                Status::invalid_argument(format!("page_token {:?} is not one this server gave", request.page_token))
            })?
        };
        let size = usize::try_from(request.page_size).unwrap_or(0).max(1);
        let end = (start + size).min(USERS);
        let users = (start..end).map(|n| User { id: format!("user-{n}"), ..Default::default() }).collect();
        let next_page_token = if end < USERS { format!("from-{end}") } else { String::new() };
        Ok(Response::new(ListUsersResponse { users, next_page_token, total_size: USERS as i32 }))
    }
}

#[tonic::async_trait]
impl AuthService for TestServer {
    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<TokenPair>, Status> {
        let request = request.into_inner();
        let mut seen = self.seen.lock().unwrap();
        let generation = seen.refreshes.len() + 1;
        seen.refreshes.push(request);
        if seen.revoked {
            return Err(status(Code::Unauthenticated, "SESSION_REVOKED", None));
        }
        seen.valid_token = format!("access-{generation}");
        Ok(Response::new(TokenPair {
            access_token: seen.valid_token.clone(),
            refresh_token: format!("refresh-{generation}"),
            token_type: "Bearer".into(),
            expires_in: 900,
            ..Default::default()
        }))
    }

    async fn exchange_api_key(
        &self,
        request: Request<ExchangeApiKeyRequest>,
    ) -> Result<Response<ExchangeApiKeyResponse>, Status> {
        if request.into_inner().secret != "ciq_key_secret" {
            return Err(status(Code::Unauthenticated, "API_KEY_INVALID", None));
        }
        let mut seen = self.seen.lock().unwrap();
        seen.exchanges += 1;
        seen.valid_token = format!("key-token-{}", seen.exchanges);
        Ok(Response::new(ExchangeApiKeyResponse { access_token: seen.valid_token.clone(), expires_in: 60 }))
    }
}

async fn serve(server: TestServer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(UserServiceServer::new(server.clone()))
            .add_service(AuthServiceServer::new(server))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    address
}

async fn client(address: SocketAddr, credentials: Credentials, retry: RetryPolicy) -> Client {
    Client::builder(format!("http://{address}"))
        .credentials(credentials)
        .retry(retry)
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

async fn me(client: &Client) -> Result<User, Error> {
    client.call(async |channel| UserServiceClient::new(channel).get_current_user(GetCurrentUserRequest {}).await).await
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..Default::default()
    }
}

#[tokio::test]
async fn pages_follow_the_next_page_token_to_the_end() {
    let server = TestServer::default();
    let address = serve(server.clone()).await;
    let client = client(address, Credentials::None, fast_retries()).await;
    let list = async |channel, request| UserServiceClient::new(channel).list_users(request).await;
    let request = ListUsersRequest { page_size: 2, ..Default::default() };

    let pages: Vec<ListUsersResponse> = client.pages(request.clone(), list).try_collect().await.unwrap();
    let sizes: Vec<usize> = pages.iter().map(|page| page.users.len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(server.seen.lock().unwrap().page_tokens, ["", "from-2", "from-4"]);

    let users: Vec<User> = client.items(request, list).try_collect().await.unwrap();
    let ids: Vec<&str> = users.iter().map(|user| user.id.as_str()).collect();
    assert_eq!(ids, ["user-0", "user-1", "user-2", "user-3", "user-4"]);

    // A page refused ends the stream with its error.
    let forged = ListUsersRequest { page_size: 2, page_token: "forged".into(), ..Default::default() };
    let error = client.pages(forged, list).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument, "{error}");
}

#[tokio::test]
async fn throttled_calls_wait_as_long_as_retry_info_asks_then_succeed() {
    let server = TestServer::default();
    {
        let mut seen = server.seen.lock().unwrap();
        seen.valid_token = "fixed".into();
        seen.failures = vec![
            status(Code::ResourceExhausted, "RATE_LIMITED", Some(Duration::from_millis(300))),
            status(Code::Unavailable, "MODULE_UNAVAILABLE", None),
        ];
    }
    let address = serve(server.clone()).await;
    let client = client(address, Credentials::Token("fixed".into()), fast_retries()).await;
    let user = me(&client).await.unwrap();
    assert_eq!(user.email, "me@example.com");
    let calls = server.seen.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 3, "two refusals, then the answer");
    let waited = calls[1].0 - calls[0].0;
    assert!(waited >= Duration::from_millis(300), "RetryInfo asked for 300 ms; the client waited {waited:?}");
}

#[tokio::test]
async fn retries_stop_at_the_policy_and_other_errors_are_not_retried() {
    let server = TestServer::default();
    {
        let mut seen = server.seen.lock().unwrap();
        seen.valid_token = "fixed".into();
        seen.failures = (0..10).map(|_| status(Code::Unavailable, "MODULE_UNAVAILABLE", None)).collect();
    }
    let address = serve(server.clone()).await;
    let retry = RetryPolicy { max_attempts: 3, ..fast_retries() };
    let client = client(address, Credentials::Token("fixed".into()), retry).await;
    let error = me(&client).await.unwrap_err();
    assert_eq!((error.code, error.reason()), (Code::Unavailable, "MODULE_UNAVAILABLE"));
    assert_eq!(server.seen.lock().unwrap().calls.len(), 3);

    // A refusal no wait fixes is returned at once, its details decoded.
    let violations = rpc::BadRequest {
        field_violations: vec![rpc::bad_request::FieldViolation {
            field: "page_size".into(),
            description: "at most 1000".into(),
            reason: "OUT_OF_RANGE".into(),
            localized_message: None,
        }],
    };
    let encoded = rpc::Status {
        code: Code::InvalidArgument as i32,
        message: "bad".into(),
        details: vec![any("google.rpc.BadRequest", &violations)],
    }
    .encode_to_vec();
    {
        let mut seen = server.seen.lock().unwrap();
        seen.calls.clear();
        seen.failures = vec![Status::with_details(Code::InvalidArgument, "bad", encoded.into())];
    }
    let error = me(&client).await.unwrap_err();
    assert_eq!(server.seen.lock().unwrap().calls.len(), 1);
    assert_eq!(error.field_violations.len(), 1);
    assert_eq!(
        (error.field_violations[0].field.as_str(), error.field_violations[0].reason.as_str()),
        ("page_size", "OUT_OF_RANGE")
    );

    // A wait longer than the policy honours is the caller's to decide.
    let asked = status(Code::ResourceExhausted, "QUOTA", Some(Duration::from_secs(3600)));
    server.seen.lock().unwrap().failures = vec![asked];
    let error = me(&client).await.unwrap_err();
    assert_eq!(error.retry_after, Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn a_refused_session_token_is_refreshed_once_and_the_call_repeated() {
    let server = TestServer::default();
    server.seen.lock().unwrap().valid_token = "no token yet".into();
    let address = serve(server.clone()).await;
    let session = Credentials::Session {
        access_token: "expired".into(),
        refresh_token: "refresh-0".into(),
        expires_in: None,
        organization_id: Some("org-1".into()),
    };
    let client = client(address, session, fast_retries()).await;
    assert_eq!(me(&client).await.unwrap().id, "me");
    {
        let seen = server.seen.lock().unwrap();
        let tokens: Vec<&str> = seen.calls.iter().map(|(_, token)| token.as_str()).collect();
        assert_eq!(tokens, ["expired", "access-1"]);
        assert_eq!(seen.refreshes.len(), 1);
        assert_eq!(
            (seen.refreshes[0].refresh_token.as_str(), seen.refreshes[0].organization_id.as_str()),
            ("refresh-0", "org-1")
        );
    }
    // The rotated refresh token is the one used next; a token still refused after a refresh
    // (a revoked session) is the caller's error, not a loop.
    {
        let mut seen = server.seen.lock().unwrap();
        seen.valid_token = "none".into();
        seen.revoked = true;
    }
    let error = me(&client).await.unwrap_err();
    assert_eq!((error.code, error.reason()), (Code::Unauthenticated, "SESSION_REVOKED"));
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.refreshes.len(), 2);
    assert_eq!(seen.refreshes[1].refresh_token, "refresh-1");
}

#[tokio::test]
async fn an_api_key_is_exchanged_before_the_first_call_and_its_token_reused() {
    let server = TestServer::default();
    let address = serve(server.clone()).await;
    let client = client(address, Credentials::ApiKey("ciq_key_secret".into()), fast_retries()).await;
    for _ in 0..3 {
        me(&client).await.unwrap();
    }
    {
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.exchanges, 1, "a token of a minute serves the three calls");
        assert!(seen.calls.iter().all(|(_, token)| token == "key-token-1"));
    }
    let wrong = super::Client::builder(format!("http://{address}"))
        .credentials(Credentials::ApiKey("ciq_wrong".into()))
        .connect()
        .await
        .unwrap();
    let error = me(&wrong).await.unwrap_err();
    assert_eq!((error.code, error.reason()), (Code::Unauthenticated, "API_KEY_INVALID"));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let shown = format!("{:?}", Credentials::ApiKey("ciq_key_secret".into()));
    assert!(!shown.contains("secret"), "{shown}");
}
