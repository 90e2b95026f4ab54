//! From an analysis job's results to insights: what each finding says to a person, and what a
//! run changes (new, persisting, resolved). Pure functions; the store applies them.

use std::collections::{BTreeMap, BTreeSet};

use complianceiq_analysis::findings::{self, FindingKind};
use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;
use complianceiq_proto::complianceiq::common::v1::{Metric, Severity};
use complianceiq_proto::complianceiq::insights::v1::Insight;

/// The analysis types whose headline score (higher is better) makes up the posture score.
pub const POSTURE_TYPES: &[&str] = &["control_effectiveness", "risk_correlation", "compliance_gap"];

/// The request fields that restrict a job to some subjects; such a job resolves only insights
/// about the subjects it analysed.
const RESTRICTING_PARAMETERS: &[&str] = &["control_ids", "risk_ids", "policy_ids", "indicator_ids"];

/// The insights a job's results produce, one per finding, in result order. A finding of a kind
/// this version does not know is skipped (with a warning): it has no wording yet.
pub fn observe(job_id: &str, instance_id: &str, analysis_type: &str, results: &[AnalysisResult]) -> Vec<Insight> {
    let mut insights = Vec::new();
    for result in results {
        let Some(subject) = result.subject.as_ref() else { continue };
        for finding in &result.findings {
            let Some(kind) = findings::kind(finding) else {
                tracing::warn!(finding = %finding, analysis_job_id = %job_id, "a finding without wording is not kept");
                continue;
            };
            let wording = wording(kind, &subject.display, result);
            let mut record_ids = vec![subject.sys_id.clone()];
            record_ids.extend(result.sources.iter().map(|source| source.sys_id.clone()));
            let mut attributes = std::collections::HashMap::from([
                ("analysis_type".to_string(), analysis_type.to_string()),
                ("table".to_string(), subject.table.clone()),
                ("record".to_string(), subject.display.clone()),
            ]);
            if !subject.url.is_empty() {
                attributes.insert("url".into(), subject.url.clone());
            }
            insights.push(Insight {
                id: findings::insight_id(instance_id, finding, &subject.sys_id),
                instance_id: instance_id.to_string(),
                analysis_job_id: job_id.to_string(),
                category: kind.category as i32,
                severity: kind.severity as i32,
                title: wording.title,
                summary: wording.summary,
                score: score(result),
                metrics: result
                    .values
                    .iter()
                    .map(|(name, value)| Metric { name: name.clone(), value: *value, ..Default::default() })
                    .collect(),
                record_ids,
                recommendations: wording.recommendations,
                attributes,
                finding: finding.clone(),
                subject: Some(subject.clone()),
                sources: result.sources.clone(),
                ..Default::default()
            });
        }
    }
    insights.sort_by(|a, b| a.id.cmp(&b.id));
    insights.dedup_by(|a, b| a.id == b.id);
    insights
}

/// An insight's score, 0 to 100: the result's own (a control's effectiveness, a failure
/// probability); for a risk, how effective its controls are (100 × weighted effectiveness);
/// for a requirement, the share of its controls tested.
fn score(result: &AnalysisResult) -> f64 {
    if let Some(score) = result.score {
        return score;
    }
    let value = |name: &str| result.values.get(name).copied();
    let percent = match (value("weighted_effectiveness"), value("tested_controls"), value("controls")) {
        (Some(effectiveness), ..) => 100.0 * effectiveness,
        (None, Some(tested), Some(controls)) if controls > 0.0 => 100.0 * tested / controls,
        _ => 0.0,
    };
    (10.0 * percent).round() / 10.0
}

/// The subjects a job analysed, when it was restricted to some; `None` for the whole instance.
pub fn scope(parameters: &BTreeMap<String, String>, results: &[AnalysisResult]) -> Option<BTreeSet<String>> {
    RESTRICTING_PARAMETERS.iter().any(|name| parameters.contains_key(*name)).then(|| {
        results
            .iter()
            .filter(|result| result.rollup.is_empty())
            .filter_map(|result| result.subject.as_ref().map(|subject| subject.sys_id.clone()))
            .collect()
    })
}

