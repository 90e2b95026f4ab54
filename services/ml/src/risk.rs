//! The risk model: a risk's residual score as the organization's assessors record it, from how
//! its controls work now and have worked over the year.
//!
//! An example is one risk with an inherent and a recorded residual score. Its features come
//! from its linked active controls' indicator results and issues up to the data's `data_as_of`
//! (docs/architecture.md, "ML"); the target is ServiceNow's `residual_score`.
//! A risk carries no history of its past assessments, so the split cannot be by time: it is by
//! a hash of the risk's sys_id (70 % fitting, 15 % validation, 15 % test), the same in every
//! training and evaluation, so a risk that trained a model is never the one scoring it.
//! Ridge regression on standardised features, its penalty chosen by validation MAE, refitted on
//! fitting and validation, scored once on the test risks beside two references: the mean
//! residual and the rule of the risk analysis (inherent × (1 − weighted pass rate)).
//! A prediction's explanation is each feature's weight × standardised value: in residual-score
//! points from the fitting data's mean, they add up with it to the prediction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};

use crate::failure::{ControlFacts, Fitted, Progress, standardise};

const DAY: i64 = 86_400;
/// Penalties tried on the validation risks.
const PENALTIES: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];
/// Fewest fitting risks a model is trained on, and fewest validation and test risks.
pub const MIN_FITTING: usize = 30;
pub const MIN_HELD_OUT: usize = 5;
/// The band of a prediction: these quantiles of the validation risks' errors.
const INTERVAL: (f64, f64) = (0.05, 0.95);

/// The features, in the order the model reads them. Weighted means are over the risk's linked
/// active controls by their weighting (unset: 1); a control without results in the window
/// counts as not working (pass rate 0), as in the risk analysis.
pub const FEATURES: [&str; 11] = [
    "inherent_score",
    "linked_controls",
    "no_linked_controls",
    "weighted_pass_rate_90d",
    "rule_residual",
    "inherent_x_failure_rate_90d",
    "inherent_x_untested_share_90d",
    "inherent_x_key_control_share",
    "weighted_failure_rate_365d",
    "worst_failure_rate_90d",
    "open_issues_on_controls",
];

/// What the model knows of a risk: its scores and its linked controls (indices into the
/// instance's controls).
#[derive(Clone, Debug, Default)]
pub struct RiskFacts {
    pub sys_id: String,
    pub inherent: f64,
    /// ServiceNow's residual score; None when it is not a number.
    pub recorded: Option<f64>,
    pub controls: Vec<usize>,
}

/// A linked control's results in the `days` before `at`: (tested, failure rate among them).
fn failure_rate(control: &ControlFacts, at: i64, days: i64) -> (bool, f64) {
    let since = at - days * DAY;
    let window = control.results.iter().filter(|(collected, _)| *collected >= since && *collected < at);
    let (count, failed) =
        window.fold((0usize, 0usize), |(count, failed), (_, passed)| (count + 1, failed + usize::from(!passed)));
    (count > 0, if count == 0 { 0.0 } else { failed as f64 / count as f64 })
}

