//! The standard metric set, defined once for dashboards (and, as they come, widgets and
//! reports). Every number is read from what the analyses and the sync left in the analysis
//! store; none is computed twice in two ways.
//!
//! Per instance, at a point in time (its latest analysis of each type up to then):
//! - `posture_score` (0–100): the mean of the latest headline scores of the control
//!   effectiveness, risk correlation and compliance gap analyses that have run (the insights
//!   service's posture); 0 before any has run.
//! - `control_effectiveness_score`, `risk_mitigation_score`, `compliance_coverage`: each
//!   analysis type's headline score.
//! - `controls_effective`, `controls_partially_effective`, `controls_ineffective`,
//!   `controls_not_tested`: the control effectiveness distribution of the latest run.
//! - `understated_risks`: risks whose recorded residual score is below the one computed from
//!   their controls' effectiveness (latest risk correlation run).
//! - `high_risks`: risks whose computed residual score (latest risk correlation run) is above
//!   the organization's risk appetite (`settings.risk_appetite`, 0 to 100; default 50).
//! - `compliance_gaps`: requirements with no control, only untested controls, or no effective
//!   control (latest compliance gap run).
//! - `open_insights` and `open_insights_<severity>`: open findings.
//! - Coverage per framework (beside the metrics, `InstanceMetrics.framework_coverage`): per
//!   policy, requirements with at least one effective control ÷ active requirements, the
//!   policy rollups of the latest compliance gap run.
//! - `open_issues` and `open_issues_p<1..5>`: open GRC issues by ServiceNow priority, as last
//!   synced (no history: no previous value).
//! - `hours_since_sync`: hours since the instance's last completed sync.
//!
//! Across the organization: the posture and headline scores are the mean over the instances
//! that have that analysis; counts are sums; `hours_since_sync` is the stalest instance's.

use std::collections::BTreeMap;

use complianceiq_insights::InstancePosture;
use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;
use complianceiq_proto::complianceiq::common::v1::Metric;
use complianceiq_proto::complianceiq::dashboard::v1::FrameworkCoverage;

/// Headline scores, averaged across instances.
pub const SCORES: [&str; 4] =
    ["posture_score", "control_effectiveness_score", "risk_mitigation_score", "compliance_coverage"];

/// (metric, analysis type, summary metric) of the counts read from analysis summaries.
const SUMMARY_COUNTS: [(&str, &str, &[&str]); 8] = [
    ("controls_analyzed", "control_effectiveness", &["controls_analyzed"]),
    ("controls_effective", "control_effectiveness", &["effective"]),
    ("controls_partially_effective", "control_effectiveness", &["partially_effective"]),
    ("controls_ineffective", "control_effectiveness", &["ineffective"]),
    ("controls_not_tested", "control_effectiveness", &["not_tested"]),
    ("risks_analyzed", "risk_correlation", &["risks_analyzed"]),
    ("understated_risks", "risk_correlation", &["understated"]),
    ("compliance_gaps", "compliance_gap", &["no_controls", "untested", "no_effective_control"]),
];

/// An instance's metrics at one point: name → value (a score absent when its analysis never
/// ran).
pub type Values = BTreeMap<String, f64>;

/// The values of an instance's posture.
pub fn of_posture(posture: &InstancePosture) -> Values {
    let mut values: Values = posture
        .metrics
        .iter()
        .filter(|metric| metric.name != "posture_score" || posture.analysed_at.is_some())
        .map(|metric| (metric.name.clone(), metric.value))
        .collect();
    for (name, analysis_type, parts) in SUMMARY_COUNTS {
        if let Some(summary) = posture.summaries.get(analysis_type) {
            values.insert(name.into(), parts.iter().map(|part| summary.get(*part).copied().unwrap_or(0.0)).sum());
        }
    }
    values
}

/// Adds the count of risks above the appetite, from the latest risk correlation results,
/// once one has run.
pub fn add_high_risks(values: &mut Values, risk_results: &[AnalysisResult], appetite: i64) {
    if values.contains_key("risks_analyzed") {
        let high = risk_results
            .iter()
            .filter(|result| result.rollup.is_empty())
            .filter_map(|result| result.values.get("computed_residual"))
            .filter(|residual| **residual > appetite as f64)
            .count();
        values.insert("high_risks".into(), high as f64);
    }
}

/// Coverage of each policy (framework) from the latest compliance gap results: its rollups.
pub fn framework_coverage(compliance_results: &[AnalysisResult]) -> Vec<FrameworkCoverage> {
    compliance_results
        .iter()
        .filter(|result| result.rollup == "policy")
        .map(|result| {
            let subject = result.subject.clone().unwrap_or_default();
            let value = |name: &str| result.values.get(name).copied().unwrap_or(0.0) as i64;
            FrameworkCoverage {
                policy_sys_id: subject.sys_id,
                name: subject.display,
                requirement_count: value("requirements"),
                covered_requirement_count: value("covered"),
                coverage_percent: result.score.unwrap_or(0.0),
            }
        })
        .collect()
}

/// Adds an instance's open issues by priority.
pub fn add_open_issues(values: &mut Values, by_priority: &BTreeMap<i64, i64>) {
    values.insert("open_issues".into(), by_priority.values().sum::<i64>() as f64);
    for priority in 1..=5 {
        values.insert(format!("open_issues_p{priority}"), by_priority.get(&priority).copied().unwrap_or(0) as f64);
    }
}

