//! What every module shows a client: gRPC health, server reflection (v1 and v1alpha), and
//! for RPCs not built yet, UNIMPLEMENTED naming the RPC.

use std::collections::BTreeSet;

use complianceiq_proto::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_reflect::DescriptorPool;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::TestPlatform;
use crate::platform_tests;

platform_tests!(every_module_reports_health_and_reflects_its_api, rpcs_not_built_yet_say_which_they_are);

/// Services built for real; every RPC of the others must answer UNIMPLEMENTED by name.
const IMPLEMENTED_SERVICES: &[&str] = &[
    "complianceiq.auth.v1.AuthService",
    "complianceiq.user.v1.UserService",
    "complianceiq.organization.v1.OrganizationService",
    "complianceiq.organization.v1.StaffService",
];

/// RPCs built in services built only in part.
const IMPLEMENTED_RPCS: &[&str] = &[
    "complianceiq.dashboard.v1.DashboardService/GetDashboardSummary",
    "complianceiq.dashboard.v1.DashboardService/GetInstanceMetrics",
    "complianceiq.dashboard.v1.DashboardService/GetOrganizationMetrics",
    "complianceiq.dashboard.v1.DashboardService/GetAnalytics",
    "complianceiq.dashboard.v1.DashboardService/CreateReport",
    "complianceiq.dashboard.v1.DashboardService/ListReports",
    "complianceiq.dashboard.v1.DashboardService/GetReport",
    "complianceiq.dashboard.v1.DashboardService/UpdateReport",
    "complianceiq.dashboard.v1.DashboardService/DeleteReport",
    "complianceiq.dashboard.v1.DashboardService/RunReport",
    "complianceiq.dashboard.v1.DashboardService/ListReportRuns",
    "complianceiq.dashboard.v1.DashboardService/DownloadReportRun",
    "complianceiq.instance.v1.InstanceService/CreateInstance",
    "complianceiq.instance.v1.InstanceService/ListInstances",
    "complianceiq.instance.v1.InstanceService/GetInstance",
    "complianceiq.instance.v1.InstanceService/UpdateInstance",
    "complianceiq.instance.v1.InstanceService/DeleteInstance",
    "complianceiq.instance.v1.InstanceService/TestConnection",
    "complianceiq.instance.v1.InstanceService/GetInstanceHealth",
    "complianceiq.instance.v1.InstanceService/SyncInstance",
    "complianceiq.instance.v1.InstanceService/GetSyncRun",
    "complianceiq.instance.v1.InstanceService/CancelSyncRun",
    "complianceiq.instance.v1.InstanceService/ListSyncRuns",
    "complianceiq.instance.v1.InstanceService/WriteWidgetRecord",
    "complianceiq.widget.v1.WidgetService/CreateWidget",
    "complianceiq.widget.v1.WidgetService/ListWidgets",
    "complianceiq.widget.v1.WidgetService/GetWidget",
    "complianceiq.widget.v1.WidgetService/UpdateWidget",
    "complianceiq.widget.v1.WidgetService/DeleteWidget",
    "complianceiq.widget.v1.WidgetService/DeployWidget",
    "complianceiq.widget.v1.WidgetService/ListWidgetVersions",
    "complianceiq.widget.v1.WidgetService/ListWidgetDeployments",
    "complianceiq.widget.v1.WidgetService/ListWidgetTemplates",
    "complianceiq.widget.v1.WidgetService/CreateWidgetTemplate",
    "complianceiq.audit.v1.AuditService/CreateAuditLog",
    "complianceiq.audit.v1.AuditService/ListAuditLogs",
    "complianceiq.audit.v1.AuditService/GetAuditLog",
    "complianceiq.audit.v1.AuditService/VerifyAuditTrail",
    "complianceiq.audit.v1.AuditService/ListSecurityEvents",
    "complianceiq.audit.v1.AuditService/ListComplianceEvents",
    "complianceiq.audit.v1.AuditService/CreateAuditReport",
    "complianceiq.audit.v1.AuditService/ListAuditReports",
    "complianceiq.audit.v1.AuditService/GetAuditReport",
    "complianceiq.audit.v1.AuditService/DownloadAuditReport",
    "complianceiq.notification.v1.NotificationService/SendNotification",
    "complianceiq.notification.v1.NotificationService/DeliverReport",
    "complianceiq.notification.v1.NotificationService/ListNotifications",
    "complianceiq.notification.v1.NotificationService/GetNotification",
    "complianceiq.notification.v1.NotificationService/MarkNotificationRead",
    "complianceiq.notification.v1.NotificationService/DeleteNotification",
    "complianceiq.notification.v1.NotificationService/StreamNotifications",
    "complianceiq.notification.v1.NotificationService/GetNotificationTemplate",
    "complianceiq.notification.v1.NotificationService/UpdateNotificationTemplate",
    "complianceiq.notification.v1.NotificationService/DeleteNotificationTemplate",
    "complianceiq.notification.v1.NotificationService/GetNotificationPreferences",
    "complianceiq.notification.v1.NotificationService/UpdateNotificationPreferences",
    "complianceiq.webhook.v1.WebhookService/CreateWebhook",
    "complianceiq.webhook.v1.WebhookService/ListWebhooks",
    "complianceiq.webhook.v1.WebhookService/GetWebhook",
    "complianceiq.webhook.v1.WebhookService/UpdateWebhook",
    "complianceiq.webhook.v1.WebhookService/DeleteWebhook",
    "complianceiq.webhook.v1.WebhookService/ListWebhookDeliveries",
    "complianceiq.webhook.v1.WebhookService/TestWebhook",
    "complianceiq.webhook.v1.WebhookService/RedeliverWebhookDelivery",
    "complianceiq.analysis.v1.AnalysisService/IngestRecords",
    "complianceiq.analysis.v1.AnalysisService/AnalyzeControls",
    "complianceiq.analysis.v1.AnalysisService/AnalyzeRisks",
    "complianceiq.analysis.v1.AnalysisService/AnalyzeCompliance",
    "complianceiq.analysis.v1.AnalysisService/RunPredictiveAnalysis",
    "complianceiq.analysis.v1.AnalysisService/DetectAnomalies",
    "complianceiq.analysis.v1.AnalysisService/ReplayAnalysis",
    "complianceiq.analysis.v1.AnalysisService/GetAnalysisJob",
    "complianceiq.analysis.v1.AnalysisService/ListAnalysisJobs",
    "complianceiq.analysis.v1.AnalysisService/DeleteAnalysisJob",
    "complianceiq.analysis.v1.AnalysisService/ListAnalysisResults",
    "complianceiq.insights.v1.InsightsService/GetInstanceInsights",
    "complianceiq.insights.v1.InsightsService/GetInsightHistory",
    "complianceiq.insights.v1.InsightsService/GetInsightTrends",
    "complianceiq.insights.v1.InsightsService/CompareInsights",
    "complianceiq.insights.v1.InsightsService/SearchInsights",
    "complianceiq.insights.v1.InsightsService/SaveInsight",
    "complianceiq.insights.v1.InsightsService/ListSavedReports",
    "complianceiq.insights.v1.InsightsService/GetSavedReport",
    "complianceiq.insights.v1.InsightsService/DeleteSavedReport",
    "complianceiq.ml.v1.MlService/TrainModel",
    "complianceiq.ml.v1.MlService/ListModels",
    "complianceiq.ml.v1.MlService/GetModel",
    "complianceiq.ml.v1.MlService/Predict",
    "complianceiq.ml.v1.MlService/DeleteModel",
    "complianceiq.ml.v1.MlService/EvaluateModel",
    "complianceiq.ml.v1.MlService/ScanRegulation",
    "complianceiq.ml.v1.MlService/SetDefaultModel",
    "complianceiq.ml.v1.MlService/ScoreControls",
    "complianceiq.ml.v1.MlService/CancelTraining",
    "complianceiq.ml.v1.MlService/CreateDocumentUpload",
    "complianceiq.ml.v1.MlService/UploadDocument",
    "complianceiq.insights.v1.InsightsService/ExportInsight",
    "complianceiq.insights.v1.InsightsService/GetExport",
    "complianceiq.insights.v1.InsightsService/DownloadExport",
];

