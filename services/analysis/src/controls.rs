//! Control effectiveness, exactly as documented (docs/architecture.md, "Analyses"):
//!
//! - the window is the indicator results whose `collection_date` lies in [start, end] (by
//!   default the 90 days up to the data's `data_as_of`);
//! - only active controls count: a control in state `draft` or `retired` is not analysed;
//! - pass_rate = passed results ÷ all results of the control's indicators in the window;
//! - penalty = 25 per open issue of priority 1 on the control, 15 per priority 2, 5 per
//!   priority 3 (an issue is open unless its state is closed: 3 or 4);
//! - score = max(0, 100 × pass_rate − penalty), rounded to one decimal;
//! - rating EFFECTIVE ≥ 80, PARTIALLY_EFFECTIVE ≥ 50, else INEFFECTIVE; no result in the
//!   window is NOT_TESTED, without a score;
//! - rollups per policy, requirement and entity: the mean score of their tested controls;
//! - findings: CONTROL_INEFFECTIVE, and STATUS_CONTRADICTS_SCORE where ServiceNow's status
//!   says compliant while the score is below 50.

use std::collections::{BTreeMap, HashMap};

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_proto::complianceiq::analysis::v1::{AnalysisResult, EffectivenessRating, RecordLink};
use sqlx::Row;

/// The records of one instance as they stood at a point of the store: each version view
/// (`grc_*_versions`) is read through `valid_from <= point AND valid_to > point`.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub instance: &'a str,
    /// Ingest time (microseconds) of the sync whose data is read; [`Snapshot::CURRENT`] for
    /// the current versions.
    pub point: i64,
}

impl Snapshot<'_> {
    /// The point that sees every current version (and no past one).
    pub const CURRENT: i64 = i64::MAX - 1;

    /// The rows of a version view: `sql` filters by `organization_id = $1` (the transaction's
    /// tenant), `instance_id = $2` and, for each view it reads, `valid_from <= $3 AND
    /// valid_to > $3`.
    async fn rows(&self, tx: &mut TenantTx, sql: &str) -> Result<Vec<sqlx::any::AnyRow>, ApiError> {
        debug_assert!(sql.contains("valid_to > $3"), "a read of the store at a point: {sql}");
        let tenant = tx.tenant().to_string();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(tenant)
            .bind(self.instance)
            .bind(self.point)
            .fetch_all(tx.connection())
            .await?;
        Ok(rows)
    }
}

/// A control as the analysis reads it.
#[derive(Clone, Debug, Default)]
pub struct Control {
    pub sys_id: String,
    pub number: String,
    pub name: String,
    pub state: String,
    pub status: String,
    pub requirement: Option<String>,
    pub entity: Option<String>,
    /// ServiceNow's weight of the control in a risk (1–10); unset counts as 1.
    pub weighting: Option<i64>,
    pub key_control: bool,
    /// How often it is tested (`monthly`, `quarterly` ...).
    pub frequency: String,
}

impl Control {
    /// A draft or retired control mitigates and proves nothing.
    pub fn is_active(&self) -> bool {
        !matches!(self.state.as_str(), "draft" | "retired")
    }
}

/// An open issue on a control.
#[derive(Clone, Debug)]
pub struct OpenIssue {
    pub sys_id: String,
    pub number: String,
    pub control: String,
    pub priority: i64,
}

/// A risk as the analyses read it.
#[derive(Clone, Debug, Default)]
pub struct Risk {
    pub sys_id: String,
    pub number: String,
    pub name: String,
    /// None when ServiceNow's value is not a number.
    pub inherent_score: Option<f64>,
    pub residual_score: Option<f64>,
}

/// A requirement (policy statement).
#[derive(Clone, Debug, Default)]
pub struct Requirement {
    pub name: String,
    pub reference: String,
    /// What it requires, in ServiceNow's words (read by the regulatory text scan).
    pub description: String,
    pub policy: Option<String>,
    pub active: bool,
}

