//! The predictive baseline (docs/architecture.md, "Analyses"): each active control's
//! probability of failing its next test, from its whole indicator history up to `data_as_of`,
//! as a recency-weighted failure rate: p = Σ wᵢ·failedᵢ ÷ Σ wᵢ with wᵢ = 0.5^(ageᵢ ÷ 30 days).
//! It needs no model. With a trained control failure model (the one the job names, else the
//! organization's default: the ML service's ScoreControls), the probabilities are the model's,
//! each with its largest contributions (`contribution:<feature>` values); the backtest stays
//! the baseline's, and the model's own held-out scores join the summary.
//!
//! Backtest: the same estimate made at `data_as_of` − 30 days from the results before it,
//! scored against every result of the last 30 days by the Brier score (mean of (p − failed)²),
//! beside the Brier score of the base rate (the failure rate of all results before the cutoff).

use std::collections::HashMap;

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;
use sqlx::Row;

use crate::controls::{self, ControlData, Links, Snapshot};

pub const HALF_LIFE_DAYS: f64 = 30.0;
pub const HOLDOUT_DAYS: i64 = 30;
pub const LIKELY_FAILURE: &str = "LIKELY_FAILURE";
const DAY: f64 = 86_400.0;

/// Every indicator result of a control: (collection time in seconds, passed).
pub type History = HashMap<String, Vec<(i64, bool)>>;

/// Reads every result as of `snapshot` up to `until` (a ServiceNow time), per control (its
/// indicator's, as of the same point).
pub async fn load_history(tx: &mut TenantTx, snapshot: Snapshot<'_>, until: &str) -> Result<History, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT i.control_sys_id, r.collection_date, r.passed \
         FROM grc_indicator_result_versions r JOIN grc_indicator_versions i \
         ON i.organization_id = $1 AND i.instance_id = $2 AND i.sys_id = r.indicator_sys_id \
         AND i.valid_from <= $3 AND i.valid_to > $3 \
         WHERE r.organization_id = $1 AND r.instance_id = $2 AND r.valid_from <= $3 AND r.valid_to > $3 \
         AND i.control_sys_id IS NOT NULL AND r.collection_date <= $4",
    )
    .bind(tenant)
    .bind(snapshot.instance)
    .bind(snapshot.point)
    .bind(until)
    .fetch_all(tx.connection())
    .await?;
    let mut history = History::new();
    for row in &rows {
        let collected: Option<String> = row.try_get(1)?;
        let Some(collected) = collected.as_deref().and_then(complianceiq_servicenow::datetime::parse) else {
            continue;
        };
        let control: String = row.try_get(0)?;
        history.entry(control).or_default().push((collected, row.try_get::<i64, _>(2)? != 0));
    }
    Ok(history)
}

/// The recency-weighted failure rate of the results at or before `as_of`; None without any.
pub fn failure_probability(results: &[(i64, bool)], as_of: i64) -> Option<f64> {
    let (mut weights, mut failures) = (0.0, 0.0);
    for (collected, passed) in results.iter().filter(|(collected, _)| *collected <= as_of) {
        let age_days = (as_of - collected) as f64 / DAY;
        let weight = 0.5f64.powf(age_days / HALF_LIFE_DAYS);
        weights += weight;
        if !passed {
            failures += weight;
        }
    }
    (weights > 0.0).then(|| failures / weights)
}

/// How the baseline did on the held-out last 30 days.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Backtest {
    /// Results in the holdout scored (of controls with history before it).
    pub scored: usize,
    pub brier: f64,
    pub base_rate: f64,
    pub brier_base_rate: f64,
}

pub fn backtest(data: &ControlData, history: &History, as_of: i64) -> Backtest {
    let cutoff = as_of - HOLDOUT_DAYS * 86_400;
    let active: Vec<&str> = data.controls.iter().filter(|c| c.is_active()).map(|c| c.sys_id.as_str()).collect();
    let (mut before, mut failed_before) = (0usize, 0usize);
    for control in &active {
        for (collected, passed) in history.get(*control).map(Vec::as_slice).unwrap_or_default() {
            if *collected <= cutoff {
                before += 1;
                failed_before += usize::from(!passed);
            }
        }
    }
    let base_rate = if before == 0 { 0.0 } else { failed_before as f64 / before as f64 };
    let mut result = Backtest { base_rate, ..Default::default() };
    for control in &active {
        let results = history.get(*control).map(Vec::as_slice).unwrap_or_default();
        let Some(p) = failure_probability(results, cutoff) else { continue };
        for (_, passed) in results.iter().filter(|(collected, _)| *collected > cutoff && *collected <= as_of) {
            let failed = if *passed { 0.0 } else { 1.0 };
            result.scored += 1;
            result.brier += (p - failed) * (p - failed);
            result.brier_base_rate += (base_rate - failed) * (base_rate - failed);
        }
    }
    if result.scored > 0 {
        result.brier /= result.scored as f64;
        result.brier_base_rate /= result.scored as f64;
    }
    result
}

