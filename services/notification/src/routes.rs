//! What notifies whom: the one table (also in docs/architecture.md, "Notifications"). Each
//! route names the event, the topic people set preferences for, who receives it, the
//! channels it goes to unless a person's preferences say otherwise, and whether it ignores
//! preferences (a security alert always reaches the person by email).

use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::common::v1::Severity;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::notification::v1::Channel;

/// Who receives a route's notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every member holding this permission (`instances:update`: the instance admins).
    Holders(&'static str),
    /// The person whose request caused the event (who started the analysis).
    Actor,
    /// The person the event is about (the subject of a security alert).
    Subject,
}

pub struct Route {
    pub event: EventType,
    pub topic: &'static str,
    pub audience: Audience,
    pub channels: &'static [Channel],
    /// Delivered on its channels whatever the person's preferences (security alerts).
    pub mandatory: bool,
    /// Its email gathered into the daily digest unless the person chose otherwise.
    pub digest: bool,
}

pub const ROUTES: &[Route] = &[
    Route {
        event: EventType::SyncFailed,
        topic: "sync.failed",
        audience: Audience::Holders("instances:update"),
        channels: &[Channel::Email, Channel::InApp],
        mandatory: false,
        digest: false,
    },
    Route {
        event: EventType::AnalysisCompleted,
        topic: "analysis.completed",
        audience: Audience::Actor,
        channels: &[Channel::InApp, Channel::Email],
        mandatory: false,
        digest: true,
    },
    Route {
        event: EventType::AnalysisFailed,
        topic: "analysis.failed",
        audience: Audience::Actor,
        channels: &[Channel::Email, Channel::InApp],
        mandatory: false,
        digest: false,
    },
    // Only high and critical findings: a control turning ineffective, a new compliance gap,
    // an understated risk.
    Route {
        event: EventType::InsightOpened,
        topic: "insight.opened",
        audience: Audience::Holders("organizations:update"),
        channels: &[Channel::Email, Channel::InApp],
        mandatory: false,
        digest: false,
    },
    // Only when the endpoint was paused.
    Route {
        event: EventType::WebhookDeliveryFailed,
        topic: "webhook.disabled",
        audience: Audience::Holders("webhooks:update"),
        channels: &[Channel::Email, Channel::InApp],
        mandatory: false,
        digest: false,
    },
    Route {
        event: EventType::SecurityAlert,
        topic: "security.alert",
        audience: Audience::Subject,
        channels: &[Channel::Email],
        mandatory: true,
        digest: false,
    },
];

/// What a notification says.
#[derive(Clone, Debug, PartialEq)]
pub struct Content {
    pub severity: Severity,
    pub title: String,
    pub body: String,
    /// Under the platform's public URL.
    pub link_path: String,
    /// For [`Audience::Subject`]: the person.
    pub subject_user_id: String,
}

pub fn route_of(event_type: EventType) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.event == event_type)
}

