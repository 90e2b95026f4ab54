//! Compliance gaps per policy (framework) (docs/architecture.md, "Analyses"): for each active
//! requirement (policy statement) of the policy, its active controls (whose `content` it is):
//!
//! - NO_CONTROLS: none;
//! - UNTESTED: controls, none tested in the window;
//! - NO_EFFECTIVE_CONTROL: tested, none EFFECTIVE.
//!
//! Coverage of a policy = active requirements with at least one EFFECTIVE control ÷ its active
//! requirements, in percent to one decimal.

use std::collections::{BTreeMap, HashMap};

use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;

use crate::controls::{self, ControlData, Links};

pub const NO_CONTROLS: &str = "NO_CONTROLS";
pub const UNTESTED: &str = "UNTESTED";
pub const NO_EFFECTIVE_CONTROL: &str = "NO_EFFECTIVE_CONTROL";

/// A result per active requirement of the policies analysed (`only`, else all), then one per
/// policy with its coverage. Requirements without a policy are grouped under none.
pub fn analyze(data: &ControlData, only: &[String], links: &Links<'_>) -> Vec<AnalysisResult> {
    let scores = controls::scores(data);
    let mut by_requirement: HashMap<&str, Vec<Option<f64>>> = HashMap::new();
    for control in data.controls.iter().filter(|c| c.is_active()) {
        if let Some(requirement) = &control.requirement {
            by_requirement.entry(requirement).or_default().push(scores.get(&control.sys_id).copied().flatten());
        }
    }
    let mut requirements: Vec<(&String, &controls::Requirement)> = data
        .requirements
        .iter()
        .filter(|(_, r)| r.active)
        .filter(|(_, r)| only.is_empty() || r.policy.as_ref().is_some_and(|p| only.contains(p)))
        .collect();
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    let mut results = Vec::new();
    // Policy → (active requirements, covered ones).
    let mut coverage: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for (sys_id, requirement) in requirements {
        let controls = by_requirement.get(sys_id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let tested = controls.iter().flatten().count();
        let effective = controls.iter().flatten().filter(|score| **score >= 80.0).count();
        let gap = if controls.is_empty() {
            Some(NO_CONTROLS)
        } else if tested == 0 {
            Some(UNTESTED)
        } else if effective == 0 {
            Some(NO_EFFECTIVE_CONTROL)
        } else {
            None
        };
        let entry = coverage.entry(requirement.policy.as_deref().unwrap_or("")).or_default();
        entry.0 += 1;
        entry.1 += u32::from(effective > 0);
        let display = if requirement.reference.is_empty() { &requirement.name } else { &requirement.reference };
        results.push(AnalysisResult {
            subject: Some(links.record("sn_compliance_policy_statement", sys_id, display)),
            values: [
                ("controls".to_string(), controls.len() as f64),
                ("tested_controls".to_string(), tested as f64),
                ("effective_controls".to_string(), effective as f64),
            ]
            .into_iter()
            .collect(),
            findings: gap.into_iter().map(str::to_string).collect(),
            ..Default::default()
        });
    }
    for (policy, (active, covered)) in coverage {
        let name = data.policies.get(policy).cloned().unwrap_or_default();
        results.push(AnalysisResult {
            subject: Some(links.record("sn_compliance_policy", policy, &name)),
            rollup: "policy".into(),
            score: Some(coverage_percent(active, covered)),
            values: [("requirements".to_string(), f64::from(active)), ("covered".to_string(), f64::from(covered))]
                .into_iter()
                .collect(),
            ..Default::default()
        });
    }
    results
}

/// Covered ÷ active, in percent to one decimal.
pub fn coverage_percent(active: u32, covered: u32) -> f64 {
    if active == 0 { 0.0 } else { controls::one_decimal(100.0 * f64::from(covered) / f64::from(active)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::{Control, Requirement};

    #[test]
    fn each_gap_kind_and_coverage_follow_the_definitions() {
        let control = |id: &str, requirement: &str| Control {
            sys_id: id.into(),
            state: "monitor".into(),
            requirement: Some(requirement.into()),
            ..Default::default()
        };
        let requirement =
            |active| Requirement { name: "R".into(), policy: Some("p".into()), active, ..Default::default() };
        let mut data = ControlData {
            controls: vec![control("c1", "covered"), control("c2", "untested"), control("c3", "weak")],
            ..Default::default()
        };
        for (id, active) in [("covered", true), ("untested", true), ("weak", true), ("bare", true), ("old", false)] {
            data.requirements.insert(id.into(), requirement(active));
        }
        data.results.insert("c1".into(), (2, 2));
        data.results.insert("c3".into(), (2, 1));
        let results = analyze(&data, &[], &Links { instance_url: "" });
        let findings: Vec<(String, Vec<String>)> =
            results.iter().map(|r| (r.subject.clone().unwrap().sys_id, r.findings.clone())).collect();
        assert_eq!(
            findings,
            [
                ("bare", vec![NO_CONTROLS]),
                ("covered", vec![]),
                ("untested", vec![UNTESTED]),
                ("weak", vec![NO_EFFECTIVE_CONTROL]),
                ("p", vec![]),
            ]
            .map(|(id, f)| (id.to_string(), f.into_iter().map(str::to_string).collect::<Vec<_>>()))
        );
        assert_eq!(results[4].score, Some(25.0), "one of four active requirements covered");
        assert!(analyze(&data, &["q".into()], &Links { instance_url: "" }).is_empty());
    }
}