/// What a run changes, by insight id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub new: Vec<String>,
    pub persisting: Vec<String>,
    pub resolved: Vec<String>,
}

/// Compares the open insights of the run's category (id → subject sys_id) with those the run
/// found. An open insight the run did not find is resolved when its subject was in the run's
/// scope (always, for a run over the whole instance).
pub fn changes(open: &BTreeMap<String, String>, found: &[Insight], scope: Option<&BTreeSet<String>>) -> Changes {
    let found_ids: BTreeSet<&str> = found.iter().map(|insight| insight.id.as_str()).collect();
    let mut changes = Changes::default();
    for insight in found {
        if open.contains_key(&insight.id) {
            changes.persisting.push(insight.id.clone());
        } else {
            changes.new.push(insight.id.clone());
        }
    }
    for (id, subject) in open {
        let in_scope = scope.is_none_or(|subjects| subjects.contains(subject));
        if in_scope && !found_ids.contains(id.as_str()) {
            changes.resolved.push(id.clone());
        }
    }
    changes
}

/// The posture score: the mean of the latest headline scores of the control effectiveness,
/// risk and compliance gap analyses that have run (0 when none has).
pub fn posture(latest_scores: &BTreeMap<String, f64>) -> f64 {
    let scores: Vec<f64> =
        POSTURE_TYPES.iter().filter_map(|analysis_type| latest_scores.get(*analysis_type).copied()).collect();
    if scores.is_empty() { 0.0 } else { (10.0 * scores.iter().sum::<f64>() / scores.len() as f64).round() / 10.0 }
}

struct Wording {
    title: String,
    summary: String,
    recommendations: Vec<String>,
}