/// Everything the analyses read, for one instance.
#[derive(Debug, Default)]
pub struct ControlData {
    pub controls: Vec<Control>,
    /// Control sys_id → (results in the window, passed among them).
    pub results: HashMap<String, (i64, i64)>,
    pub open_issues: Vec<OpenIssue>,
    pub requirements: HashMap<String, Requirement>,
    pub risks: Vec<Risk>,
    /// (risk sys_id, control sys_id) from `sn_risk_m2m_risk_control`.
    pub risk_controls: Vec<(String, String)>,
    /// Policy sys_id → name.
    pub policies: HashMap<String, String>,
    /// Entity sys_id → name.
    pub entities: HashMap<String, String>,
}

impl ControlData {
    /// Reads an instance's data as of `snapshot`, indicator results within [`start`, `end`]
    /// (ServiceNow times); risks and their control links only `with_risks`. With a `second`
    /// transaction of the same tenant, the results' aggregate (the one long read) runs on it
    /// while the rest is read on `tx`: both see the same versions, those valid at the
    /// snapshot's point, whatever committed between the two transactions' starts.
    pub async fn load(
        tx: &mut TenantTx,
        second: Option<&mut TenantTx>,
        snapshot: Snapshot<'_>,
        window: (&str, &str),
        with_risks: bool,
    ) -> Result<Self, ApiError> {
        let (results, mut data) = match second {
            Some(second) if snapshot.point != Snapshot::CURRENT => futures::try_join!(
                Self::results_in_window(second, snapshot, window),
                Self::load_records(tx, snapshot, with_risks)
            )?,
            _ => (
                Self::results_in_window(tx, snapshot, window).await?,
                Self::load_records(tx, snapshot, with_risks).await?,
            ),
        };
        data.results = results;
        Ok(data)
    }

    /// Passed and total results per control in the window. One aggregate: the results
    /// themselves never leave the database. A result's control is its indicator's, as of the
    /// same point.
    async fn results_in_window(
        tx: &mut TenantTx,
        snapshot: Snapshot<'_>,
        (start, end): (&str, &str),
    ) -> Result<HashMap<String, (i64, i64)>, ApiError> {
        let rows = sqlx::query(
            "SELECT i.control_sys_id, CAST(COUNT(*) AS BIGINT), CAST(SUM(r.passed) AS BIGINT) \
             FROM grc_indicator_result_versions r JOIN grc_indicator_versions i \
             ON i.organization_id = $1 AND i.instance_id = $2 AND i.sys_id = r.indicator_sys_id \
             AND i.valid_from <= $3 AND i.valid_to > $3 \
             WHERE r.organization_id = $1 AND r.instance_id = $2 AND r.valid_from <= $3 AND r.valid_to > $3 \
             AND i.control_sys_id IS NOT NULL AND r.collection_date >= $4 AND r.collection_date <= $5 \
             GROUP BY i.control_sys_id",
        )
        .bind(tx.tenant().to_string())
        .bind(snapshot.instance)
        .bind(snapshot.point)
        .bind(start)
        .bind(end)
        .fetch_all(tx.connection())
        .await?;
        let mut results = HashMap::with_capacity(rows.len());
        for row in &rows {
            let control = row.try_get::<Option<String>, _>(0)?.unwrap_or_default();
            results.insert(control, (row.try_get(1)?, row.try_get::<Option<i64>, _>(2)?.unwrap_or(0)));
        }
        Ok(results)
    }

