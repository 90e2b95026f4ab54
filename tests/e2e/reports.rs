//! Custom reports: a weekly report (cron in a time zone) fires, is rendered as a PDF whose
//! text holds the dashboard's own numbers, and arrives at a real SMTP server as an
//! attachment; sent as a link instead, the link opens the same file; runs are listed; bad
//! definitions say what is wrong; another tenant sees nothing; deleting the report ends its
//! files and links.

use std::time::Duration;

use base64::Engine;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::analysis::v1::{AnalyzeComplianceRequest, AnalyzeControlsRequest, JobState};
use complianceiq_proto::complianceiq::common::v1::ExportFormat;
use complianceiq_proto::complianceiq::dashboard::v1::*;
use complianceiq_proto::complianceiq::instance::v1::SyncMode;
use complianceiq_servicenow::sim::SimConfig;
use tonic::Code;

use crate::analysis::{client as analysis_client, ended, start_controls};
use crate::dashboard::{dashboard, summary_once};
use crate::harness::{Backend, TestPlatform, violations};
use crate::insights::download;
use crate::instances::simulator;
use crate::notifications::SmtpServer;
use crate::people::{Tenant, authorized};
use crate::sync::{connected, sync};

const METRICS: [&str; 5] =
    ["posture_score", "control_effectiveness_score", "controls_effective", "controls_analyzed", "open_issues"];
const RECIPIENT: &str = "ciso@reports.example.com";

mod a_scheduled_report_arrives_by_mail_with_the_numbers_of_the_api {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::scheduled_report(super::Backend::Embedded).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers() {
        super::scheduled_report(super::Backend::Servers).await;
    }
}