impl RiskFacts {
    /// The features at time `at`, from what was collected strictly before it.
    pub fn features_at(&self, controls: &[ControlFacts], at: i64) -> Vec<f64> {
        let linked: Vec<&ControlFacts> = self.controls.iter().filter_map(|index| controls.get(*index)).collect();
        let inherent = self.inherent;
        if linked.is_empty() {
            return vec![inherent, 0.0, 1.0, 0.0, inherent, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        }
        let (mut weights, mut pass, mut failure, mut untested, mut key, mut failure_year) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let mut worst: f64 = 0.0;
        let mut open_issues = 0usize;
        for control in &linked {
            let weight = control.weighting.unwrap_or(1) as f64;
            let (tested, rate) = failure_rate(control, at, 90);
            let (_, rate_year) = failure_rate(control, at, 365);
            weights += weight;
            pass += weight * if tested { 1.0 - rate } else { 0.0 };
            failure += weight * rate;
            untested += weight * f64::from(u8::from(!tested));
            key += weight * f64::from(u8::from(control.key_control));
            failure_year += weight * rate_year;
            worst = worst.max(rate);
            open_issues += control
                .issues
                .iter()
                .filter(|issue| issue.opened < at && issue.closed.is_none_or(|closed| closed >= at))
                .count();
        }
        let pass_rate = pass / weights;
        vec![
            inherent,
            linked.len() as f64,
            0.0,
            pass_rate,
            inherent * (1.0 - pass_rate),
            inherent * failure / weights,
            inherent * untested / weights,
            inherent * key / weights,
            failure_year / weights,
            worst,
            open_issues as f64,
        ]
    }
}

/// A fitted risk model: the linear regression and the band of its errors on validation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RiskModel {
    pub linear: Fitted,
    /// Quantiles (5 % and 95 %) of recorded − predicted on the validation risks.
    pub interval: (f64, f64),
}

/// One prediction: the residual score, its band, and the largest contributions.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicted {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
    pub contributions: Vec<(String, f64)>,
}

impl RiskModel {
    pub fn features(&self) -> &[String] {
        &self.linear.features
    }

    /// The residual score, kept within 0 and the inherent score (controls never raise a risk).
    fn value(&self, features: &[f64]) -> f64 {
        self.linear.linear(features).clamp(0.0, features[0].max(0.0))
    }

    pub fn predict(&self, features: &[f64], top: usize) -> Predicted {
        let value = self.value(features);
        let ceiling = features[0].max(0.0);
        Predicted {
            value,
            lower: (value + self.interval.0).clamp(0.0, ceiling),
            upper: (value + self.interval.1).clamp(0.0, ceiling),
            contributions: self.linear.contributions(features, top),
        }
    }
}

/// One example: the risk, its features, its recorded residual.
struct Example<'a> {
    risk: &'a RiskFacts,
    features: Vec<f64>,
    recorded: f64,
}

/// Where a risk falls: 0–69 fitting, 70–84 validation, 85–99 test (FNV-1a of its sys_id).
fn bucket(sys_id: &str) -> u64 {
    let hash = sys_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    hash % 100
}

/// Whether a risk is held out for the test (the same risks in training and evaluation).
pub fn is_test(sys_id: &str) -> bool {
    bucket(sys_id) >= 85
}

fn examples<'a>(risks: &'a [RiskFacts], controls: &[ControlFacts], as_of: i64) -> Vec<Example<'a>> {
    risks
        .iter()
        .filter_map(|risk| {
            let recorded = risk.recorded?;
            Some(Example { risk, features: risk.features_at(controls, as_of + 1), recorded })
        })
        .collect()
}

/// Fits ridge regression with penalty `l2` on standardised features, the target centred.
fn fit(examples: &[&Example], l2: f64) -> Result<RiskModel, String> {
    let width = FEATURES.len();
    let features: Vec<&[f64]> = examples.iter().map(|example| example.features.as_slice()).collect();
    let (means, scales, rows) = standardise(&features, width);
    let mean = examples.iter().map(|example| example.recorded).sum::<f64>() / examples.len() as f64;
    let centred: Vec<f64> = examples.iter().map(|example| example.recorded - mean).collect();
    let matrix = DenseMatrix::from_2d_vec(&rows).map_err(|e| format!("features: {e}"))?;
    // Standardised here (smartcore refuses a constant column), so the penalty is on the same scale for every feature.
    let parameters = RidgeRegressionParameters::default().with_alpha(l2).with_normalize(false);
    let model = RidgeRegression::fit(&matrix, &centred, parameters).map_err(|e| format!("fitting: {e}"))?;
    let coefficients = model.coefficients();
    let weights = (0..width).map(|row| *coefficients.get((row, 0))).collect();
    Ok(RiskModel {
        linear: Fitted {
            features: FEATURES.iter().map(|name| name.to_string()).collect(),
            means,
            scales,
            weights,
            intercept: mean,
            l2,
        },
        interval: (0.0, 0.0),
    })
}