/// A number as a person writes it: integers without decimals, others to one decimal.
fn number(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn wording(kind: &FindingKind, record: &str, result: &AnalysisResult) -> Wording {
    let value = |name: &str| number(result.values.get(name).copied().unwrap_or(0.0));
    let score = number(result.score.unwrap_or(0.0));
    let tested = format!("{} of {} indicator results passed in the analysis window", value("passed"), value("results"));
    let (title, summary, recommendations) = match kind.name {
        "CONTROL_INEFFECTIVE" => (
            format!("Control {record} is ineffective (score {score})"),
            format!(
                "{tested}, and {}: a score of {score}, below the 50 that rates a control at least partially \
                 effective.",
                match result.values.get("open_issues").copied().unwrap_or(0.0) {
                    0.0 => "it has no open issue".to_string(),
                    1.0 => format!("its open issue takes {} points off", value("penalty")),
                    _ => format!("its {} open issues take {} points off", value("open_issues"), value("penalty")),
                }
            ),
            vec![
                format!("Review the failed indicator results of {record} and remediate the control."),
                format!("Resolve the open issues raised against {record}."),
                format!("Test {record} again after remediation so the next analysis can confirm it."),
            ],
        ),
        "STATUS_CONTRADICTS_SCORE" => (
            format!("Control {record} is marked compliant but scores {score}"),
            format!("ServiceNow records {record} as compliant, yet {tested} and its score is {score}, below 50."),
            vec![
                format!("Reassess the compliance status of {record} in ServiceNow."),
                format!("Check that the indicators of {record} still test what the control requires."),
            ],
        ),
        "RISK_UNDERSTATED" => {
            let effectiveness =
                number((1000.0 * result.values.get("weighted_effectiveness").copied().unwrap_or(0.0)).round() / 10.0);
            (
                format!(
                    "Residual risk of {record} is understated: recorded {}, computed {}",
                    value("recorded_residual"),
                    value("computed_residual")
                ),
                format!(
                    "{record} has an inherent score of {}. Its {} active linked controls are {effectiveness}% \
                     effective (weighted mean), which leaves a residual of {}; ServiceNow records {}, less than \
                     80% of that.",
                    value("inherent_score"),
                    value("linked_controls"),
                    value("computed_residual"),
                    value("recorded_residual")
                ),
                vec![
                    format!("Reassess the residual risk of {record}."),
                    "Strengthen its weakest linked controls (the sources, highest weighting first).".to_string(),
                ],
            )
        }
        "NO_CONTROLS" => (
            format!("Requirement {record} has no active control"),
            format!("No active control implements the policy statement {record}, so nothing shows that it is met."),
            vec![format!("Map an existing control to {record} or create one, then test it.")],
        ),
        "UNTESTED" => (
            format!("Requirement {record} was not tested"),
            format!(
                "None of the {} active controls of the policy statement {record} has an indicator result in the \
                 analysis window.",
                value("controls")
            ),
            vec![format!("Schedule indicator tests for the controls of {record}.")],
        ),
        "NO_EFFECTIVE_CONTROL" => (
            format!("Requirement {record} has no effective control"),
            format!(
                "{} of the {} active controls of the policy statement {record} were tested in the analysis window \
                 and none scored 80 or more.",
                value("tested_controls"),
                value("controls")
            ),
            vec![format!("Remediate the controls of {record} until at least one is effective.")],
        ),
        "LIKELY_FAILURE" => (
            format!("Control {record} is likely to fail its next test ({score}%)"),
            match result.values.get("model_version") {
                Some(version) => format!(
                    "Version {} of the organization's control failure model gives {record} a probability of \
                     {score}% of failing its next test, from its {} indicator results and its open issues.{}",
                    number(*version),
                    value("history_results"),
                    strongest_contributions(result)
                ),
                None => format!(
                    "From its {} indicator results, recent ones weighing most (a 30-day half-life), {record} fails \
                     its next test with a probability of {score}%.",
                    value("history_results")
                ),
            },
            vec![
                format!("Test {record} early and review its recent failures."),
                format!("Check whether the owner of {record} can remediate before the next scheduled test."),
            ],
        ),
        "INDICATOR_ANOMALY" => {
            let anomalies = result.values.get("anomalies").copied().unwrap_or(0.0);
            let z = result.values.get("worst_z").copied().unwrap_or(0.0);
            let usual = if result.values.get("seasonal").copied().unwrap_or(0.0) > 0.0 {
                "the median of its earlier results on the same weekday"
            } else {
                "the median of its earlier results"
            };
            (
                if anomalies == 1.0 {
                    format!("Indicator {record} reported an unusual value")
                } else {
                    format!("Indicator {record} reported {} unusual values", number(anomalies))
                },
                format!(
                    "In the last {} days, {} of the {} results of {record} lay {} or more robust standard deviations \
                     from its usual values. The most extreme, {}, is {} robust standard deviations {} {}, {usual} (from {} earlier results).",
                    value("window_days"),
                    number(anomalies),
                    value("results"),
                    value("threshold"),
                    value("worst_value"),
                    number((10.0 * z.abs()).round() / 10.0),
                    if z > 0.0 { "above" } else { "below" },
                    value("worst_median"),
                    value("baseline_results")
                ),
                vec![
                    format!("Check how the unusual results of {record} were collected: a feed or entry error?"),
                    "If the values are real, review the control the indicator tests.".to_string(),
                ],
            )
        }
        other => (format!("{other} on {record}"), format!("The analysis found {other} on {record}."), Vec::new()),
    };
    Wording { title, summary, recommendations }
}

/// The model's features that raise a probability most, as a sentence ("" without any).
fn strongest_contributions(result: &AnalysisResult) -> String {
    let mut raising: Vec<(&str, f64)> = result
        .values
        .iter()
        .filter_map(|(name, value)| Some((name.strip_prefix(complianceiq_analysis::predictive::CONTRIBUTION)?, *value)))
        .filter(|(_, value)| *value > 0.0)
        .collect();
    raising.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let names: Vec<String> = raising.iter().take(3).map(|(name, _)| name.replace('_', " ")).collect();
    if names.is_empty() { String::new() } else { format!(" What raises it most: {}.", names.join(", ")) }
}

/// Severity names as history and summaries count them.
pub fn severity_key(severity: i64) -> String {
    findings::severity_name(Severity::try_from(severity as i32).unwrap_or(Severity::Unspecified))
}

#[cfg(test)]
mod tests {
    use complianceiq_proto::complianceiq::analysis::v1::RecordLink;

    use super::*;

    fn result(sys_id: &str, findings: &[&str]) -> AnalysisResult {
        AnalysisResult {
            subject: Some(RecordLink {
                table: "sn_compliance_control".into(),
                sys_id: sys_id.into(),
                display: format!("CTRL-{sys_id}"),
                url: String::new(),
            }),
            score: Some(30.0),
            values: [("results".to_string(), 10.0), ("passed".to_string(), 3.0)].into_iter().collect(),
            findings: findings.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_finding_becomes_one_worded_insight_with_its_stable_id() {
        let results = [
            result("a", &["CONTROL_INEFFECTIVE", "STATUS_CONTRADICTS_SCORE"]),
            result("b", &[]),
            result("c", &["NOT_A_KIND"]),
        ];
        let insights = observe("job", "inst", "control_effectiveness", &results);
        assert_eq!(insights.len(), 2);
        let ineffective = insights.iter().find(|i| i.finding == "CONTROL_INEFFECTIVE").unwrap();
        assert_eq!(ineffective.id, findings::insight_id("inst", "CONTROL_INEFFECTIVE", "a"));
        assert_eq!(ineffective.title, "Control CTRL-a is ineffective (score 30)");
        assert!(ineffective.summary.starts_with("3 of 10 indicator results passed"), "{}", ineffective.summary);
        assert_eq!(ineffective.severity(), Severity::High);
        assert_eq!(ineffective.record_ids, ["a"]);
    }

    #[test]
    fn a_run_tells_new_persisting_and_resolved_within_its_scope() {
        let found = observe(
            "j",
            "i",
            "control_effectiveness",
            &[result("a", &["CONTROL_INEFFECTIVE"]), result("b", &["CONTROL_INEFFECTIVE"])],
        );
        let id = |s: &str| findings::insight_id("i", "CONTROL_INEFFECTIVE", s);
        let open: BTreeMap<String, String> =
            [(id("a"), "a".to_string()), (id("c"), "c".to_string()), (id("d"), "d".to_string())].into();
        let whole = changes(&open, &found, None);
        assert_eq!(whole.persisting, [id("a")]);
        assert_eq!(whole.new, [id("b")]);
        let mut resolved = vec![id("c"), id("d")];
        resolved.sort();
        assert_eq!(whole.resolved, resolved);
        let only_c: BTreeSet<String> = ["a".to_string(), "b".to_string(), "c".to_string()].into();
        assert_eq!(changes(&open, &found, Some(&only_c)).resolved, [id("c")], "d was not analysed");
    }

    #[test]
    fn a_restricted_run_has_a_scope_and_posture_averages_what_has_run() {
        let parameters: BTreeMap<String, String> = [("control_ids".to_string(), "a".to_string())].into();
        assert_eq!(scope(&parameters, &[result("a", &[])]), Some(["a".to_string()].into()));
        assert_eq!(scope(&BTreeMap::new(), &[result("a", &[])]), None);
        let scores: BTreeMap<String, f64> = [
            ("control_effectiveness".to_string(), 70.0),
            ("compliance_gap".to_string(), 45.0),
            ("predictive".to_string(), 99.0),
        ]
        .into();
        assert_eq!(posture(&scores), 57.5);
        assert_eq!(posture(&BTreeMap::new()), 0.0);
    }
}