/// The services a module serves, from the contracts: those of `complianceiq.<module>.v1`
/// (one each, and the organization module's staff service).
fn services_of(module: &str) -> Vec<String> {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let package = format!("complianceiq.{module}.v1");
    let services: Vec<String> =
        pool.services().filter(|s| s.package_name() == package).map(|s| s.full_name().to_string()).collect();
    assert!(!services.is_empty(), "{module} serves a service");
    services
}

/// Lists services and fetches the file declaring `symbol`, over reflection v1 or v1alpha.
macro_rules! reflect {
    ($version:ident, $channel:expr, $symbol:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let requests = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol($symbol.to_string())),
            },
        ];
        let mut client = ServerReflectionClient::new($channel);
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(requests))
            .await
            .expect(concat!("reflection ", stringify!($version)))
            .into_inner();
        let mut services = BTreeSet::new();
        let mut files = Vec::new();
        while let Some(response) = responses.message().await.expect("a reflection response") {
            match response.message_response.expect("a response") {
                MessageResponse::ListServicesResponse(list) => {
                    services.extend(list.service.into_iter().map(|s| s.name))
                }
                MessageResponse::FileDescriptorResponse(found) => files.extend(found.file_descriptor_proto),
                MessageResponse::ErrorResponse(error) => {
                    panic!("reflection error: {}", error.error_message)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (services, files)
    }};
}

