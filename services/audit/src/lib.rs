//! The audit service (port 8010, audit_db): the audit trail, security and compliance events,
//! audit reports.
//!
//! The trail is one append-only hash chain per organization (`store`). Entries arrive as
//! `audit.recorded` events, which every module's audit layer (kit) writes for each mutating
//! call it serves, as `security.alert` events (security events), as `insight.opened` events
//! (compliance events: what an analysis newly found), and through CreateAuditLog. Reports
//! render a period of the trail to a file as jobs (`reports`).

mod reports;
mod retention;
mod store;

use std::sync::Arc;

use complianceiq_kit::audit as kit_audit;
use complianceiq_kit::auth::caller;
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::context::{RequestContext, client_address};
use complianceiq_kit::db::{Migration, ModuleDatabase};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time, validate};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::audit::v1::audit_service_server::{AuditService, AuditServiceServer};
use complianceiq_proto::complianceiq::audit::v1::*;
use complianceiq_proto::complianceiq::common::v1::{Severity, TimeRange};
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::insights::v1::Insight;
use tonic::{Request, Response, Status};

const MIGRATIONS: &[Migration] =
    &[migration!(1, "0001_audit_logs"), migration!(2, "0002_audit_reports"), migration!(3, "0003_audit_retention")];

/// Limits of what a caller may write through CreateAuditLog.
const MAX_TEXT: usize = 200;
const MAX_METADATA_ENTRIES: usize = 50;
const MAX_METADATA_VALUE: usize = 2000;
/// Longest search text, and most words it may hold.
const MAX_QUERY: usize = 500;
const MAX_QUERY_WORDS: usize = 32;

struct AuditApi {
    database: ModuleDatabase,
    reports: reports::Reports,
}

impl AuditApi {
    async fn create(&self, request: Request<CreateAuditLogRequest>) -> Result<AuditLog, ApiError> {
        let identity = caller(&request)?;
        let organization = identity.tenant()?;
        let context = RequestContext::of(&request);
        let address = client_address(&request).map(|address| address.to_string()).unwrap_or_default();
        let mut entry = request.into_inner().audit_log.unwrap_or_default();
        let mut violations = FieldViolations::default();
        violations.text("audit_log.action", &entry.action, MAX_TEXT);
        violations.text("audit_log.resource_type", &entry.resource_type, MAX_TEXT);
        violations.max_chars("audit_log.resource_id", &entry.resource_id, MAX_TEXT);
        if entry.metadata.len() > MAX_METADATA_ENTRIES {
            violations.add("audit_log.metadata", "TOO_MANY", format!("at most {MAX_METADATA_ENTRIES} entries"));
        }
        for (key, value) in &entry.metadata {
            violations.text("audit_log.metadata", key, MAX_TEXT);
            violations.max_chars("audit_log.metadata", value, MAX_METADATA_VALUE);
        }
        if Outcome::try_from(entry.outcome).is_err() {
            violations.add("audit_log.outcome", "INVALID", "not an outcome");
        }
        if let Some(actor) = &entry.actor {
            violations.max_chars("audit_log.actor.user_agent", &actor.user_agent, MAX_TEXT);
        }
        let now = time::now_micros();
        if let Some(at) = &entry.event_time
            && time::from_timestamp(at) > now + 300 * 1_000_000
        {
            violations.add("audit_log.event_time", "IN_FUTURE", "event_time is more than 5 minutes ahead");
        }
        violations.check()?;
        // Who wrote it is the caller, whatever the entry claims; the chain fields are the
        // store's to fill.
        let agent = entry.actor.take().map(|actor| actor.user_agent).unwrap_or_default();
        entry.actor = Some(Actor {
            user_id: identity.user_id.to_string(),
            email: identity.email.clone(),
            service: String::new(),
            ip_address: address,
            user_agent: agent,
        });
        entry.rpc.clear();
        entry.request_id = context.request_id;
        if entry.outcome == 0 {
            entry.outcome = Outcome::Success as i32;
        }
        let mut tx = self.database.write(organization).await?;
        let stored = store::append(&mut tx, &uuid::Uuid::now_v7().to_string(), entry).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn list(&self, request: Request<ListAuditLogsRequest>) -> Result<ListAuditLogsResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        violations.optional_uuid("user_id", &request.user_id);
        for (field, value) in [
            ("action", &request.action),
            ("resource_type", &request.resource_type),
            ("resource_id", &request.resource_id),
        ] {
            violations.max_chars(field, value, MAX_TEXT);
        }
        if Outcome::try_from(request.outcome).is_err() {
            violations.add("outcome", "INVALID", "not an outcome");
        }
        let period = validate::period(&mut violations, request.period.as_ref(), UNBOUNDED);
        let words = validate::search_words(&mut violations, &request.query, MAX_QUERY, MAX_QUERY_WORDS);
        violations.check()?;
        let filter = store::Filter {
            words,
            actor_user_id: request.user_id.clone(),
            action: request.action.clone(),
            resource_type: request.resource_type.clone(),
            resource_id: request.resource_id.clone(),
            outcome: i64::from(request.outcome),
            period,
            ..Default::default()
        };
        let (audit_logs, next_page_token) =
            self.page(organization, &filter, request.page_size, &request.page_token).await?;
        Ok(ListAuditLogsResponse { audit_logs, next_page_token })
    }