/// A result per active control with history: its failure probability (percent, to one
/// decimal, as the score), LIKELY_FAILURE from 50 %.
pub fn analyze(data: &ControlData, history: &History, as_of: i64, links: &Links<'_>) -> Vec<AnalysisResult> {
    let mut results = Vec::new();
    for control in data.controls.iter().filter(|c| c.is_active()) {
        let own = history.get(&control.sys_id).map(Vec::as_slice).unwrap_or_default();
        let Some(p) = failure_probability(own, as_of) else { continue };
        let display = if control.number.is_empty() { control.name.clone() } else { control.number.clone() };
        results.push(AnalysisResult {
            subject: Some(links.record("sn_compliance_control", &control.sys_id, &display)),
            score: Some(controls::one_decimal(100.0 * p)),
            values: [("probability".to_string(), p), ("history_results".to_string(), own.len() as f64)]
                .into_iter()
                .collect(),
            findings: if p >= 0.5 { vec![LIKELY_FAILURE.to_string()] } else { Vec::new() },
            ..Default::default()
        });
    }
    results
}

/// The prefix of a result's values that carry a model's contributions, by feature.
pub const CONTRIBUTION: &str = "contribution:";

/// A result per active control the model scored, as `analyze` makes them, from the model's
/// probabilities; `model_version` says which version of the model scored.
pub fn analyze_with_model(
    data: &ControlData,
    history: &History,
    model: &complianceiq_proto::complianceiq::ml::v1::Model,
    predictions: &[complianceiq_proto::complianceiq::ml::v1::Prediction],
    links: &Links<'_>,
) -> Vec<AnalysisResult> {
    let by_control: HashMap<&str, &complianceiq_proto::complianceiq::ml::v1::Prediction> =
        predictions.iter().map(|prediction| (prediction.record_id.as_str(), prediction)).collect();
    let mut results = Vec::new();
    for control in data.controls.iter().filter(|c| c.is_active()) {
        let Some(prediction) = by_control.get(control.sys_id.as_str()) else { continue };
        let p = prediction.value.clamp(0.0, 1.0);
        let own = history.get(&control.sys_id).map(Vec::len).unwrap_or_default();
        let display = if control.number.is_empty() { control.name.clone() } else { control.number.clone() };
        let mut values: HashMap<String, f64> = [
            ("probability".to_string(), p),
            ("history_results".to_string(), own as f64),
            ("model_version".to_string(), f64::from(model.version)),
        ]
        .into_iter()
        .collect();
        for (feature, contribution) in &prediction.feature_contributions {
            values.insert(format!("{CONTRIBUTION}{feature}"), *contribution);
        }
        results.push(AnalysisResult {
            subject: Some(links.record("sn_compliance_control", &control.sys_id, &display)),
            score: Some(controls::one_decimal(100.0 * p)),
            values,
            findings: if p >= 0.5 { vec![LIKELY_FAILURE.to_string()] } else { Vec::new() },
            ..Default::default()
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::Control;

    #[test]
    fn recent_results_weigh_more_and_the_backtest_scores_the_holdout() {
        let now = 1_000 * 86_400;
        // Failed 30 days ago (weight ½), passed today (weight 1): p = ½ ÷ 1½.
        let p = failure_probability(&[(now - 30 * 86_400, false), (now, true)], now).unwrap();
        assert!((p - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(failure_probability(&[(now + 1, false)], now), None, "the future is not history");
        let data = ControlData {
            controls: vec![Control { sys_id: "a".into(), state: "monitor".into(), ..Default::default() }],
            ..Default::default()
        };
        let history: History =
            [("a".to_string(), vec![(now - 40 * 86_400, false), (now - 35 * 86_400, true), (now - 5 * 86_400, false)])]
                .into();
        let test = backtest(&data, &history, now);
        // Before the cutoff: 1 failure of 2 (base rate ½); p at the cutoff weighs the later pass more.
        let p = failure_probability(&history["a"][..2], now - 30 * 86_400).unwrap();
        assert!(p < 0.5);
        assert_eq!(test.scored, 1);
        assert!((test.brier - (p - 1.0).powi(2)).abs() < 1e-12);
        assert!((test.brier_base_rate - 0.25).abs() < 1e-12);
    }
}