/// The `q` quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Mean absolute error, root mean squared error and R² of (predicted, recorded) pairs.
fn errors(pairs: &[(f64, f64)]) -> (f64, f64, f64) {
    let count = pairs.len().max(1) as f64;
    let mae = pairs.iter().map(|(p, y)| (p - y).abs()).sum::<f64>() / count;
    let squared = pairs.iter().map(|(p, y)| (p - y).powi(2)).sum::<f64>();
    let mean = pairs.iter().map(|(_, y)| y).sum::<f64>() / count;
    let spread = pairs.iter().map(|(_, y)| (y - mean).powi(2)).sum::<f64>();
    let r2 = if spread > 0.0 { 1.0 - squared / spread } else { 0.0 };
    (mae, (squared / count).sqrt(), r2)
}

/// The model's errors on `examples` beside the mean residual `mean` and the analysis's rule.
fn scored_beside_baselines(model: &RiskModel, examples: &[&Example], mean: f64) -> HashMap<String, f64> {
    let rule_column = FEATURES.iter().position(|name| *name == "rule_residual").unwrap_or(0);
    let pairs = |predict: &dyn Fn(&Example) -> f64| -> Vec<(f64, f64)> {
        examples.iter().map(|example| (predict(example), example.recorded)).collect()
    };
    let (mae, rmse, r2) = errors(&pairs(&|example| model.value(&example.features)));
    let (mae_mean, rmse_mean, _) = errors(&pairs(&|_| mean));
    let (mae_rule, rmse_rule, r2_rule) = errors(&pairs(&|example| example.features[rule_column]));
    HashMap::from([
        ("mae".to_string(), mae),
        ("rmse".to_string(), rmse),
        ("r2".to_string(), r2),
        ("mae_mean_baseline".to_string(), mae_mean),
        ("rmse_mean_baseline".to_string(), rmse_mean),
        ("mae_rule_baseline".to_string(), mae_rule),
        ("rmse_rule_baseline".to_string(), rmse_rule),
        ("r2_rule_baseline".to_string(), r2_rule),
        ("mean_residual".to_string(), mean),
    ])
}

/// A trained risk model and how it did on the test risks.
#[derive(Debug)]
pub struct Trained {
    pub model: RiskModel,
    pub metrics: HashMap<String, f64>,
    pub examples: usize,
}

