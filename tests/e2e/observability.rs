//! The operations port: gRPC health for Kubernetes probes without a mesh certificate, and
//! Prometheus metrics that count what really happened, by module, method and status code.

use complianceiq_proto::complianceiq::organization::v1::GetOrganizationRequest;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::TestPlatform;
use crate::people::authorized;
use crate::platform_tests;

platform_tests!(the_operations_port_answers_probes_and_counts_calls);

/// The value of the sample named exactly `series` (name and labels as exposed), or 0.
pub fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .filter_map(|value| value.split_whitespace().next()?.parse::<f64>().ok())
        .sum()
}

async fn the_operations_port_answers_probes_and_counts_calls(platform: &TestPlatform) {
    let ops = platform.platform().ops_address;
    // Plain HTTP/2, no certificate: what the kubelet's gRPC probe does.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{ops}")).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "complianceiq.organization.v1.OrganizationService", "complianceiq.auth.v1.AuthService"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.v1.Nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let tenant = platform.tenant("Metrics").await;
    let request = || authorized(GetOrganizationRequest { org_id: tenant.id().into() }, tenant.token());
    for _ in 0..3 {
        OrganizationServiceClient::new(platform.channel("organization").await)
            .get_organization(request())
            .await
            .unwrap();
    }
    let refused = OrganizationServiceClient::new(platform.channel_as("webhook", "organization"))
        .get_organization(request())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let missing = OrganizationServiceClient::new(platform.channel("organization").await)
        .get_organization(authorized(
            GetOrganizationRequest { org_id: uuid::Uuid::now_v7().to_string() },
            tenant.token(),
        ))
        .await
        .unwrap_err();
    // Another tenant's id or none at all: the same answer.
    assert!(matches!(missing.code(), Code::NotFound | Code::PermissionDenied), "{missing:?}");
    let anonymous =
        reqwest::get(format!("http://{}/api/v1/organizations/{}", platform.address("gateway"), tenant.id()))
            .await
            .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    let response = reqwest::get(format!("http://{ops}/metrics")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(
        response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let handled = |method: &str, code: &str| {
        sample(
            &text,
            &format!(
                r#"grpc_server_handled_total{{module="organization",grpc_service="complianceiq.organization.v1.OrganizationService",grpc_method="{method}",grpc_code="{code}"}}"#
            ),
        )
    };
    assert_eq!(handled("GetOrganization", "OK"), 3.0, "{text}");
    assert_eq!(handled("CreateOrganization", "OK"), 1.0, "{text}");
    assert_eq!(
        handled("GetOrganization", "PERMISSION_DENIED") + handled("GetOrganization", "NOT_FOUND"),
        2.0,
        "{text}"
    );
    let latency_count = sample(
        &text,
        r#"grpc_server_handling_seconds_count{module="organization",grpc_service="complianceiq.organization.v1.OrganizationService",grpc_method="GetOrganization"}"#,
    );
    assert_eq!(latency_count, 5.0, "every call is timed, refused ones too: {text}");
    assert!(
        sample(&text, r#"gateway_requests_total{protocol="rest",http_status="401",grpc_code="UNAUTHENTICATED"}"#)
            >= 1.0,
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "a complete exposition");

    let not_here = reqwest::get(format!("http://{ops}/secrets")).await.unwrap();
    assert_eq!(not_here.status(), reqwest::StatusCode::NOT_FOUND);
}
