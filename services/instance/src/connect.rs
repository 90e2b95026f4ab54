//! Checking an instance: reachable, authenticated, and each GRC table readable, with a report
//! per table. The same check serves test-connection and the scheduled health checks.

use std::time::{Duration, Instant};

use complianceiq_kit::error::ApiError;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::instance::v1::{HealthStatus, TableAccess, TestConnectionResponse};
use complianceiq_servicenow::{Client, ClientSettings, Credentials, NetworkAccess, PageRequest, SnError, address};

/// A check slower than this is DEGRADED even when everything is readable.
const SLOW: Duration = Duration::from_secs(3);

/// Settings for checks: quick to fail, few retries (a check should report, not persist).
pub fn check_settings(network: NetworkAccess) -> ClientSettings {
    ClientSettings {
        network,
        requests_per_second: 10.0,
        request_timeout: Duration::from_secs(15),
        max_attempts: 2,
        max_throttled_attempts: 3,
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(2),
    }
}

/// Refuses a URL whose host is, or resolves to, an address the platform may not reach
/// (checked again at every connection). A name that does not resolve yet is accepted: the
/// connection check reports it.
pub async fn check_address(url: &str, network: NetworkAccess) -> Result<(), ApiError> {
    let Ok(parsed) = url::Url::parse(url) else { return Ok(()) };
    match address::check_url(&parsed, network).await {
        Err(SnError::ForbiddenAddress(message)) => {
            Err(ApiError::invalid_field("instance.url", "FORBIDDEN_HOST", format!("instance.url: {message}")))
        }
        _ => Ok(()),
    }
}

/// The outcome of a check and the status it earns.
pub struct CheckOutcome {
    pub report: TestConnectionResponse,
    pub status: HealthStatus,
}

/// Runs the check against `url` with `credentials` over `tables`.
pub async fn check(url: &str, credentials: Credentials, tables: &[&str], settings: ClientSettings) -> CheckOutcome {
    let checked_at = time::now_micros();
    let mut report = TestConnectionResponse { check_time: Some(time::to_timestamp(checked_at)), ..Default::default() };
    let client = match Client::new(url, credentials, settings) {
        Ok(client) => client,
        Err(error) => {
            report.error = error.to_string();
            return CheckOutcome { report, status: HealthStatus::Unhealthy };
        }
    };
    let started = Instant::now();
    for (index, table) in tables.iter().enumerate() {
        let request = PageRequest { fields: "sys_id".into(), limit: 1, count: true, ..Default::default() };
        let result = client.page(table, &request).await;
        if index == 0 {
            report.latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        }
        match result {
            Ok(page) => {
                report.reachable = true;
                report.authenticated = true;
                report.tables.push(TableAccess {
                    table: table.to_string(),
                    readable: true,
                    record_count: page.total.unwrap_or(page.records.len() as u64) as i64,
                    error: String::new(),
                });
            }
            // Nothing past the connection or the credentials can work: stop at the first.
            Err(
                error @ (SnError::Unreachable(_)
                | SnError::Tls(_)
                | SnError::Timeout(_)
                | SnError::InvalidUrl(_)
                | SnError::ForbiddenAddress(_)),
            ) => {
                report.error = error.to_string();
                return CheckOutcome { report, status: HealthStatus::Unhealthy };
            }
            Err(error @ SnError::Unauthorized(_)) => {
                report.reachable = true;
                report.error = error.to_string();
                return CheckOutcome { report, status: HealthStatus::Unhealthy };
            }
            Err(error) => {
                report.reachable = true;
                // A table the user may not read: the credentials worked if anything else did.
                if matches!(
                    error,
                    SnError::Forbidden { .. } | SnError::NotFound(_) | SnError::Status { status: 400, .. }
                ) {
                    report.authenticated = true;
                }
                if report.error.is_empty() {
                    report.error = error.to_string();
                }
                report.tables.push(TableAccess {
                    table: table.to_string(),
                    readable: false,
                    record_count: 0,
                    error: error.to_string(),
                });
            }
        }
    }
    report.success = report.tables.iter().all(|table| table.readable) && !report.tables.is_empty();
    let status = if !report.authenticated {
        HealthStatus::Unhealthy
    } else if !report.success || Duration::from_millis(report.latency_ms.max(0) as u64) > SLOW {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    CheckOutcome { report, status }
}