    /// A page of entries matching `filter`, newest first.
    async fn page(
        &self,
        organization: OrganizationId,
        filter: &store::Filter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditLog>, String), ApiError> {
        let page = PageRequest::parse(page_size, page_token, &format!("{filter:?}"))?;
        let before = page.after_number()?;
        let mut tx = self.database.read(organization).await?;
        let mut entries = store::page(&mut tx, filter, before, page.fetch_limit()).await?;
        tx.commit().await?;
        let token = page.finish(&mut entries, |entry| vec![entry.sequence.to_string()]);
        Ok((entries, token))
    }

    async fn security_events(
        &self,
        request: Request<ListSecurityEventsRequest>,
    ) -> Result<ListSecurityEventsResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let filter = event_filter(
            &mut violations,
            SECURITY_PREFIX,
            &request.r#type,
            request.min_severity,
            request.period.as_ref(),
        );
        violations.check()?;
        // Severity is in the metadata, not a column: a page keeps the events at or above
        // it, so it may hold fewer than page_size (AIP-158 allows it); the token goes on.
        let (entries, next_page_token) =
            self.page(organization, &filter, request.page_size, &request.page_token).await?;
        let security_events =
            entries.into_iter().map(security_event).filter(|event| event.severity >= request.min_severity).collect();
        Ok(ListSecurityEventsResponse { security_events, next_page_token })
    }

    async fn compliance_events(
        &self,
        request: Request<ListComplianceEventsRequest>,
    ) -> Result<ListComplianceEventsResponse, ApiError> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        violations.optional_uuid("instance_id", &request.instance_id);
        let filter = event_filter(
            &mut violations,
            COMPLIANCE_PREFIX,
            &request.r#type.to_ascii_lowercase(),
            request.min_severity,
            request.period.as_ref(),
        );
        violations.check()?;
        // Instance and severity are in the metadata: a page keeps what matches them.
        let (entries, next_page_token) =
            self.page(organization, &filter, request.page_size, &request.page_token).await?;
        let compliance_events = entries
            .into_iter()
            .map(compliance_event)
            .filter(|event| event.severity >= request.min_severity)
            .filter(|event| request.instance_id.is_empty() || event.instance_id == request.instance_id)
            .collect();
        Ok(ListComplianceEventsResponse { compliance_events, next_page_token })
    }
}

/// Actions of entries that record security alerts: `security.<kind>`.
const SECURITY_PREFIX: &str = "security.";