async fn every_module_reports_health_and_reflects_its_api(platform: &TestPlatform) {
    // The gateway speaks for every service; its edge is tested in gateway.rs.
    for module in complianceiq::modules().into_iter().filter(|module| module.name.0 != "gateway") {
        let name = module.name.0;
        let services = services_of(name);
        let channel = platform.channel(name).await;

        let mut health = HealthClient::new(channel.clone());
        for checked in std::iter::once("").chain(services.iter().map(String::as_str)) {
            let status = health
                .check(HealthCheckRequest { service: checked.into() })
                .await
                .unwrap_or_else(|error| panic!("{name}: health of {checked:?}: {error}"))
                .into_inner()
                .status();
            assert_eq!(status, ServingStatus::Serving, "{name}: {checked:?}");
        }
        let unknown = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);

        let expected: BTreeSet<String> = [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
        .into_iter()
        .map(str::to_string)
        .chain(services.iter().cloned())
        .collect();
        for service in &services {
            let (services_v1, files_v1) = reflect!(v1, channel.clone(), service.clone());
            let (services_v1alpha, files_v1alpha) = reflect!(v1alpha, channel.clone(), service.clone());
            assert_eq!(services_v1, expected, "{name} over reflection v1");
            assert_eq!(services_v1alpha, expected, "{name} over reflection v1alpha");
            for files in [files_v1, files_v1alpha] {
                let declares_service = files.iter().any(|bytes| {
                    let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
                    file.service.iter().any(|s| service.ends_with(&format!(".{}", s.name())))
                });
                assert!(declares_service, "{name}: reflection returns the file declaring {service}");
            }
        }
    }
}

async fn rpcs_not_built_yet_say_which_they_are(platform: &TestPlatform) {
    // An admin holds every permission, so the access layer lets each call through to its service.
    let tenant = platform.tenant("Surface").await;
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let (mut checked, mut expected) = (0, 0);
    for service in pool
        .services()
        .filter(|s| s.package_name().starts_with("complianceiq.") && !IMPLEMENTED_SERVICES.contains(&s.full_name()))
    {
        let module = service.package_name().split('.').nth(1).unwrap().to_string();
        let channel = platform.channel(&module).await;
        for method in service.methods() {
            let rpc = format!("{}/{}", service.full_name(), method.name());
            if IMPLEMENTED_RPCS.contains(&rpc.as_str()) {
                continue;
            }
            expected += 1;
            let status = crate::harness::call_raw(channel.clone(), &rpc, Some(tenant.token())).await.unwrap_err();
            assert_eq!(status.code(), Code::Unimplemented, "{rpc}: {status:?}");
            assert_eq!(status.message(), format!("{rpc} is not implemented yet"));
            checked += 1;
        }
    }
    assert_eq!(checked, expected);
    // 121 RPCs: 104 before ListAnalysisResults, GetSavedReport, DeleteSavedReport, GetExport,
    // DownloadExport, VerifyAuditTrail, RedeliverWebhookDelivery, StreamNotifications,
    // GetAuditReport, DownloadAuditReport, the three notification template RPCs, the four
    // API key RPCs of the auth service, the report RPCs UpdateReport, DeleteReport, RunReport,
    // ListReportRuns and DownloadReportRun, and the internal DeliverReport and
    // WriteWidgetRecord, and ListWidgetVersions and ListWidgetDeployments (39 RPCs in the
    // services built whole) were added. Since EvaluateModel every RPC is built: the check
    // stands for RPCs added to the contracts before their code (DetectAnomalies,
    // ScanRegulation, SetDefaultModel, ScoreControls, CancelTraining, CreateDocumentUpload and
    // UploadDocument came with theirs, as did ListAccountOrganizations and ResetMemberMfa in the
    // auth service, the staff service's four, and the eleven single sign-on RPCs with the
    // internal ProvisionSsoMember and ApplyProviderRoles).
    assert_eq!(checked, 156 - 57 - IMPLEMENTED_RPCS.len(), "every RPC not built yet was called");
}