async fn scheduled_report(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let platform = TestPlatform::start_with(backend, move |config| {
        config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(mailed(&platform, &smtp))).await;
    platform.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The report run until it has ended (30 s at most).
async fn run_ended(platform: &TestPlatform, tenant: &Tenant, report: &str, count: usize) -> Vec<ReportRun> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let request = ListReportRunsRequest { report_id: report.into(), ..Default::default() };
        let runs = dashboard(platform)
            .await
            .list_report_runs(authorized(request, tenant.token()))
            .await
            .expect("the runs")
            .into_inner()
            .runs;
        if runs.len() >= count && runs.iter().all(|run| run.state() != ReportState::Pending) {
            return runs;
        }
        assert!(tokio::time::Instant::now() < deadline, "the report's runs never ended: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The base64 body of the MIME part whose content type is `content_type`, decoded.
fn attachment(message: &str, content_type: &str) -> Vec<u8> {
    let start = message.find(&format!("Content-Type: {content_type}")).expect("the attachment's part");
    let part = &message[start..];
    let body = &part[part.find("\r\n\r\n").expect("the part's body") + 4..];
    let encoded: String = body.lines().take_while(|line| !line.starts_with("--")).collect();
    base64::engine::general_purpose::STANDARD.decode(encoded.trim()).expect("base64")
}

/// The plain-text part of a mail, its transfer encoding undone.
fn text_part(message: &str) -> String {
    let start = message.find("Content-Type: text/plain").expect("a text part");
    let part = &message[start..];
    let split = part.find("\r\n\r\n").expect("the part's body");
    let (headers, body) = (&part[..split], &part[split + 4..]);
    let body: String = body.lines().take_while(|line| !line.starts_with("--")).collect::<Vec<_>>().join("\n");
    if headers.contains("base64") {
        let encoded: String = body.split_whitespace().collect();
        return String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    }
    if !headers.contains("quoted-printable") {
        return body;
    }
    let joined = body.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        match (first, tail.get(..2).and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())) {
            (b'=', Some(byte)) => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).expect("UTF-8 text")
}

fn pdf_words(bytes: &[u8]) -> String {
    let document = lopdf::Document::load_mem(bytes).expect("a PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    document.extract_text(&pages).expect("text").split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn mailed(platform: &TestPlatform, smtp: &SmtpServer) {
    *smtp.mailbox.lock().unwrap() = Some(platform.config.data_dir.join("mailbox"));
    let running = simulator(SimConfig { controls: 30, seed: 5, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Reported").await;
    let other = platform.tenant("Bystander").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let request = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job = ended(platform, &tenant, &start_controls(platform, &tenant, request).await).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let request = AnalyzeComplianceRequest { instance_id: instance.id.clone(), ..Default::default() };
    let compliance = analysis_client(platform).await.analyze_compliance(authorized(request, tenant.token())).await;
    let compliance = ended(platform, &tenant, compliance.expect("compliance analysis").get_ref()).await;
    assert_eq!(compliance.state(), JobState::Succeeded, "{compliance:?}");
    // Both analyses are on the dashboard before the report is rendered.
    summary_once(platform, &tenant, |summary| {
        summary.posture_score > 0.0 && summary.metrics.iter().any(|metric| metric.name == "compliance_coverage")
    })
    .await;
    let mut client = dashboard(platform).await;

    // Bad definitions are refused field by field.
    let bad = Report {
        name: "Weekly".into(),
        metrics: vec!["posture_score".into(), "revenue".into()],
        schedule: "0 6 * *".into(),
        recipients: vec!["not-an-address".into()],
        ..Default::default()
    };
    let refused = client
        .create_report(authorized(CreateReportRequest { report: Some(bad) }, tenant.token()))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&refused).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["report.metrics[1]", "report.recipients[0]", "report.schedule"], "{refused:?}");

    // Weekly on Monday at 06:00 in Paris: the next rendering is a Monday at 04:00 or 05:00 UTC.
    let definition = Report {
        name: "Weekly posture".into(),
        description: "Control effectiveness for the board".into(),
        metrics: METRICS.iter().chain(&["framework_coverage"]).map(|name| name.to_string()).collect(),
        format: ExportFormat::Pdf as i32,
        recipients: vec![RECIPIENT.into()],
        schedule: "0 6 * * 1".into(),
        time_zone: "Europe/Paris".into(),
        ..Default::default()
    };
    let report = client
        .create_report(authorized(CreateReportRequest { report: Some(definition) }, tenant.token()))
        .await
        .expect("created")
        .into_inner();
    let next = report.next_render_time.expect("a next rendering").seconds;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(next > now && next <= now + 7 * 86_400, "{next} within the week after {now}");
    assert!([4, 5].contains(&((next / 3600) % 24)) && next % 3600 == 0, "06:00 in Paris, not {next}");
    assert_eq!((next / 86_400 + 4) % 7, 1, "a Monday (1970-01-01 was a Thursday)");
    assert_eq!(report.delivery(), ReportDelivery::Attachment);

    // Time passes: the schedule's queue entry comes due, and the report is mailed.
    platform
        .execute_as_owner(
            DatabaseGroup::Analysis,
            &format!("UPDATE ciq_jobs SET lease_until = 0 WHERE kind = 'report_schedule' AND job_id = '{}'", report.id),
        )
        .await;
    let mails = smtp.messages_to(RECIPIENT, 1).await;
    assert!(mails[0].contains("Subject: Weekly posture: your ComplianceIQ report"), "{}", mails[0]);
    let pdf = attachment(&mails[0], "application/pdf");
    let text = pdf_words(&pdf);

    // The PDF's numbers are the API's.
    let request = GetOrganizationMetricsRequest::default();
    let organization =
        client.get_organization_metrics(authorized(request, tenant.token())).await.expect("metrics").into_inner();
    let totals = organization.totals.expect("totals");
    for name in METRICS {
        let value = totals.metrics.iter().find(|metric| metric.name == name).expect(name).value;
        assert!(text.contains(&format!("{name} {value}")), "{name} {value} in {text}");
    }
    assert!(totals.metrics.iter().any(|metric| metric.name == "controls_analyzed" && metric.value > 0.0), "{totals:?}");
    // Coverage per framework: one row per policy of the instance, its percent as the API's.
    let frameworks = &organization.instances[0].framework_coverage;
    assert!(!frameworks.is_empty(), "the compliance analysis covers the simulator's policies");
    assert_eq!(text.matches("framework_coverage:").count(), frameworks.len(), "{text}");
    for framework in frameworks {
        assert!(text.contains(&format!(" {} - percent", framework.coverage_percent)), "{framework:?} in {text}");
    }

    // The run is listed, scheduled, delivered; its link opens the same file.
    let runs = run_ended(platform, &tenant, &report.id, 1).await;
    let run = &runs[0];
    assert_eq!((run.trigger(), run.state()), (ReportTrigger::Scheduled, ReportState::Ready), "{run:?}");
    assert_eq!(run.delivered_to, [RECIPIENT]);
    let (status, content_type, disposition, bytes) = download(platform, &run.download_uri).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    assert!(disposition.contains(&run.file_name) && run.file_name.ends_with(".pdf"), "{disposition}");
    assert_eq!(bytes, pdf);
    // The schedule goes on.
    let reread = client
        .get_report(authorized(GetReportRequest { report_id: report.id.clone() }, tenant.token()))
        .await
        .expect("the report")
        .into_inner();
    assert!(reread.next_render_time.is_some_and(|time| time.seconds > now), "{reread:?}");
    assert_eq!(reread.state(), ReportState::Ready);

    // Sent as a link instead, on demand: the mail carries a link to the file, not the file.
    let update = UpdateReportRequest {
        report_id: report.id.clone(),
        report: Some(Report { delivery: ReportDelivery::Link as i32, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["delivery".into()] }),
    };
    let updated = client.update_report(authorized(update, tenant.token())).await.expect("updated").into_inner();
    assert_eq!((updated.delivery(), updated.schedule.as_str()), (ReportDelivery::Link, "0 6 * * 1"));
    client
        .run_report(authorized(RunReportRequest { report_id: report.id.clone() }, tenant.token()))
        .await
        .expect("run");
    let mails = smtp.messages_to(RECIPIENT, 2).await;
    let linked = mails.iter().find(|mail| !mail.contains("application/pdf")).expect("a mail with a link");
    let text = text_part(linked);
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("/download?"))
        .unwrap_or_else(|| panic!("a link in {text}"));
    assert!(text.contains("the link expires"), "{text}");
    let (status, _, _, bytes) = download(platform, link).await;
    assert_eq!(status, 200);
    assert!(pdf_words(&bytes).contains("Weekly posture"));
    let runs = run_ended(platform, &tenant, &report.id, 2).await;
    assert_eq!(runs[0].trigger(), ReportTrigger::Manual, "newest first");

    // Another tenant sees none of it.
    let mut theirs = dashboard(platform).await;
    let listed = theirs
        .list_reports(authorized(ListReportsRequest::default(), other.token()))
        .await
        .expect("their reports")
        .into_inner();
    assert!(listed.reports.is_empty());
    for call in [
        theirs.get_report(authorized(GetReportRequest { report_id: report.id.clone() }, other.token())).await.err(),
        theirs.run_report(authorized(RunReportRequest { report_id: report.id.clone() }, other.token())).await.err(),
        theirs
            .delete_report(authorized(DeleteReportRequest { report_id: report.id.clone() }, other.token()))
            .await
            .err(),
    ] {
        assert_eq!(call.map(|status| status.code()), Some(Code::NotFound));
    }

    // Deleted: the report, its runs and the file behind its links are gone.
    client
        .delete_report(authorized(DeleteReportRequest { report_id: report.id.clone() }, tenant.token()))
        .await
        .expect("deleted");
    let gone = client
        .get_report(authorized(GetReportRequest { report_id: report.id.clone() }, tenant.token()))
        .await
        .expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    let (status, _, _, _) = download(platform, &run.download_uri).await;
    assert_eq!(status, 404);
}
