//! Plans, their limits, and the billing providers that change them: Stripe (its REST API)
//! when configured, otherwise an in-process provider that applies a change at once.

use std::collections::HashMap;
use std::time::Duration;

use complianceiq_kit::config::BillingConfig;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::organization::v1::{Plan, PlanLimits};

/// What a plan allows; 0 means unlimited.
pub fn limits(plan: Plan) -> PlanLimits {
    let (max_instances, max_members, max_analyses_per_month) = match plan {
        Plan::Unspecified | Plan::Free => (1, 5, 50),
        Plan::Starter => (3, 25, 500),
        Plan::Professional => (10, 100, 5_000),
        Plan::Enterprise => (0, 0, 0),
    };
    PlanLimits { max_instances, max_members, max_analyses_per_month }
}

/// Length of a billing period in the in-process provider.
pub const PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// The provider's ids for an organization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BillingAccount {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
}

/// A change to apply.
pub struct PlanChange<'a> {
    pub organization_id: OrganizationId,
    pub billing_email: &'a str,
    pub plan: Plan,
    pub cancel_at_period_end: bool,
    pub account: BillingAccount,
    /// Retries of the same change must not charge twice.
    pub idempotency_key: String,
}

/// The provider's view after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingOutcome {
    pub account: BillingAccount,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub state: &'static str,
    pub period_start: i64,
    pub period_end: i64,
}

/// Applies plan changes with a payment provider.
#[tonic::async_trait]
pub trait BillingProvider: Send + Sync + 'static {
    /// Stored as the subscription's `billing_provider`.
    fn name(&self) -> &'static str;
    /// Applies a change.
    async fn apply(&self, change: PlanChange<'_>) -> Result<BillingOutcome, ApiError>;
}

/// Changes plans at once, without payment (development and self-hosted installations).
pub struct InProcessBilling;

#[tonic::async_trait]
impl BillingProvider for InProcessBilling {
    fn name(&self) -> &'static str {
        "internal"
    }

    async fn apply(&self, change: PlanChange<'_>) -> Result<BillingOutcome, ApiError> {
        let now = time::now_micros();
        Ok(BillingOutcome {
            account: change.account,
            state: "active",
            period_start: now,
            period_end: time::after(now, PERIOD),
        })
    }
}

/// Production without a payment provider and without `CIQ_BILLING_DISABLED`: the free plan
/// only, so a forgotten key does not hand out paid plans.
pub struct UnconfiguredBilling;

#[tonic::async_trait]
impl BillingProvider for UnconfiguredBilling {
    fn name(&self) -> &'static str {
        "internal"
    }

    async fn apply(&self, change: PlanChange<'_>) -> Result<BillingOutcome, ApiError> {
        if change.plan != Plan::Free {
            return Err(ApiError::FailedPrecondition {
                reason: "BILLING_NOT_CONFIGURED",
                message: "paid plans need billing: the operator sets CIQ_STRIPE_SECRET_KEY, or \
                          CIQ_BILLING_DISABLED=true for an installation without payment"
                    .into(),
            });
        }
        InProcessBilling.apply(change).await
    }
}

/// Stripe's REST API: a customer per organization, a subscription with one price per plan.
pub struct StripeBilling {
    client: reqwest::Client,
    api_base: String,
    secret_key: String,
    prices: HashMap<Plan, String>,
}

impl std::fmt::Debug for StripeBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key never reaches a log.
        f.debug_struct("StripeBilling").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

fn parse_plan_name(name: &str) -> Option<Plan> {
    match name {
        "starter" => Some(Plan::Starter),
        "professional" => Some(Plan::Professional),
        "enterprise" => Some(Plan::Enterprise),
        _ => None,
    }
}

