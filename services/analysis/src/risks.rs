//! Risks against the controls that mitigate them (docs/architecture.md, "Analyses"):
//!
//! - a risk's controls are its links in `sn_risk_m2m_risk_control` to active controls;
//! - each control's effectiveness e = score ÷ 100, NOT_TESTED counting as 0, weighted by the
//!   control's `weighting` (unset: 1);
//! - computed_residual = inherent_score × (1 − weighted mean e); inherent_score when the risk
//!   has no active control; reported to one decimal, compared unrounded;
//! - RISK_UNDERSTATED when ServiceNow's residual_score < 0.8 × computed_residual;
//! - drivers: the linked controls by w × (1 − e), largest first;
//! - correlation of two risks = Σ over shared controls of w(1 − e) ÷ Σ over the union of their
//!   controls of w(1 − e) (0 when the union's sum is 0: no weakness shared); pairs at or above
//!   `min_correlation` are reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;

use crate::controls::{self, ControlData, Links};

pub const RISK_UNDERSTATED: &str = "RISK_UNDERSTATED";

/// How much of a control's weight is weakness: w × (1 − e).
struct Weakness {
    weight: f64,
    effectiveness: f64,
}

impl Weakness {
    fn value(&self) -> f64 {
        self.weight * (1.0 - self.effectiveness)
    }
}

/// Per risk and per correlated pair; `only` restricts the risks analysed.
pub fn analyze(data: &ControlData, only: &[String], min_correlation: f64, links: &Links<'_>) -> Vec<AnalysisResult> {
    let scores = controls::scores(data);
    let controls: HashMap<&str, &controls::Control> =
        data.controls.iter().filter(|c| c.is_active()).map(|c| (c.sys_id.as_str(), c)).collect();
    let mut linked: BTreeMap<&str, BTreeMap<&str, Weakness>> = BTreeMap::new();
    for (risk, control) in &data.risk_controls {
        let Some(found) = controls.get(control.as_str()) else { continue };
        let effectiveness = scores.get(control).copied().flatten().unwrap_or(0.0) / 100.0;
        let weight = found.weighting.unwrap_or(1) as f64;
        linked.entry(risk.as_str()).or_default().insert(control.as_str(), Weakness { weight, effectiveness });
    }
    let risks: Vec<&controls::Risk> =
        data.risks.iter().filter(|risk| only.is_empty() || only.contains(&risk.sys_id)).collect();
    let mut results = Vec::new();
    for risk in &risks {
        let mitigating = linked.get(risk.sys_id.as_str());
        let inherent = risk.inherent_score.unwrap_or(0.0);
        let (weight, weighted): (f64, f64) = mitigating
            .map(|all| all.values().fold((0.0, 0.0), |(w, we), c| (w + c.weight, we + c.weight * c.effectiveness)))
            .unwrap_or((0.0, 0.0));
        let mean_effectiveness = if weight > 0.0 { weighted / weight } else { 0.0 };
        let exact = inherent * (1.0 - mean_effectiveness);
        let computed = controls::one_decimal(exact);
        let mut values = BTreeMap::from([
            ("inherent_score".to_string(), inherent),
            ("computed_residual".to_string(), computed),
            ("weighted_effectiveness".to_string(), mean_effectiveness),
            ("linked_controls".to_string(), mitigating.map_or(0, BTreeMap::len) as f64),
        ]);
        let mut findings = Vec::new();
        if let Some(recorded) = risk.residual_score {
            values.insert("recorded_residual".into(), recorded);
            if recorded < 0.8 * exact {
                findings.push(RISK_UNDERSTATED.to_string());
            }
        }
        let mut drivers: Vec<(&str, f64)> =
            mitigating.map(|all| all.iter().map(|(id, c)| (*id, c.value())).collect()).unwrap_or_default();
        drivers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        results.push(AnalysisResult {
            subject: Some(links.record("sn_risk_risk", &risk.sys_id, &display(&risk.number, &risk.name))),
            values: values.into_iter().collect(),
            findings,
            sources: drivers
                .iter()
                .map(|(id, _)| {
                    let control = controls[id];
                    links.record("sn_compliance_control", id, &display(&control.number, &control.name))
                })
                .collect(),
            ..Default::default()
        });
    }
    for (a, b, correlation) in correlated_pairs(&risks, &linked, min_correlation) {
        results.push(AnalysisResult {
            subject: Some(links.record("sn_risk_risk", &a.sys_id, &display(&a.number, &a.name))),
            rollup: "correlation".into(),
            score: Some(controls::one_decimal(100.0 * correlation)),
            values: [("correlation".to_string(), correlation)].into_iter().collect(),
            sources: vec![links.record("sn_risk_risk", &b.sys_id, &display(&b.number, &b.name))],
            ..Default::default()
        });
    }
    results
}