    /// Everything but the results.
    async fn load_records(tx: &mut TenantTx, snapshot: Snapshot<'_>, with_risks: bool) -> Result<Self, ApiError> {
        let text = |row: &sqlx::any::AnyRow, index: usize| -> Result<String, sqlx::Error> {
            Ok(row.try_get::<Option<String>, _>(index)?.unwrap_or_default())
        };
        let optional = |row: &sqlx::any::AnyRow, index: usize| -> Result<Option<String>, sqlx::Error> {
            row.try_get::<Option<String>, _>(index)
        };
        let mut data = ControlData::default();
        let controls = "SELECT sys_id, number, name, state, status, requirement_sys_id, entity_sys_id, weighting, \
                        key_control, frequency FROM grc_control_versions WHERE organization_id = $1 AND instance_id = $2 \
                        AND valid_from <= $3 AND valid_to > $3 ORDER BY sys_id";
        let rows = snapshot.rows(tx, controls).await?;
        for row in &rows {
            data.controls.push(Control {
                sys_id: text(row, 0)?,
                number: text(row, 1)?,
                name: text(row, 2)?,
                state: text(row, 3)?,
                status: text(row, 4)?,
                requirement: optional(row, 5)?,
                entity: optional(row, 6)?,
                weighting: row.try_get(7)?,
                key_control: row.try_get::<Option<i64>, _>(8)?.unwrap_or(0) != 0,
                frequency: text(row, 9)?,
            });
        }
        let rows = snapshot
            .rows(
                tx,
                "SELECT sys_id, number, control_sys_id, priority FROM grc_issue_versions \
                 WHERE organization_id = $1 AND instance_id = $2 AND valid_from <= $3 AND valid_to > $3 \
                 AND is_open = 1 AND control_sys_id IS NOT NULL ORDER BY sys_id",
            )
            .await?;
        for row in &rows {
            data.open_issues.push(OpenIssue {
                sys_id: text(row, 0)?,
                number: text(row, 1)?,
                control: text(row, 2)?,
                priority: row.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
            });
        }
        let rows = snapshot
            .rows(
                tx,
                "SELECT sys_id, name, reference, policy_sys_id, active, description FROM grc_requirement_versions \
                 WHERE organization_id = $1 AND instance_id = $2 AND valid_from <= $3 AND valid_to > $3",
            )
            .await?;
        for row in &rows {
            let requirement = Requirement {
                name: text(row, 1)?,
                reference: text(row, 2)?,
                policy: optional(row, 3)?,
                active: row.try_get::<i64, _>(4)? != 0,
                description: text(row, 5)?,
            };
            data.requirements.insert(text(row, 0)?, requirement);
        }
        if with_risks {
            let rows = snapshot
                .rows(
                    tx,
                    "SELECT sys_id, number, name, inherent_score, residual_score FROM grc_risk_versions \
                     WHERE organization_id = $1 AND instance_id = $2 AND valid_from <= $3 AND valid_to > $3 \
                     ORDER BY sys_id",
                )
                .await?;
            for row in &rows {
                data.risks.push(Risk {
                    sys_id: text(row, 0)?,
                    number: text(row, 1)?,
                    name: text(row, 2)?,
                    inherent_score: row.try_get(3)?,
                    residual_score: row.try_get(4)?,
                });
            }
            let links = "SELECT risk_sys_id, control_sys_id FROM grc_risk_control_versions \
                         WHERE organization_id = $1 AND instance_id = $2 AND valid_from <= $3 AND valid_to > $3 \
                         AND risk_sys_id IS NOT NULL AND control_sys_id IS NOT NULL \
                         ORDER BY risk_sys_id, control_sys_id";
            let rows = snapshot.rows(tx, links).await?;
            for row in &rows {
                data.risk_controls.push((text(row, 0)?, text(row, 1)?));
            }
        }
        for (view, into) in [("grc_policy_versions", &mut data.policies), ("grc_entity_versions", &mut data.entities)] {
            let statement = format!(
                "SELECT sys_id, name FROM {view} WHERE organization_id = $1 AND instance_id = $2 \
                 AND valid_from <= $3 AND valid_to > $3"
            );
            let rows = snapshot.rows(tx, &statement).await?;
            for row in &rows {
                into.insert(text(row, 0)?, text(row, 1)?);
            }
        }
        Ok(data)
    }

    /// Records read: active controls, results in the window and open issues.
    pub fn records_analyzed(&self) -> i64 {
        self.controls.iter().filter(|control| control.is_active()).count() as i64
            + self.results.values().map(|(results, _)| results).sum::<i64>()
            + self.open_issues.len() as i64
    }
}

/// The penalty of one open issue, by priority.
pub fn issue_penalty(priority: i64) -> f64 {
    match priority {
        1 => 25.0,
        2 => 15.0,
        3 => 5.0,
        _ => 0.0,
    }
}

/// Rounds to one decimal.
pub fn one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The rating of a score.
pub fn rating(score: Option<f64>) -> EffectivenessRating {
    match score {
        None => EffectivenessRating::NotTested,
        Some(score) if score >= 80.0 => EffectivenessRating::Effective,
        Some(score) if score >= 50.0 => EffectivenessRating::PartiallyEffective,
        Some(_) => EffectivenessRating::Ineffective,
    }
}

pub const CONTROL_INEFFECTIVE: &str = "CONTROL_INEFFECTIVE";
pub const STATUS_CONTRADICTS_SCORE: &str = "STATUS_CONTRADICTS_SCORE";

