//! The kinds of findings the analyses report, what each weighs, and the stable id of the
//! insight a finding becomes (the insights service keeps them; see its crate).

use complianceiq_kit::crypto::sha256_hex;
use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;
use complianceiq_proto::complianceiq::common::v1::Severity;
use complianceiq_proto::complianceiq::insights::v1::InsightCategory;

use crate::{anomalies, compliance, controls, predictive, risks};

/// A kind of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FindingKind {
    /// The name results carry, e.g. CONTROL_INEFFECTIVE.
    pub name: &'static str,
    /// The analysis type that reports it (the job's stored type name).
    pub analysis_type: &'static str,
    pub category: InsightCategory,
    pub severity: Severity,
}

/// Every finding kind. A kind's severity is fixed, so an insight keeps its severity between
/// runs and only its numbers move.
pub const KINDS: &[FindingKind] = &[
    FindingKind {
        name: controls::CONTROL_INEFFECTIVE,
        analysis_type: "control_effectiveness",
        category: InsightCategory::ControlEffectiveness,
        severity: Severity::High,
    },
    FindingKind {
        name: controls::STATUS_CONTRADICTS_SCORE,
        analysis_type: "control_effectiveness",
        category: InsightCategory::ControlEffectiveness,
        severity: Severity::Medium,
    },
    FindingKind {
        name: risks::RISK_UNDERSTATED,
        analysis_type: "risk_correlation",
        category: InsightCategory::Risk,
        severity: Severity::High,
    },
    FindingKind {
        name: compliance::NO_CONTROLS,
        analysis_type: "compliance_gap",
        category: InsightCategory::ComplianceGap,
        severity: Severity::High,
    },
    FindingKind {
        name: compliance::NO_EFFECTIVE_CONTROL,
        analysis_type: "compliance_gap",
        category: InsightCategory::ComplianceGap,
        severity: Severity::High,
    },
    FindingKind {
        name: compliance::UNTESTED,
        analysis_type: "compliance_gap",
        category: InsightCategory::ComplianceGap,
        severity: Severity::Medium,
    },
    FindingKind {
        name: predictive::LIKELY_FAILURE,
        analysis_type: "predictive",
        category: InsightCategory::Prediction,
        severity: Severity::Medium,
    },
    FindingKind {
        name: anomalies::INDICATOR_ANOMALY,
        analysis_type: "anomaly_detection",
        category: InsightCategory::Anomaly,
        severity: Severity::Medium,
    },
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static FindingKind> {
    KINDS.iter().find(|kind| kind.name == name)
}

/// The category of insights an analysis type produces.
pub fn category_of(analysis_type: &str) -> InsightCategory {
    KINDS.iter().find(|kind| kind.analysis_type == analysis_type).map_or(InsightCategory::Unspecified, |k| k.category)
}

/// The id of the insight a finding becomes: the same for the same finding on the same record
/// of the same instance in every run, so history can tell new from persisting and resolved.
pub fn insight_id(instance_id: &str, finding: &str, subject_sys_id: &str) -> String {
    let digest = sha256_hex(format!("{instance_id}\u{1f}{finding}\u{1f}{subject_sys_id}").as_bytes());
    let mut bytes = [0u8; 16];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digest[2 * index..2 * index + 2], 16).unwrap_or_default();
    }
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}

/// The ids of the insights a job's results produce, one per finding, in result order.
pub fn insight_ids(instance_id: &str, results: &[AnalysisResult]) -> Vec<String> {
    results
        .iter()
        .flat_map(|result| {
            let subject = result.subject.as_ref().map(|link| link.sys_id.as_str()).unwrap_or_default();
            result.findings.iter().map(move |finding| insight_id(instance_id, finding, subject))
        })
        .collect()
}

/// The lower-case severity name summaries count findings under.
pub fn severity_name(severity: Severity) -> String {
    severity.as_str_name().trim_start_matches("SEVERITY_").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insight_ids_are_stable_and_tell_instances_kinds_and_records_apart() {
        let id = insight_id("i", controls::CONTROL_INEFFECTIVE, "c1");
        assert_eq!(id, insight_id("i", controls::CONTROL_INEFFECTIVE, "c1"));
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        for other in [
            insight_id("j", controls::CONTROL_INEFFECTIVE, "c1"),
            insight_id("i", controls::STATUS_CONTRADICTS_SCORE, "c1"),
            insight_id("i", controls::CONTROL_INEFFECTIVE, "c2"),
        ] {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn every_kind_has_one_analysis_type_and_category() {
        for kind in KINDS {
            assert_eq!(category_of(kind.analysis_type), kind.category, "{}", kind.name);
        }
        assert_eq!(severity_name(Severity::High), "high");
    }
}