impl StripeBilling {
    /// From configuration; errors name the setting at fault.
    pub fn from_config(config: &BillingConfig, secret_key: String) -> Result<Self, String> {
        let mut prices = HashMap::new();
        for entry in config.stripe_prices.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (plan, price) = entry.split_once('=').ok_or("CIQ_STRIPE_PRICES entries are plan=price_id")?;
            let plan =
                parse_plan_name(plan.trim()).ok_or_else(|| format!("CIQ_STRIPE_PRICES: unknown plan {plan:?}"))?;
            prices.insert(plan, price.trim().to_string());
        }
        complianceiq_kit::crypto::install_tls_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("HTTP client for Stripe: {e}"))?;
        Ok(Self { client, api_base: config.stripe_api_base.trim_end_matches('/').to_string(), secret_key, prices })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        let mut request = self.client.request(method, format!("{}{path}", self.api_base)).bearer_auth(&self.secret_key);
        if !form.is_empty() {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
            request = request.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let unavailable = |detail: String| {
            ApiError::Unavailable {
                reason: "BILLING_UNAVAILABLE",
                message: "the billing provider is unavailable; try again".into(),
                retry_after: Some(Duration::from_secs(5)),
            }
            .log_cause(&detail)
        };
        let response = request.send().await.map_err(|e| unavailable(format!("Stripe {path}: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| unavailable(format!("Stripe {path}: {e}")))?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let message = json["error"]["message"].as_str().unwrap_or("no message").to_string();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("Stripe {path} answered {status}: {message}")));
        }
        Err(ApiError::FailedPrecondition {
            reason: "BILLING_REJECTED",
            message: format!("the billing provider refused the change: {message}"),
        })
    }
}

fn string_field(json: &serde_json::Value, field: &str) -> Result<String, ApiError> {
    json[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::internal(format!("Stripe response without {field}")))
}

/// Stripe reports periods on the subscription (older API versions) or on its items (2025+).
fn period(json: &serde_json::Value, field: &str) -> Option<i64> {
    json[field].as_i64().or_else(|| json["items"]["data"][0][field].as_i64()).map(|seconds| seconds * 1_000_000)
}

#[tonic::async_trait]
impl BillingProvider for StripeBilling {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn apply(&self, change: PlanChange<'_>) -> Result<BillingOutcome, ApiError> {
        let mut account = change.account.clone();
        let key = |step: &str| format!("{}-{step}", change.idempotency_key);
        if account.customer_id.is_none() {
            let form = vec![
                ("email".to_string(), change.billing_email.to_string()),
                ("metadata[organization_id]".to_string(), change.organization_id.to_string()),
            ];
            let customer = self.call(reqwest::Method::POST, "/v1/customers", &form, Some(&key("customer"))).await?;
            account.customer_id = Some(string_field(&customer, "id")?);
        }
        let now = time::now_micros();
        if change.plan == Plan::Free || change.plan == Plan::Unspecified {
            if let Some(subscription) = account.subscription_id.take() {
                self.call(reqwest::Method::DELETE, &format!("/v1/subscriptions/{subscription}"), &[], None).await?;
            }
            return Ok(BillingOutcome {
                account,
                state: "active",
                period_start: now,
                period_end: time::after(now, PERIOD),
            });
        }
        let price = self.prices.get(&change.plan).ok_or_else(|| ApiError::FailedPrecondition {
            reason: "PLAN_NOT_SOLD",
            message: "this plan has no Stripe price configured (CIQ_STRIPE_PRICES)".into(),
        })?;
        let cancel = change.cancel_at_period_end.to_string();
        let subscription = match &account.subscription_id {
            Some(id) => {
                let current = self.call(reqwest::Method::GET, &format!("/v1/subscriptions/{id}"), &[], None).await?;
                let item = current["items"]["data"][0]["id"].as_str().unwrap_or_default().to_string();
                let form = vec![
                    ("items[0][id]".to_string(), item),
                    ("items[0][price]".to_string(), price.clone()),
                    ("cancel_at_period_end".to_string(), cancel),
                ];
                self.call(reqwest::Method::POST, &format!("/v1/subscriptions/{id}"), &form, Some(&key("update")))
                    .await?
            }
            None => {
                let form = vec![
                    ("customer".to_string(), account.customer_id.clone().unwrap_or_default()),
                    ("items[0][price]".to_string(), price.clone()),
                    ("cancel_at_period_end".to_string(), cancel),
                    ("metadata[organization_id]".to_string(), change.organization_id.to_string()),
                ];
                self.call(reqwest::Method::POST, "/v1/subscriptions", &form, Some(&key("subscribe"))).await?
            }
        };
        account.subscription_id = Some(string_field(&subscription, "id")?);
        let state = match subscription["status"].as_str().unwrap_or_default() {
            "trialing" => "trialing",
            "active" => "active",
            "canceled" | "incomplete_expired" => "canceled",
            _ => "past_due",
        };
        Ok(BillingOutcome {
            account,
            state,
            period_start: period(&subscription, "current_period_start").unwrap_or(now),
            period_end: period(&subscription, "current_period_end").unwrap_or(time::after(now, PERIOD)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_is_unlimited_and_free_is_smallest() {
        assert_eq!(
            limits(Plan::Enterprise),
            PlanLimits { max_instances: 0, max_members: 0, max_analyses_per_month: 0 }
        );
        assert!(limits(Plan::Free).max_members < limits(Plan::Starter).max_members);
    }

    #[test]
    fn stripe_prices_are_parsed_per_plan() {
        let config =
            BillingConfig { stripe_prices: "starter=price_1, professional=price_2".into(), ..Default::default() };
        let stripe = StripeBilling::from_config(&config, "sk_test".into()).unwrap();
        assert_eq!(stripe.prices[&Plan::Starter], "price_1");
        assert!(!format!("{stripe:?}").contains("sk_test"));
        let bad = BillingConfig { stripe_prices: "gold=price_1".into(), ..Default::default() };
        assert!(StripeBilling::from_config(&bad, "sk".into()).is_err());
    }
}