/// Splits the risks, picks the penalty on validation (or takes `l2`), refits and scores the
/// test risks, reporting to `progress` between fits and stopping there when asked.
pub fn train(
    risks: &[RiskFacts],
    controls: &[ControlFacts],
    as_of: i64,
    l2: Option<f64>,
    progress: &Progress,
) -> Result<Trained, String> {
    let examples = examples(risks, controls, as_of);
    progress.reach(20)?;
    let part = |range: std::ops::Range<u64>| -> Vec<&Example> {
        examples.iter().filter(|example| range.contains(&bucket(&example.risk.sys_id))).collect()
    };
    let (training, validation, test) = (part(0..70), part(70..85), part(85..100));
    if training.len() < MIN_FITTING || validation.len() < MIN_HELD_OUT || test.len() < MIN_HELD_OUT {
        return Err(format!(
            "{} risks with a recorded residual score to learn from; at least {} are needed (the split holds out 30 %)",
            examples.len(),
            (MIN_FITTING * 100).div_ceil(70)
        ));
    }
    let validation_mae = |model: &RiskModel| {
        let pairs: Vec<(f64, f64)> = validation.iter().map(|e| (model.value(&e.features), e.recorded)).collect();
        errors(&pairs).0
    };
    let chosen = match l2 {
        Some(l2) => l2,
        None => {
            let mut best = (f64::INFINITY, 1.0);
            for (step, penalty) in PENALTIES.into_iter().enumerate() {
                progress.reach(20 + 10 * step as u8)?;
                let mae = validation_mae(&fit(&training, penalty)?);
                if mae < best.0 {
                    best = (mae, penalty);
                }
            }
            best.1
        }
    };
    progress.reach(70)?;
    let on_training = fit(&training, chosen)?;
    let mut misses: Vec<f64> =
        validation.iter().map(|example| example.recorded - on_training.value(&example.features)).collect();
    misses.sort_by(f64::total_cmp);
    let fitting: Vec<&Example> = training.iter().chain(&validation).copied().collect();
    let mut model = fit(&fitting, chosen)?;
    progress.reach(90)?;
    model.interval = (quantile(&misses, INTERVAL.0), quantile(&misses, INTERVAL.1));
    let mut metrics = scored_beside_baselines(&model, &test, model.linear.intercept);
    metrics.extend([
        ("l2".to_string(), chosen),
        ("training_examples".to_string(), training.len() as f64),
        ("validation_examples".to_string(), validation.len() as f64),
        ("test_examples".to_string(), test.len() as f64),
        ("interval_lower".to_string(), model.interval.0),
        ("interval_upper".to_string(), model.interval.1),
    ]);
    Ok(Trained { model, metrics, examples: fitting.len() })
}