/// The organization's values from its instances': scores averaged over the instances that
/// have them, `hours_since_sync` the largest, everything else summed.
pub fn combine<'a>(instances: impl IntoIterator<Item = &'a Values>) -> Values {
    let mut sums: Values = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for values in instances {
        for (name, value) in values {
            if name == "hours_since_sync" {
                let stalest = sums.entry(name.clone()).or_insert(0.0);
                *stalest = stalest.max(*value);
                continue;
            }
            *sums.entry(name.clone()).or_insert(0.0) += value;
            *counts.entry(name.clone()).or_insert(0.0) += 1.0;
        }
    }
    for name in SCORES {
        if let (Some(sum), Some(count)) = (sums.get_mut(name), counts.get(name)) {
            *sum = (10.0 * *sum / count).round() / 10.0;
        }
    }
    sums
}

/// A report item beside the metrics: the coverage of each policy, per instance.
pub const FRAMEWORK_COVERAGE: &str = "framework_coverage";

/// Whether `name` is a metric of the set, or [`FRAMEWORK_COVERAGE`] (what a report may ask for).
pub fn is_known(name: &str) -> bool {
    if name == FRAMEWORK_COVERAGE {
        return true;
    }
    const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];
    SCORES.contains(&name)
        || SUMMARY_COUNTS.iter().any(|(known, _, _)| *known == name)
        || ["open_insights", "open_issues", "hours_since_sync", "high_risks"].contains(&name)
        || name.strip_prefix("open_insights_").is_some_and(|severity| SEVERITIES.contains(&severity))
        || name.strip_prefix("open_issues_p").is_some_and(|priority| ["1", "2", "3", "4", "5"].contains(&priority))
}

/// The unit of a metric.
pub fn unit(name: &str) -> &'static str {
    match name {
        "compliance_coverage" => "percent",
        name if SCORES.contains(&name) => "score",
        "hours_since_sync" => "hours",
        name if name.starts_with("open_insights") => "insights",
        name if name.starts_with("open_issues") => "issues",
        name if name.starts_with("controls_") => "controls",
        "risks_analyzed" | "understated_risks" | "high_risks" => "risks",
        "compliance_gaps" => "requirements",
        _ => "",
    }
}

/// Metrics of `now`, each with its value at the period's start where that is known.
pub fn with_previous(now: &Values, then: &Values) -> Vec<Metric> {
    now.iter()
        .map(|(name, value)| Metric {
            name: name.clone(),
            value: *value,
            previous_value: then.get(name).copied(),
            unit: unit(name).into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posture(score: Option<f64>, effective: f64) -> InstancePosture {
        let mut posture = InstancePosture::default();
        posture.metrics.push(Metric {
            name: "posture_score".into(),
            value: score.unwrap_or(0.0),
            ..Default::default()
        });
        if let Some(score) = score {
            posture.analysed_at = Some(1);
            posture.metrics.push(Metric {
                name: "control_effectiveness_score".into(),
                value: score,
                ..Default::default()
            });
            let summary = [("effective".to_string(), effective), ("controls_analyzed".to_string(), 10.0)];
            posture.summaries.insert("control_effectiveness".into(), summary.into());
        }
        posture
    }

    #[test]
    fn scores_average_over_the_instances_that_have_them_and_counts_add_up() {
        let (a, b, never) = (
            of_posture(&posture(Some(80.0), 6.0)),
            of_posture(&posture(Some(61.0), 3.0)),
            of_posture(&posture(None, 0.0)),
        );
        assert!(!never.contains_key("posture_score"), "an instance never analysed has no posture to average");
        let mut stale = never.clone();
        stale.insert("hours_since_sync".into(), 30.0);
        let organization = combine([&a, &b, &stale]);
        assert_eq!(organization["posture_score"], 70.5);
        assert_eq!(organization["control_effectiveness_score"], 70.5);
        assert_eq!(organization["controls_effective"], 9.0);
        assert_eq!(organization["controls_analyzed"], 20.0);
        assert_eq!(organization["hours_since_sync"], 30.0);
        let metrics = with_previous(&organization, &combine([&a]));
        let posture = metrics.iter().find(|m| m.name == "posture_score").unwrap();
        assert_eq!((posture.value, posture.previous_value, posture.unit.as_str()), (70.5, Some(80.0), "score"));
    }

    #[test]
    fn high_risks_are_above_the_appetite_and_coverage_is_the_policy_rollups() {
        let risk = |residual: f64, rollup: &str| AnalysisResult {
            rollup: rollup.into(),
            values: [("computed_residual".to_string(), residual)].into(),
            ..Default::default()
        };
        let results = [risk(50.0, ""), risk(50.1, ""), risk(90.0, "entity"), risk(0.0, "")];
        let mut values = Values::new();
        add_high_risks(&mut values, &results, 50);
        assert!(values.is_empty(), "no risk analysis yet: no count");
        values.insert("risks_analyzed".into(), 3.0);
        add_high_risks(&mut values, &results, 50);
        assert_eq!(values["high_risks"], 1.0, "strictly above, rollups aside");
        add_high_risks(&mut values, &results, 0);
        assert_eq!(values["high_risks"], 2.0);
        let policy = AnalysisResult {
            rollup: "policy".into(),
            score: Some(66.7),
            values: [("requirements".to_string(), 3.0), ("covered".to_string(), 2.0)].into(),
            ..Default::default()
        };
        let coverage = framework_coverage(&[risk(1.0, ""), policy]);
        assert_eq!(coverage.len(), 1);
        assert_eq!((coverage[0].requirement_count, coverage[0].covered_requirement_count), (3, 2));
        assert_eq!(coverage[0].coverage_percent, 66.7);
    }

    #[test]
    fn open_issues_count_by_priority() {
        let mut values = Values::new();
        add_open_issues(&mut values, &[(1, 2), (3, 1), (0, 4)].into());
        assert_eq!((values["open_issues"], values["open_issues_p1"], values["open_issues_p2"]), (7.0, 2.0, 0.0));
    }
}