fn display(number: &str, name: &str) -> String {
    if number.is_empty() { name.to_string() } else { number.to_string() }
}

/// Pairs (ordered by sys_id) of risks sharing weakness at or above `min_correlation`.
fn correlated_pairs<'a>(
    risks: &[&'a controls::Risk],
    linked: &BTreeMap<&str, BTreeMap<&str, Weakness>>,
    min_correlation: f64,
) -> Vec<(&'a controls::Risk, &'a controls::Risk, f64)> {
    let empty = BTreeMap::new();
    let mut pairs = Vec::new();
    for (index, a) in risks.iter().enumerate() {
        let of_a = linked.get(a.sys_id.as_str()).unwrap_or(&empty);
        if of_a.is_empty() {
            continue;
        }
        for b in &risks[index + 1..] {
            let of_b = linked.get(b.sys_id.as_str()).unwrap_or(&empty);
            let union: BTreeSet<&str> = of_a.keys().chain(of_b.keys()).copied().collect();
            let weakness = |id: &str| of_a.get(id).or_else(|| of_b.get(id)).map_or(0.0, Weakness::value);
            let shared: f64 = of_a.keys().filter(|id| of_b.contains_key(*id)).map(|id| weakness(id)).sum();
            let total: f64 = union.iter().map(|id| weakness(id)).sum();
            let correlation = if total > 0.0 { shared / total } else { 0.0 };
            if shared > 0.0 && correlation >= min_correlation {
                pairs.push((*a, *b, correlation));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::{Control, Risk};

    #[test]
    fn residuals_findings_drivers_and_correlation_follow_the_definitions() {
        let control = |id: &str, weighting: i64| Control {
            sys_id: id.into(),
            number: id.to_uppercase(),
            state: "monitor".into(),
            weighting: Some(weighting),
            ..Default::default()
        };
        let mut data = ControlData {
            controls: vec![
                control("c1", 2),
                control("c2", 1),
                control("c3", 5),
                Control { state: "retired".into(), ..control("c4", 9) },
            ],
            risks: vec![
                Risk {
                    sys_id: "r1".into(),
                    inherent_score: Some(20.0),
                    residual_score: Some(4.0),
                    ..Default::default()
                },
                Risk {
                    sys_id: "r2".into(),
                    inherent_score: Some(10.0),
                    residual_score: Some(10.0),
                    ..Default::default()
                },
                Risk { sys_id: "r3".into(), inherent_score: Some(12.0), residual_score: None, ..Default::default() },
            ],
            ..Default::default()
        };
        data.results.insert("c1".into(), (4, 4)); // e = 1
        data.results.insert("c2".into(), (4, 2)); // e = 0.5; c3 untested: e = 0
        data.risk_controls = [("r1", "c1"), ("r1", "c2"), ("r2", "c2"), ("r2", "c3"), ("r3", "c4")]
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .to_vec();
        let results = analyze(&data, &[], 0.3, &Links { instance_url: "" });
        let value = |index: usize, name: &str| results[index].values[name];
        // r1: weighted mean e = (2×1 + 1×0.5) / 3 = 0.8333; 20 × 0.1667 = 3.3; 4 ≥ 0.8 × 3.3.
        assert_eq!(value(0, "computed_residual"), 3.3);
        assert!(results[0].findings.is_empty());
        // r2: (1×0.5 + 5×0) / 6 = 0.0833; 10 × 0.9167 = 9.2; 10 is not understated.
        assert_eq!(value(1, "computed_residual"), 9.2);
        let drivers: Vec<&str> = results[1].sources.iter().map(|s| s.sys_id.as_str()).collect();
        assert_eq!(drivers, ["c3", "c2"], "5 × 1 before 1 × 0.5");
        // r3: only a retired control: nothing mitigates it.
        assert_eq!((value(2, "computed_residual"), value(2, "linked_controls")), (12.0, 0.0));
        // r1–r2 share c2: 0.5 ÷ (c1 0 + c2 0.5 + c3 5) = 0.0909 < 0.3; reported at 0.05.
        assert_eq!(results.len(), 3);
        let loose = analyze(&data, &[], 0.05, &Links { instance_url: "" });
        assert_eq!(loose.len(), 4);
        assert!((loose[3].values["correlation"] - 0.5 / 5.5).abs() < 1e-12);
        data.risks[1].residual_score = Some(7.0);
        let understated = analyze(&data, &["r2".into()], 0.3, &Links { instance_url: "" });
        assert_eq!(understated[0].findings, [RISK_UNDERSTATED], "7 < 0.8 × 9.2");
    }
}