fn security_event(entry: AuditLog) -> SecurityEvent {
    let severity = severity_of(&entry.metadata);
    SecurityEvent {
        id: entry.id,
        organization_id: entry.organization_id,
        r#type: entry.action.strip_prefix(SECURITY_PREFIX).unwrap_or_default().to_string(),
        severity: severity as i32,
        actor: entry.actor,
        metadata: entry.metadata,
        event_time: entry.event_time,
    }
}

/// Actions of entries that record compliance events: `compliance.<finding>`.
const COMPLIANCE_PREFIX: &str = "compliance.";

/// A new insight as a compliance event of the trail: `compliance.control_ineffective` on the
/// control, `compliance.requirement_gap` on the requirement, ...
fn compliance_entry(event: &Event, insight: &Insight) -> AuditLog {
    let subject = insight.subject.clone().unwrap_or_default();
    let severity = Severity::try_from(insight.severity).unwrap_or(Severity::Unspecified);
    let mut metadata: std::collections::HashMap<String, String> = [
        ("instance_id", insight.instance_id.clone()),
        ("insight_id", insight.id.clone()),
        ("analysis_job_id", insight.analysis_job_id.clone()),
        ("severity", severity.as_str_name().trim_start_matches("SEVERITY_").to_ascii_lowercase()),
        ("title", insight.title.clone()),
        ("record", subject.display.clone()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    metadata.insert("record_ids".into(), insight.record_ids.join(","));
    AuditLog {
        actor: Some(Actor { service: event.source.clone(), ..Default::default() }),
        action: format!("{COMPLIANCE_PREFIX}{}", insight.finding.to_ascii_lowercase()),
        resource_type: subject.table,
        resource_id: subject.sys_id,
        metadata,
        request_id: event.request_id.clone(),
        event_time: event.occur_time,
        ..Default::default()
    }
}

fn compliance_event(entry: AuditLog) -> ComplianceEvent {
    let metadata = &entry.metadata;
    let text = |key: &str| metadata.get(key).cloned().unwrap_or_default();
    ComplianceEvent {
        id: entry.id.clone(),
        organization_id: entry.organization_id.clone(),
        instance_id: text("instance_id"),
        r#type: entry.action.strip_prefix(COMPLIANCE_PREFIX).unwrap_or_default().to_string(),
        severity: severity_of(metadata) as i32,
        description: text("title"),
        record_ids: text("record_ids").split(',').filter(|id| !id.is_empty()).map(str::to_string).collect(),
        metadata: entry.metadata,
        event_time: entry.event_time,
    }
}

/// The severity an entry's metadata names (`high`, ...).
fn severity_of(metadata: &std::collections::HashMap<String, String>) -> Severity {
    metadata
        .get("severity")
        .and_then(|name| Severity::from_str_name(&format!("SEVERITY_{}", name.to_ascii_uppercase())))
        .unwrap_or(Severity::Unspecified)
}

/// No bound on either side of a period.
const UNBOUNDED: (i64, i64) = (i64::MIN, i64::MAX);

/// The filter of a listing of security or compliance events: entries whose action starts
/// with `prefix`, or is `prefix` + `kind` when a kind is asked for, in the period. Severity
/// is checked here and applied to the page (it is in the entries' metadata, not a column).
fn event_filter(
    violations: &mut FieldViolations,
    prefix: &str,
    kind: &str,
    min_severity: i32,
    period: Option<&TimeRange>,
) -> store::Filter {
    violations.max_chars("type", kind, MAX_TEXT);
    if Severity::try_from(min_severity).is_err() {
        violations.add("min_severity", "INVALID", "not a severity");
    }
    let period = validate::period(violations, period, UNBOUNDED);
    if kind.is_empty() {
        store::Filter { action_prefix: prefix.into(), period, ..Default::default() }
    } else {
        store::Filter { action: format!("{prefix}{kind}"), period, ..Default::default() }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn create_audit_log(&self, request: Request<CreateAuditLogRequest>) -> Result<Response<AuditLog>, Status> {
        Ok(Response::new(self.create(request).await?))
    }

    async fn list_audit_logs(
        &self,
        request: Request<ListAuditLogsRequest>,
    ) -> Result<Response<ListAuditLogsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    async fn get_audit_log(&self, request: Request<GetAuditLogRequest>) -> Result<Response<AuditLog>, Status> {
        let organization = caller(&request)?.tenant()?;
        let id = complianceiq_kit::ids::parse_uuid("log_id", &request.get_ref().log_id)?.to_string();
        let mut tx = self.database.read(organization).await?;
        let entry = store::entry(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("AuditLog", &id))?;
        tx.commit().await?;
        Ok(Response::new(entry))
    }

    async fn verify_audit_trail(
        &self,
        request: Request<VerifyAuditTrailRequest>,
    ) -> Result<Response<AuditTrailVerification>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.keys.verify(&self.database, organization).await?))
    }

    async fn list_compliance_events(
        &self,
        request: Request<ListComplianceEventsRequest>,
    ) -> Result<Response<ListComplianceEventsResponse>, Status> {
        Ok(Response::new(self.compliance_events(request).await?))
    }

    async fn create_audit_report(
        &self,
        request: Request<CreateAuditReportRequest>,
    ) -> Result<Response<AuditReport>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.reports.create(&identity, request.into_inner()).await?))
    }

    async fn list_audit_reports(
        &self,
        request: Request<ListAuditReportsRequest>,
    ) -> Result<Response<ListAuditReportsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.list(organization, request.into_inner()).await?))
    }

    async fn get_audit_report(&self, request: Request<GetAuditReportRequest>) -> Result<Response<AuditReport>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.reports.get(organization, &request.get_ref().report_id).await?))
    }

    async fn download_audit_report(
        &self,
        request: Request<DownloadAuditReportRequest>,
    ) -> Result<Response<complianceiq_proto::google::api::HttpBody>, Status> {
        let (body, file_name) = self.reports.download(request.into_inner()).await?;
        Ok(complianceiq_kit::objects::attachment(body, &file_name))
    }

    async fn list_security_events(
        &self,
        request: Request<ListSecurityEventsRequest>,
    ) -> Result<Response<ListSecurityEventsResponse>, Status> {
        Ok(Response::new(self.security_events(request).await?))
    }
}