/// The content of an event's notification; `None` when this event notifies nobody (a
/// low-severity insight, a delivery failure that did not pause its endpoint).
pub fn content(event: &Event) -> Option<Content> {
    let content = |severity, title: String, body: String, link_path: String| Content {
        severity,
        title,
        body,
        link_path,
        subject_user_id: String::new(),
    };
    match event.payload.as_ref()? {
        Payload::SyncFailed(failed) => {
            let run = failed.sync_run.as_ref()?;
            Some(content(
                Severity::High,
                "A ServiceNow sync failed".into(),
                format!("The sync of instance {} stopped: {}", run.instance_id, run.error),
                format!("/api/v1/instances/{}/sync-runs/{}", run.instance_id, run.id),
            ))
        }
        Payload::AnalysisCompleted(completed) => {
            let job = completed.job.as_ref()?;
            Some(content(
                Severity::Info,
                format!("{} analysis finished", kind_of(job.r#type)),
                format!(
                    "The {} analysis of instance {} finished.",
                    kind_of(job.r#type).to_lowercase(),
                    job.instance_id
                ),
                format!("/api/v1/analysis/jobs/{}", job.id),
            ))
        }
        Payload::AnalysisFailed(failed) => {
            let job = failed.job.as_ref()?;
            Some(content(
                Severity::Medium,
                format!("{} analysis failed", kind_of(job.r#type)),
                format!("The analysis of instance {} failed: {}", job.instance_id, job.error),
                format!("/api/v1/analysis/jobs/{}", job.id),
            ))
        }
        Payload::InsightOpened(opened) => {
            let insight = opened.insight.as_ref()?;
            let severity = Severity::try_from(insight.severity).unwrap_or(Severity::Unspecified);
            if severity < Severity::High {
                return None;
            }
            Some(content(
                severity,
                insight.title.clone(),
                insight.summary.clone(),
                format!("/api/v1/insights/{}/history", insight.instance_id),
            ))
        }
        Payload::WebhookDeliveryFailed(failed) if failed.webhook_disabled => Some(content(
            Severity::High,
            "A webhook was paused".into(),
            format!(
                "Deliveries to {} have failed for too long, so the webhook was paused. Last error: {}. \
                 Fix the endpoint, then set the webhook ACTIVE again.",
                failed.url, failed.error
            ),
            format!("/api/v1/webhooks/{}/deliveries", failed.webhook_id),
        )),
        // The person hears of what threatens their account (high or critical), once: the
        // auth service marks the copies for their other organizations `notify=false`.
        Payload::SecurityAlert(alert)
            if !alert.user_id.is_empty() && alert.metadata.get("notify").is_none_or(|notify| notify != "false") =>
        {
            let name = alert.severity.to_ascii_uppercase();
            let severity = Severity::from_str_name(&name)
                .or_else(|| Severity::from_str_name(&format!("SEVERITY_{name}")))
                .unwrap_or(Severity::High);
            if severity < Severity::High {
                return None;
            }
            let from = if alert.ip_address.is_empty() { String::new() } else { format!(" from {}", alert.ip_address) };
            Some(Content {
                subject_user_id: alert.user_id.clone(),
                ..content(
                    severity,
                    "Security alert on your ComplianceIQ account".into(),
                    format!(
                        "We noticed {}{from}. If this was not you, change your password and review your sessions.",
                        alert.kind.replace(['.', '_'], " ")
                    ),
                    String::new(),
                )
            })
        }
        _ => None,
    }
}

fn kind_of(analysis_type: i32) -> &'static str {
    use complianceiq_proto::complianceiq::analysis::v1::AnalysisType;
    match AnalysisType::try_from(analysis_type) {
        Ok(AnalysisType::ControlEffectiveness) => "Control effectiveness",
        Ok(AnalysisType::RiskCorrelation) => "Risk correlation",
        Ok(AnalysisType::ComplianceGap) => "Compliance gap",
        Ok(AnalysisType::Predictive) => "Predictive",
        Ok(AnalysisType::AnomalyDetection) => "Anomaly detection",
        _ => "An",
    }
}

#[cfg(test)]
mod tests {
    use complianceiq_proto::complianceiq::events::v1::SecurityAlert;

    use super::*;

    fn alert(severity: &str, notify: Option<&str>) -> Event {
        let mut alert = SecurityAlert {
            kind: "login.locked".into(),
            severity: severity.into(),
            user_id: "u".into(),
            ..Default::default()
        };
        if let Some(notify) = notify {
            alert.metadata.insert("notify".into(), notify.into());
        }
        Event { payload: Some(Payload::SecurityAlert(alert)), ..Default::default() }
    }

    #[test]
    fn a_person_hears_of_a_threat_to_their_account_once_and_not_of_every_failure() {
        let told = content(&alert("SEVERITY_HIGH", None)).expect("told");
        assert_eq!((told.severity, told.subject_user_id.as_str()), (Severity::High, "u"));
        assert!(told.body.contains("login locked"), "{}", told.body);
        assert_eq!(content(&alert("critical", None)).map(|c| c.severity), Some(Severity::Critical));
        assert_eq!(content(&alert("SEVERITY_HIGH", Some("false"))), None, "another organization's copy");
        assert_eq!(content(&alert("SEVERITY_LOW", None)), None, "a single failed login");
    }
}