/// Scores `model` on an instance's risks: the held-out test risks when it is the model's own
/// instance (`held_out_only`), every risk otherwise.
pub fn evaluate(
    model: &RiskModel,
    risks: &[RiskFacts],
    controls: &[ControlFacts],
    as_of: i64,
    held_out_only: bool,
) -> Result<(HashMap<String, f64>, usize), String> {
    let examples = examples(risks, controls, as_of);
    let evaluated: Vec<&Example> =
        examples.iter().filter(|example| !held_out_only || is_test(&example.risk.sys_id)).collect();
    if evaluated.is_empty() {
        return Err("no risk with a recorded residual score to evaluate on".into());
    }
    Ok((scored_beside_baselines(model, &evaluated, model.linear.intercept), evaluated.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::IssueSpan;

    const NOW: i64 = 1_750_000_000;

    /// Controls, failing (60 % of monthly tests) or sound (8 %), some key; risks linked to up to
    /// four of them, their residual taken off the inherent score as the simulator's assessors
    /// do: a failing control takes off 10 %, a key one 80 %, another 60 %, with ±15 % noise.
    fn population(seed: u64) -> (Vec<ControlFacts>, Vec<RiskFacts>) {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut failing = Vec::new();
        let controls: Vec<ControlFacts> = (0..300)
            .map(|index| {
                let fails = next() < 0.3;
                failing.push(fails);
                let results = (1..=12)
                    .map(|month| (NOW - month * 30 * DAY, next() >= if fails { 0.6 } else { 0.08 }))
                    .rev()
                    .collect();
                ControlFacts {
                    sys_id: format!("c{index}"),
                    key_control: next() < 0.3,
                    weighting: Some(1 + (next() * 10.0) as i64),
                    frequency: "monthly".into(),
                    results,
                    issues: if fails {
                        vec![IssueSpan { priority: 2, opened: NOW - 100 * DAY, closed: None }]
                    } else {
                        vec![]
                    },
                }
            })
            .collect();
        let risks = (0..400)
            .map(|index| {
                let inherent = ((1.0 + (next() * 5.0).floor()) * (1.0 + (next() * 5.0).floor())).max(1.0);
                let linked: Vec<usize> = (0..(next() * 5.0) as usize).map(|_| (next() * 300.0) as usize).collect();
                let (weights, taken) = linked.iter().fold((0.0, 0.0), |(w, t), c| {
                    let control = &controls[*c];
                    let share = if failing[*c] {
                        0.1
                    } else if control.key_control {
                        0.8
                    } else {
                        0.6
                    };
                    let weight = control.weighting.unwrap_or(1) as f64;
                    (w + weight, t + weight * share)
                });
                let kept = if linked.is_empty() { 0.3 + 0.7 * next() } else { 1.0 - taken / weights };
                let recorded = (inherent * kept * (0.85 + 0.3 * next())).round().clamp(1.0, inherent);
                RiskFacts { sys_id: format!("r{index:04}"), inherent, recorded: Some(recorded), controls: linked }
            })
            .collect();
        (controls, risks)
    }

    #[test]
    fn features_read_the_controls_in_the_window() {
        let (controls, _) = population(1);
        let risk = RiskFacts { sys_id: "r".into(), inherent: 20.0, recorded: Some(5.0), controls: vec![0, 1] };
        let features = risk.features_at(&controls, NOW);
        assert_eq!(features.len(), FEATURES.len());
        assert_eq!((features[0], features[1], features[2]), (20.0, 2.0, 0.0));
        assert!((features[4] - 20.0 * (1.0 - features[3])).abs() < 1e-12, "the rule's residual");
        // Before any result, every linked control is untested: the rule keeps the inherent score.
        let early = risk.features_at(&controls, NOW - 400 * DAY);
        assert_eq!((early[3], early[4], early[6]), (0.0, 20.0, 20.0));
        let alone = RiskFacts { controls: vec![], ..risk };
        assert_eq!(alone.features_at(&controls, NOW)[2], 1.0);
    }

    #[test]
    fn the_model_beats_the_mean_and_the_rule_on_the_held_out_risks_and_explains_itself() {
        let (controls, risks) = population(7);
        let trained = train(&risks, &controls, NOW, None, &Progress::default()).unwrap();
        let metric = |name: &str| trained.metrics[name];
        assert!(metric("mae") < 0.8 * metric("mae_mean_baseline"), "{:?}", trained.metrics);
        assert!(metric("mae") < metric("mae_rule_baseline"), "{:?}", trained.metrics);
        assert!(metric("r2") > 0.5, "{:?}", trained.metrics);
        let risk = &risks[0];
        let features = risk.features_at(&controls, NOW + 1);
        let predicted = trained.model.predict(&features, FEATURES.len());
        assert!(predicted.lower <= predicted.value && predicted.value <= predicted.upper);
        assert!(predicted.value <= risk.inherent);
        // Unclamped, the contributions add up with the mean to the prediction.
        let sum: f64 =
            predicted.contributions.iter().map(|(_, part)| part).sum::<f64>() + trained.model.linear.intercept;
        assert!((sum - trained.model.linear.linear(&features)).abs() < 1e-9);
        // The evaluation of its own instance scores the same held-out risks.
        let (metrics, count) = evaluate(&trained.model, &risks, &controls, NOW, true).unwrap();
        assert_eq!(count as f64, metric("test_examples"));
        assert!((metrics["mae"] - metric("mae")).abs() < 1e-12);
        let (_, all) = evaluate(&trained.model, &risks, &controls, NOW, false).unwrap();
        assert_eq!(all, risks.len());
    }

    #[test]
    fn too_few_risks_are_refused_with_the_reason() {
        let (controls, risks) = population(3);
        let error = train(&risks[..20], &controls, NOW, None, &Progress::default()).unwrap_err();
        assert!(error.contains("20 risks"), "{error}");
        let unrecorded: Vec<RiskFacts> = risks.iter().map(|r| RiskFacts { recorded: None, ..r.clone() }).collect();
        assert!(
            evaluate(
                &train(&risks, &controls, NOW, Some(1.0), &Progress::default()).unwrap().model,
                &unrecorded,
                &controls,
                NOW,
                false
            )
            .is_err()
        );
    }
}
