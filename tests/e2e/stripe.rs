//! The Stripe billing provider against a local stand-in for Stripe's REST API (the real one
//! is not reachable from tests): what it sends, and how it treats Stripe's answers. Billing
//! does not depend on the storage backend, so this runs on embedded defaults only.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use complianceiq_proto::complianceiq::organization::v1::*;
use prost_types::FieldMask;
use tonic::Code;

use crate::harness::{Backend, TestPlatform, reason, run_with};
use crate::people::authorized;

const SECRET: &str = "sk_test_not_a_real_key";

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    authorization: String,
    idempotency_key: String,
    form: Vec<(String, String)>,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

fn record(log: &Log, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    log.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.into(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        form: form.clone(),
    });
    form
}

/// A JSON response (axum's `json` feature is not worth compiling for this).
fn json(status: StatusCode, value: serde_json::Value) -> axum::response::Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn subscription_json(status: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "sub_1", "object": "subscription", "status": status,
        "items": {"data": [{"id": "si_1", "current_period_start": 1_800_000_000, "current_period_end": 1_802_592_000}]}
    })
}

async fn customers(State(log): State<Log>, method: Method, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    record(&log, &method, "/v1/customers", &headers, &body);
    json(StatusCode::OK, serde_json::json!({"id": "cus_1", "object": "customer"}))
}

async fn subscriptions(State(log): State<Log>, method: Method, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let form = record(&log, &method, "/v1/subscriptions", &headers, &body);
    respond_to_price(&form)
}

async fn subscription(
    State(log): State<Log>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let form = record(&log, &method, &format!("/v1/subscriptions/{id}"), &headers, &body);
    if method == Method::DELETE {
        return json(StatusCode::OK, subscription_json("canceled"));
    }
    respond_to_price(&form)
}

fn respond_to_price(form: &[(String, String)]) -> axum::response::Response {
    let price = form.iter().find(|(k, _)| k == "items[0][price]").map(|(_, v)| v.as_str()).unwrap_or_default();
    match price {
        "price_declined" => json(
            StatusCode::PAYMENT_REQUIRED,
            serde_json::json!({"error": {"message": "Your card was declined.", "type": "card_error"}}),
        ),
        "price_down" => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": "internal"}})),
        _ => json(StatusCode::OK, subscription_json("active")),
    }
}

async fn fake_stripe() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/v1/customers", post(customers))
        .route("/v1/subscriptions", post(subscriptions))
        .route("/v1/subscriptions/{id}", any(subscription))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_changes_go_through_the_stripe_api() {
    let (base, log) = fake_stripe().await;
    let log_for_body = log.clone();
    run_with(
        Backend::Embedded,
        move |config| {
            config.billing.stripe_secret_key = Some(SECRET.into());
            config.billing.stripe_api_base = base;
            config.billing.stripe_prices =
                "starter=price_starter,professional=price_declined,enterprise=price_down".into();
        },
        |platform| Box::pin(check_stripe(platform)),
    )
    .await;

    // What reached "Stripe": authenticated with the secret key, idempotent writes, form fields
    // as Stripe's API defines them.
    let calls = log_for_body.lock().unwrap().clone();
    let summary: Vec<(String, String)> = calls.iter().map(|c| (c.method.clone(), c.path.clone())).collect();
    let expected = [
        ("POST", "/v1/customers"),
        ("POST", "/v1/subscriptions"),
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscriptions/sub_1"),
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscriptions/sub_1"),
        ("DELETE", "/v1/subscriptions/sub_1"),
    ];
    assert_eq!(summary, expected.map(|(m, p)| (m.to_string(), p.to_string())));
    assert!(calls.iter().all(|c| c.authorization == format!("Bearer {SECRET}")));
    assert!(calls.iter().filter(|c| c.method == "POST").all(|c| !c.idempotency_key.is_empty()));
    let field = |call: &Recorded, name: &str| {
        call.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_eq!(field(&calls[0], "email"), "admin@paying.example.com");
    assert!(!field(&calls[0], "metadata[organization_id]").is_empty());
    assert_eq!(
        (field(&calls[1], "customer").as_str(), field(&calls[1], "items[0][price]").as_str()),
        ("cus_1", "price_starter")
    );
    assert_eq!(
        (field(&calls[3], "items[0][id]").as_str(), field(&calls[3], "items[0][price]").as_str()),
        ("si_1", "price_declined")
    );
}

async fn check_stripe(platform: &TestPlatform) {
    let tenant = platform.tenant("Paying").await;
    let mut organizations = platform.organizations().await;
    let change = |plan: Plan| {
        authorized(
            UpdateSubscriptionRequest {
                org_id: tenant.id().into(),
                subscription: Some(Subscription { plan: plan as i32, ..Default::default() }),
                update_mask: Some(FieldMask { paths: vec!["plan".into()] }),
            },
            tenant.token(),
        )
    };
    let before = organizations
        .get_subscription(authorized(GetSubscriptionRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.billing_provider, "stripe");

    let starter = organizations.update_subscription(change(Plan::Starter)).await.expect("upgrade").into_inner();
    assert_eq!(
        (starter.plan(), starter.state(), starter.billing_provider.as_str()),
        (Plan::Starter, SubscriptionState::Active, "stripe")
    );
    assert_eq!(starter.current_period_start_time.unwrap().seconds, 1_800_000_000, "the period comes from Stripe");

    let declined = organizations.update_subscription(change(Plan::Professional)).await.unwrap_err();
    assert_eq!((declined.code(), reason(&declined).as_str()), (Code::FailedPrecondition, "BILLING_REJECTED"));
    assert!(declined.message().contains("Your card was declined."));
    let down = organizations.update_subscription(change(Plan::Enterprise)).await.unwrap_err();
    assert_eq!((down.code(), reason(&down).as_str()), (Code::Unavailable, "BILLING_UNAVAILABLE"));
    assert!(!down.message().contains("internal") && !down.message().contains(SECRET));
    let unchanged = organizations
        .get_subscription(authorized(GetSubscriptionRequest { org_id: tenant.id().into() }, tenant.token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.plan(), Plan::Starter, "a refused change stores nothing");

    let free = organizations.update_subscription(change(Plan::Free)).await.expect("downgrade").into_inner();
    assert_eq!(free.plan(), Plan::Free);
}