/// Builds links to an instance's records.
pub struct Links<'a> {
    pub instance_url: &'a str,
}

impl Links<'_> {
    pub fn record(&self, table: &str, sys_id: &str, display: &str) -> RecordLink {
        let url = if self.instance_url.is_empty() {
            String::new()
        } else {
            format!("{}/nav_to.do?uri={table}.do?sys_id={sys_id}", self.instance_url.trim_end_matches('/'))
        };
        RecordLink { table: table.into(), sys_id: sys_id.into(), display: display.into(), url }
    }
}

/// Each active control's score (None: NOT_TESTED), by the definitions above.
pub fn scores(data: &ControlData) -> HashMap<String, Option<f64>> {
    analyze(data, &[], &Links { instance_url: "" })
        .into_iter()
        .filter(|result| result.rollup.is_empty())
        .filter_map(|result| Some((result.subject?.sys_id, result.score)))
        .collect()
}

/// The analysis of `data`, restricted to `only` controls when given: one result per active
/// control (ordered by sys_id), then the rollups (policy, requirement, entity).
pub fn analyze(data: &ControlData, only: &[String], links: &Links<'_>) -> Vec<AnalysisResult> {
    let mut issues_by_control: HashMap<&str, Vec<&OpenIssue>> = HashMap::new();
    for issue in &data.open_issues {
        issues_by_control.entry(issue.control.as_str()).or_default().push(issue);
    }
    let mut results = Vec::new();
    // Rollup key (kind, sys_id) → scores of its tested controls.
    let mut rollups: BTreeMap<(&'static str, String), Vec<f64>> = BTreeMap::new();
    for control in data.controls.iter().filter(|c| c.is_active()) {
        if !only.is_empty() && !only.contains(&control.sys_id) {
            continue;
        }
        let issues = issues_by_control.get(control.sys_id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let penalty: f64 = issues.iter().map(|issue| issue_penalty(issue.priority)).sum();
        let (tested, passed) = data.results.get(&control.sys_id).copied().unwrap_or((0, 0));
        let mut values = BTreeMap::from([
            ("results".to_string(), tested as f64),
            ("passed".to_string(), passed as f64),
            ("penalty".to_string(), penalty),
            ("open_issues".to_string(), issues.len() as f64),
        ]);
        let score = (tested > 0).then(|| {
            let pass_rate = passed as f64 / tested as f64;
            values.insert("pass_rate".into(), pass_rate);
            one_decimal((100.0 * pass_rate - penalty).max(0.0))
        });
        let rating = rating(score);
        let mut findings = Vec::new();
        if rating == EffectivenessRating::Ineffective {
            findings.push(CONTROL_INEFFECTIVE.to_string());
        }
        if control.status == "compliant" && score.is_some_and(|score| score < 50.0) {
            findings.push(STATUS_CONTRADICTS_SCORE.to_string());
        }
        if let Some(score) = score {
            let policy =
                control.requirement.as_ref().and_then(|r| data.requirements.get(r)).and_then(|r| r.policy.clone());
            for (kind, key) in
                [("policy", policy), ("requirement", control.requirement.clone()), ("entity", control.entity.clone())]
            {
                if let Some(key) = key {
                    rollups.entry((kind, key)).or_default().push(score);
                }
            }
        }
        let display = if control.number.is_empty() { control.name.clone() } else { control.number.clone() };
        results.push(AnalysisResult {
            subject: Some(links.record("sn_compliance_control", &control.sys_id, &display)),
            rollup: String::new(),
            score,
            rating: rating as i32,
            values: values.into_iter().collect(),
            findings,
            sources: issues.iter().map(|issue| links.record("sn_grc_issue", &issue.sys_id, &issue.number)).collect(),
        });
    }
    for ((kind, sys_id), scores) in rollups {
        let (table, name) = match kind {
            "policy" => ("sn_compliance_policy", data.policies.get(&sys_id).cloned()),
            "requirement" => ("sn_compliance_policy_statement", data.requirements.get(&sys_id).map(|r| r.name.clone())),
            _ => ("sn_grc_profile", data.entities.get(&sys_id).cloned()),
        };
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        results.push(AnalysisResult {
            subject: Some(links.record(table, &sys_id, &name.unwrap_or_default())),
            rollup: kind.into(),
            score: Some(one_decimal(mean)),
            values: [("tested_controls".to_string(), scores.len() as f64)].into_iter().collect(),
            ..Default::default()
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(sys_id: &str, state: &str, status: &str) -> Control {
        Control {
            sys_id: sys_id.into(),
            number: sys_id.to_uppercase(),
            state: state.into(),
            status: status.into(),
            requirement: Some("req".into()),
            entity: Some("ent".into()),
            ..Default::default()
        }
    }

    #[test]
    fn scores_penalties_ratings_and_rollups_follow_the_definitions() {
        let mut data = ControlData {
            controls: vec![
                control("a", "monitor", "compliant"),
                control("b", "monitor", "compliant"),
                control("c", "draft", "compliant"),
                control("d", "attest", "non_compliant"),
            ],
            ..Default::default()
        };
        data.results.insert("a".into(), (3, 3));
        data.results.insert("b".into(), (3, 2));
        data.results.insert("c".into(), (3, 0));
        data.open_issues = vec![
            OpenIssue { sys_id: "i1".into(), number: "ISS1".into(), control: "b".into(), priority: 1 },
            OpenIssue { sys_id: "i2".into(), number: "ISS2".into(), control: "b".into(), priority: 3 },
            OpenIssue { sys_id: "i3".into(), number: "ISS3".into(), control: "a".into(), priority: 4 },
        ];
        data.requirements.insert(
            "req".into(),
            Requirement { name: "Requirement".into(), policy: Some("pol".into()), active: true, ..Default::default() },
        );
        let results = analyze(&data, &[], &Links { instance_url: "https://x.service-now.com" });
        let by_subject: BTreeMap<(String, String), &AnalysisResult> =
            results.iter().map(|r| ((r.rollup.clone(), r.subject.as_ref().unwrap().sys_id.clone()), r)).collect();
        let a = by_subject[&(String::new(), "a".into())];
        assert_eq!((a.score, a.rating()), (Some(100.0), EffectivenessRating::Effective), "priority 4 costs nothing");
        let b = by_subject[&(String::new(), "b".into())];
        // 100 × 2/3 − 25 − 5 = 36.666… → 36.7
        assert_eq!((b.score, b.rating()), (Some(36.7), EffectivenessRating::Ineffective));
        assert_eq!(b.findings, [CONTROL_INEFFECTIVE, STATUS_CONTRADICTS_SCORE]);
        assert_eq!(b.sources.len(), 2);
        assert!(b.sources[0].url.ends_with("sn_grc_issue.do?sys_id=i1"), "{:?}", b.sources[0]);
        assert!(!by_subject.contains_key(&(String::new(), "c".into())), "a draft control is not analysed");
        let d = by_subject[&(String::new(), "d".into())];
        assert_eq!((d.score, d.rating()), (None, EffectivenessRating::NotTested));
        assert!(d.findings.is_empty());
        for kind in ["policy", "requirement", "entity"] {
            let key = match kind {
                "policy" => "pol",
                "requirement" => "req",
                _ => "ent",
            };
            assert_eq!(by_subject[&(kind.to_string(), key.to_string())].score, Some(68.4), "mean of 100 and 36.7");
        }
        assert_eq!(analyze(&data, &["a".into()], &Links { instance_url: "" }).len(), 4, "a, and its 3 rollups");
    }

    #[test]
    fn a_score_never_goes_below_zero_and_bands_are_inclusive() {
        assert_eq!(rating(Some(80.0)), EffectivenessRating::Effective);
        assert_eq!(rating(Some(79.9)), EffectivenessRating::PartiallyEffective);
        assert_eq!(rating(Some(50.0)), EffectivenessRating::PartiallyEffective);
        assert_eq!(rating(Some(49.9)), EffectivenessRating::Ineffective);
        let mut data = ControlData { controls: vec![control("a", "monitor", "")], ..Default::default() };
        data.results.insert("a".into(), (1, 0));
        data.open_issues = vec![OpenIssue { sys_id: "i".into(), number: "I".into(), control: "a".into(), priority: 1 }];
        assert_eq!(analyze(&data, &[], &Links { instance_url: "" })[0].score, Some(0.0));
    }
}