/// Appends what modules record and the security alerts to each organization's chain.
struct Recorder {
    database: ModuleDatabase,
}

/// Entries appended per transaction when events wait: one commit for many (BENCHMARKS.md).
const APPEND_BATCH: usize = 200;

#[tonic::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        self.handle_batch(&[event]).await
    }

    fn batch_size(&self) -> usize {
        APPEND_BATCH
    }

    /// One transaction per organization in the batch, appending its entries in order.
    async fn handle_batch(&self, events: &[&Event]) -> Result<(), ApiError> {
        let mut by_organization: Vec<(OrganizationId, Vec<(&str, AuditLog)>)> = Vec::new();
        for event in events {
            let Some((organization, entry)) = entry_of(event) else { continue };
            match by_organization.iter_mut().find(|(known, _)| *known == organization) {
                Some((_, entries)) => entries.push((&event.id, entry)),
                None => by_organization.push((organization, vec![(&event.id, entry)])),
            }
        }
        for (organization, entries) in by_organization {
            let mut tx = self.database.write(organization).await?;
            for (event_id, entry) in entries {
                store::append(&mut tx, event_id, entry).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The entry an event records, in its organization's chain; `None` for an event that
/// records nothing.
fn entry_of(event: &Event) -> Option<(OrganizationId, AuditLog)> {
    let entry = match &event.payload {
        Some(Payload::AuditRecorded(recorded)) => {
            let mut entry = recorded.entry.clone()?;
            let platform = event.organization_id == OrganizationId::PLATFORM.to_string();
            let refusal = [kit_audit::MESH_DENIED, kit_audit::MESH_UNAUTHENTICATED].contains(&entry.action.as_str());
            // A module records calls to its own services only (`complianceiq.<module>.v1`),
            // and the mesh refusals at its server (whatever path was asked for) in the
            // platform's trail only, under its own name. Staff calls naming no organization
            // (searches across them) are the platform trail's other entries.
            let service_module = entry.rpc.strip_prefix("/complianceiq.").and_then(|rest| rest.split('.').next());
            let own_rpc = service_module == Some(event.source.as_str());
            let staff = entry.metadata.get("actor_role").is_some_and(|role| role == kit_audit::STAFF_ROLE);
            if refusal && platform {
                entry.metadata.insert("refused_by".into(), event.source.clone());
            } else if refusal || !own_rpc || (platform && !staff) {
                tracing::error!(
                    target: "security",
                    event_id = %event.id,
                    source = %event.source,
                    rpc = %entry.rpc,
                    "an audit entry for an RPC its publisher does not serve was refused"
                );
                return None;
            }
            entry
        }
        Some(Payload::SecurityAlert(alert)) => {
            let mut metadata = alert.metadata.clone();
            metadata.insert("severity".into(), alert.severity.clone());
            AuditLog {
                actor: Some(Actor {
                    user_id: alert.user_id.clone(),
                    ip_address: alert.ip_address.clone(),
                    service: event.source.clone(),
                    ..Default::default()
                }),
                action: format!("{SECURITY_PREFIX}{}", alert.kind),
                resource_type: "user".into(),
                resource_id: alert.user_id.clone(),
                outcome: Outcome::Denied as i32,
                metadata,
                request_id: event.request_id.clone(),
                event_time: event.occur_time,
                ..Default::default()
            }
        }
        Some(Payload::InsightOpened(opened)) => {
            let insight = opened.insight.as_ref()?;
            compliance_entry(event, insight)
        }
        _ => return None,
    };
    // The trail is per organization; a call or alert outside any (a registration, a
    // failed login of an unknown address) has no chain to join.
    let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else {
        tracing::debug!(event_id = %event.id, action = %entry.action, "audit entry without an organization");
        return None;
    };
    Some((organization, entry))
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("audit"),
        port: 8010,
        database: Some(DatabaseGroup::Audit),
        calls: &[],
        migrations: MIGRATIONS,
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let recorder = Subscription {
                    consumer: "audit-trail",
                    events: vec![EventType::AuditRecorded, EventType::SecurityAlert, EventType::InsightOpened],
                    handler: Arc::new(Recorder { database: database.clone() }),
                };
                let objects = complianceiq_kit::objects::Objects::from_url(&context.config.object_store_url())
                    .map_err(|e| format!("audit: {e}"))?;
                let keys = retention::CheckpointKeys(context.secrets.clone());
                let by_plan = context.config.audit.retention_by_plan()?;
                let retention = retention::Retention {
                    database: database.clone(),
                    keys: keys.clone(),
                    by_plan,
                    every: std::time::Duration::from_secs(context.config.audit.retention_sweep_seconds.max(1)),
                };
                let plans = Subscription {
                    consumer: "audit-plans",
                    events: vec![EventType::OrganizationCreated, EventType::SubscriptionChanged],
                    handler: Arc::new(retention::Plans { database: database.clone() }),
                };
                let reports = reports::Reports {
                    keys,
                    database: database.clone(),
                    objects,
                    links: complianceiq_kit::objects::SignedLinks {
                        secrets: context.secrets.clone(),
                        public_url: context.config.mail.public_url.clone(),
                        ttl: std::time::Duration::from_secs(context.config.storage.download_link_seconds.max(1)),
                        route: reports::DOWNLOAD_ROUTE,
                    },
                };
                let worker =
                    reports::worker(reports.clone(), context.config.jobs.worker_settings(), context.metrics.clone());
                Ok(ModuleParts::new()
                    .service(AuditServiceServer::new(AuditApi { database, reports }))
                    .subscription(recorder)
                    .subscription(plans)
                    .worker(retention.worker())
                    .worker(worker))
            })
        },
    }
}
