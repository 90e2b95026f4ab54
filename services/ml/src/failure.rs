//! The control failure model: the probability that a control fails its next indicator test.
//!
//! An example is one indicator result of an active control; its label is whether the result
//! failed, and its features are computed only from what was known before it was collected
//! (the control's earlier results, the issues open at that time, and the control's fixed
//! attributes). ServiceNow's current `status` is not a feature: it is set from the same
//! results later and would leak the future into past examples.
//!
//! Splits are by time, never random: the test set is the most recent 30 days of results (up
//! to the latest result collected by the data's `data_as_of`), the validation set the 30 days
//! before that, training everything earlier.
//! The L2 penalty is chosen on validation (log loss), the model refitted on training and
//! validation, and scored once on the test month beside two references: the base rate (the
//! failure rate of the fitting data) and the recency baseline of the predictive analysis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use complianceiq_analysis::predictive;

const DAY: i64 = 86_400;
/// Days of the test set, and of the validation set before it.
pub const HOLDOUT_DAYS: i64 = 30;
/// L2 penalties tried on the validation month.
const PENALTIES: [f64; 4] = [0.0, 0.1, 1.0, 10.0];
/// Fewest fitting examples a model is trained on.
pub const MIN_EXAMPLES: usize = 50;

/// A training's progress (0 to 100), reported by the fitting thread, and a request to stop it,
/// honoured between two fits (a fit itself runs to its end).
#[derive(Debug, Default)]
pub struct Progress {
    percent: AtomicU8,
    stop: AtomicBool,
}

impl Progress {
    /// The fit has reached `percent`; an error once stopping was asked.
    pub fn reach(&self, percent: u8) -> Result<(), String> {
        self.percent.fetch_max(percent.min(100), Ordering::Relaxed);
        if self.stopped() { Err("training cancelled".into()) } else { Ok(()) }
    }

    pub fn percent(&self) -> u8 {
        self.percent.load(Ordering::Relaxed)
    }

    /// Asks the fit to stop at its next step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The features, in the order the model reads them.
pub const FEATURES: [&str; 19] = [
    "failure_rate_30d",
    "log_results_30d",
    "failure_rate_90d",
    "log_results_90d",
    "failure_rate_365d",
    "log_results_365d",
    "recency_weighted_failure_rate",
    "trend_30d_minus_90d",
    "years_since_last_failure",
    "open_issues_p1",
    "open_issues_p2",
    "open_issues_p3",
    "years_since_issue_opened",
    "years_since_issue_closed",
    "key_control",
    "weighting",
    "frequency_monthly",
    "frequency_quarterly",
    "frequency_annually",
];

/// An issue on a control: priority, opened and (if known) closed, in seconds.
#[derive(Clone, Debug)]
pub struct IssueSpan {
    pub priority: i64,
    pub opened: i64,
    pub closed: Option<i64>,
}

/// What the model knows of a control.
#[derive(Clone, Debug, Default)]
pub struct ControlFacts {
    pub sys_id: String,
    pub key_control: bool,
    pub weighting: Option<i64>,
    pub frequency: String,
    /// (collection time in seconds, passed), oldest first.
    pub results: Vec<(i64, bool)>,
    pub issues: Vec<IssueSpan>,
}

impl ControlFacts {
    /// The features at time `at`, from what was collected strictly before it; None before
    /// the control's first result (nothing to predict from).
    pub fn features_at(&self, at: i64) -> Option<Vec<f64>> {
        let known = &self.results[..self.results.partition_point(|(collected, _)| *collected < at)];
        if known.is_empty() {
            return None;
        }
        let window = |days: i64| {
            let since = at - days * DAY;
            let recent = &known[known.partition_point(|(collected, _)| *collected < since)..];
            let failed = recent.iter().filter(|(_, passed)| !passed).count();
            let rate = if recent.is_empty() { 0.0 } else { failed as f64 / recent.len() as f64 };
            (rate, (1.0 + recent.len() as f64).ln())
        };
        let (rate_30, count_30) = window(30);
        let (rate_90, count_90) = window(90);
        let (rate_365, count_365) = window(365);
        let recency = predictive::failure_probability(known, at - 1).unwrap_or(0.0);
        let since_failure = known
            .iter()
            .rev()
            .find(|(_, passed)| !passed)
            .map_or(1.0, |(collected, _)| ((at - collected) as f64 / (365 * DAY) as f64).min(1.0));
        let open = |priority: i64| {
            self.issues
                .iter()
                .filter(|issue| {
                    issue.priority == priority && issue.opened < at && issue.closed.is_none_or(|closed| closed >= at)
                })
                .count() as f64
        };
        // How lately an issue was opened (a spell of failures began) or closed (a remediation):
        // the issue's age in years, capped at 1, and 1 without one.
        let age = |time: i64| ((at - time) as f64 / (365 * DAY) as f64).min(1.0);
        let since_opened = self
            .issues
            .iter()
            .filter(|issue| issue.opened < at && issue.closed.is_none_or(|closed| closed >= at))
            .map(|issue| age(issue.opened))
            .fold(1.0, f64::min);
        let since_closed = self
            .issues
            .iter()
            .filter_map(|issue| issue.closed.filter(|closed| *closed < at))
            .map(age)
            .fold(1.0, f64::min);
        let frequency = |name: &str| f64::from(u8::from(self.frequency == name));
        Some(vec![
            rate_30,
            count_30,
            rate_90,
            count_90,
            rate_365,
            count_365,
            recency,
            rate_30 - rate_90,
            since_failure,
            open(1),
            open(2),
            open(3),
            since_opened,
            since_closed,
            f64::from(u8::from(self.key_control)),
            self.weighting.unwrap_or(1) as f64 / 10.0,
            frequency("monthly"),
            frequency("quarterly"),
            frequency("annually"),
        ])
    }
}

/// One example: when, the features, whether it failed.
#[derive(Clone, Debug)]
pub struct Example {
    pub at: i64,
    pub features: Vec<f64>,
    pub failed: bool,
}

/// Every result with history before it, up to `as_of`, as an example.
pub fn examples(controls: &[ControlFacts], as_of: i64) -> Vec<Example> {
    let mut examples = Vec::new();
    for control in controls {
        for (collected, passed) in control.results.iter().filter(|(collected, _)| *collected <= as_of) {
            if let Some(features) = control.features_at(*collected) {
                examples.push(Example { at: *collected, features, failed: !passed });
            }
        }
    }
    examples
}

/// A fitted model: standardisation and logistic weights, serialised as the artifact.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fitted {
    pub features: Vec<String>,
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub l2: f64,
}

impl Fitted {
    fn standardised(&self, features: &[f64]) -> Vec<f64> {
        features.iter().zip(self.means.iter().zip(&self.scales)).map(|(x, (mean, scale))| (x - mean) / scale).collect()
    }

    /// The intercept plus each weight × standardised value: the log-odds of failure for the
    /// logistic model, the prediction itself for a linear regression.
    pub fn linear(&self, features: &[f64]) -> f64 {
        let z = self.standardised(features);
        self.intercept + z.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>()
    }

    /// The probability of failure.
    pub fn probability(&self, features: &[f64]) -> f64 {
        sigmoid(self.linear(features))
    }

    /// Each feature's share of the linear part (weight × standardised value), largest first.
    pub fn contributions(&self, features: &[f64], top: usize) -> Vec<(String, f64)> {
        let z = self.standardised(features);
        let mut parts: Vec<(String, f64)> =
            self.features.iter().zip(z.iter().zip(&self.weights)).map(|(name, (x, w))| (name.clone(), x * w)).collect();
        parts.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        parts.truncate(top);
        parts
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Each column's mean over `rows`.
fn column_means<'a>(rows: impl ExactSizeIterator<Item = &'a [f64]>, width: usize) -> Vec<f64> {
    let count = rows.len() as f64;
    let mut means = vec![0.0; width];
    for row in rows {
        for (mean, x) in means.iter_mut().zip(row) {
            *mean += x / count;
        }
    }
    means
}

/// Each feature's mean over `examples`.
fn feature_means(examples: &[&Example]) -> Vec<f64> {
    column_means(examples.iter().map(|example| example.features.as_slice()), FEATURES.len())
}

/// Standardisation of `rows` (`width` columns): each column's mean and standard deviation, and
/// the rows centred and scaled by them. A constant column gets scale 1 (it carries nothing and
/// stays 0 after centring).
pub(crate) fn standardise(rows: &[&[f64]], width: usize) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let count = rows.len() as f64;
    let means = column_means(rows.iter().copied(), width);
    let mut scales = vec![0.0; width];
    for row in rows {
        for ((scale, mean), x) in scales.iter_mut().zip(&means).zip(*row) {
            *scale += (x - mean).powi(2) / count;
        }
    }
    let scales: Vec<f64> =
        scales.into_iter().map(|variance| if variance > 1e-12 { variance.sqrt() } else { 1.0 }).collect();
    let standardised = rows
        .iter()
        .map(|row| row.iter().zip(means.iter().zip(&scales)).map(|(x, (m, s))| (x - m) / s).collect())
        .collect();
    (means, scales, standardised)
}

/// A model learns nothing from one outcome alone.
fn both_outcomes(examples: &[&Example]) -> Result<(), String> {
    if examples.iter().all(|example| example.failed == examples[0].failed) {
        return Err("every fitting example has the same outcome; a model needs both passes and failures".into());
    }
    Ok(())
}

/// Fits a logistic regression with penalty `l2` on standardised features.
pub fn fit(examples: &[&Example], l2: f64) -> Result<Fitted, String> {
    both_outcomes(examples)?;
    let width = FEATURES.len();
    let features: Vec<&[f64]> = examples.iter().map(|example| example.features.as_slice()).collect();
    let (means, scales, rows) = standardise(&features, width);
    let labels: Vec<i32> = examples.iter().map(|example| i32::from(example.failed)).collect();
    let matrix = DenseMatrix::from_2d_vec(&rows).map_err(|e| format!("features: {e}"))?;
    let parameters = LogisticRegressionParameters::default().with_alpha(l2);
    let model = LogisticRegression::fit(&matrix, &labels, parameters).map_err(|e| format!("fitting: {e}"))?;
    let coefficients = model.coefficients();
    let weights = (0..width).map(|column| *coefficients.get((0, column))).collect();
    let intercept = *model.intercept().get((0, 0));
    Ok(Fitted {
        features: FEATURES.iter().map(|name| name.to_string()).collect(),
        means,
        scales,
        weights,
        intercept,
        l2,
    })
}

/// How a model learns: logistic regression, or a random forest of regression trees on the 0/1
/// outcome (each leaf's share of failures is a probability; smartcore's classifier forest
/// gives no probabilities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Logistic,
    RandomForest,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "logistic" => Some(Self::Logistic),
            "random_forest" => Some(Self::RandomForest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::RandomForest => "random_forest",
        }
    }
}

/// What TrainModel's parameters fix; the rest is chosen on the validation month.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    pub l2: Option<f64>,
    pub algorithm: Option<Algorithm>,
}

type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A fitted random forest and the fitting data's feature means (for contributions).
#[derive(Debug, Serialize, Deserialize)]
pub struct ForestModel {
    pub features: Vec<String>,
    pub means: Vec<f64>,
    forest: Forest,
}

impl ForestModel {
    fn predict_rows(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        let Ok(matrix) = DenseMatrix::from_2d_vec(&rows.to_vec()) else { return vec![0.0; rows.len()] };
        match self.forest.predict(&matrix) {
            Ok(values) => values.into_iter().map(|p| p.clamp(0.0, 1.0)).collect(),
            Err(_) => vec![0.0; rows.len()],
        }
    }

    /// Each feature's share: how much the probability drops when that feature alone is set to
    /// its mean over the fitting data.
    fn contributions(&self, features: &[f64], top: usize) -> Vec<(String, f64)> {
        let mut rows = vec![features.to_vec()];
        for (column, mean) in self.means.iter().enumerate() {
            let mut row = features.to_vec();
            row[column] = *mean;
            rows.push(row);
        }
        let predicted = self.predict_rows(&rows);
        let mut parts: Vec<(String, f64)> = self
            .features
            .iter()
            .enumerate()
            .map(|(column, name)| (name.clone(), predicted[0] - predicted[column + 1]))
            .collect();
        parts.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        parts.truncate(top);
        parts
    }
}

/// Fits a forest of 100 trees (depth at most 8, at least 20 examples per leaf, 4 features
/// tried per split).
pub fn fit_forest(examples: &[&Example]) -> Result<ForestModel, String> {
    both_outcomes(examples)?;
    let means = feature_means(examples);
    let rows: Vec<Vec<f64>> = examples.iter().map(|example| example.features.clone()).collect();
    let labels: Vec<f64> = examples.iter().map(|example| f64::from(u8::from(example.failed))).collect();
    let matrix = DenseMatrix::from_2d_vec(&rows).map_err(|e| format!("features: {e}"))?;
    let parameters = RandomForestRegressorParameters::default()
        .with_n_trees(100)
        .with_max_depth(8)
        .with_min_samples_leaf(20)
        .with_m(4)
        .with_seed(17);
    let forest = Forest::fit(&matrix, &labels, parameters).map_err(|e| format!("fitting: {e}"))?;
    Ok(ForestModel { features: FEATURES.iter().map(|name| name.to_string()).collect(), means, forest })
}

/// A trained model of either algorithm: the artifact.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Learned {
    Logistic(Fitted),
    RandomForest(ForestModel),
}

impl Learned {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Logistic(_) => Algorithm::Logistic,
            Self::RandomForest(_) => Algorithm::RandomForest,
        }
    }

    pub fn features(&self) -> &[String] {
        match self {
            Self::Logistic(model) => &model.features,
            Self::RandomForest(model) => &model.features,
        }
    }

    /// The probability of failure.
    pub fn probability(&self, features: &[f64]) -> f64 {
        match self {
            Self::Logistic(model) => model.probability(features),
            Self::RandomForest(model) => model.predict_rows(&[features.to_vec()])[0],
        }
    }

    /// Probabilities of many examples at once.
    fn probabilities(&self, examples: &[&Example]) -> Vec<f64> {
        match self {
            Self::Logistic(model) => examples.iter().map(|e| model.probability(&e.features)).collect(),
            Self::RandomForest(model) => {
                model.predict_rows(&examples.iter().map(|e| e.features.clone()).collect::<Vec<_>>())
            }
        }
    }

    /// The largest contributions to a prediction: in log-odds for the logistic model, in
    /// probability for the forest.
    pub fn contributions(&self, features: &[f64], top: usize) -> Vec<(String, f64)> {
        match self {
            Self::Logistic(model) => model.contributions(features, top),
            Self::RandomForest(model) => model.contributions(features, top),
        }
    }
}

fn learn(examples: &[&Example], algorithm: Algorithm, l2: f64) -> Result<Learned, String> {
    Ok(match algorithm {
        Algorithm::Logistic => Learned::Logistic(fit(examples, l2)?),
        Algorithm::RandomForest => Learned::RandomForest(fit_forest(examples)?),
    })
}

/// ROC AUC by the rank-sum: the chance a failed example scores above a passed one (ties
/// count half). None without both outcomes.
pub fn roc_auc(scored: &[(f64, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, failed)| *failed).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<&(f64, bool)> = scored.iter().collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let end = start + order[start..].iter().take_while(|(score, _)| *score == order[start].0).count();
        // Ranks start at 1; tied scores share the mean of their ranks.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * order[start..end].iter().filter(|(_, failed)| *failed).count() as f64;
        start = end;
    }
    let positives = positives as f64;
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives as f64))
}

/// Scores `model` on `examples` beside the baselines: the model's, the base rate's (a constant
/// `base_rate`) and the recency baseline's Brier score, the model's log loss, and the AUC of
/// the model and of the baseline. Returns the model's (probability, failed) pairs too.
fn scored_beside_baselines(
    model: &Learned,
    examples: &[&Example],
    base_rate: f64,
) -> (Vec<(f64, bool)>, HashMap<String, f64>) {
    let recency_column = FEATURES.iter().position(|name| *name == "recency_weighted_failure_rate").unwrap_or(0);
    let scored: Vec<(f64, bool)> =
        model.probabilities(examples).into_iter().zip(examples.iter().map(|e| e.failed)).collect();
    let recency: Vec<(f64, bool)> = examples.iter().map(|e| (e.features[recency_column], e.failed)).collect();
    let constant: Vec<(f64, bool)> = examples.iter().map(|e| (base_rate, e.failed)).collect();
    let mut metrics = HashMap::from([
        ("base_rate".to_string(), base_rate),
        ("brier".to_string(), brier(&scored)),
        ("brier_base_rate".to_string(), brier(&constant)),
        ("brier_recency_baseline".to_string(), brier(&recency)),
        ("log_loss".to_string(), log_loss(&scored)),
    ]);
    if let Some(auc) = roc_auc(&scored) {
        metrics.insert("auc".into(), auc);
    }
    if let Some(auc) = roc_auc(&recency) {
        metrics.insert("auc_recency_baseline".into(), auc);
    }
    (scored, metrics)
}

/// Mean of (p − outcome)².
pub fn brier(scored: &[(f64, bool)]) -> f64 {
    if scored.is_empty() {
        return 0.0;
    }
    scored.iter().map(|(p, failed)| (p - f64::from(u8::from(*failed))).powi(2)).sum::<f64>() / scored.len() as f64
}

fn log_loss(scored: &[(f64, bool)]) -> f64 {
    let clamp = |p: f64| p.clamp(1e-9, 1.0 - 1e-9);
    -scored.iter().map(|(p, failed)| if *failed { clamp(*p).ln() } else { (1.0 - clamp(*p)).ln() }).sum::<f64>()
        / scored.len().max(1) as f64
}

/// A trained model and how it did.
#[derive(Debug)]
pub struct Trained {
    pub model: Learned,
    pub metrics: HashMap<String, f64>,
    pub examples: usize,
}

/// Examples split by time.
pub struct Split<'a> {
    pub training: Vec<&'a Example>,
    pub validation: Vec<&'a Example>,
    pub test: Vec<&'a Example>,
    /// Test examples were collected after this time.
    pub test_from: i64,
}

/// The test set is the last 30 days up to the latest example, validation the 30 days before,
/// training everything earlier; None without examples.
pub fn split(examples: &[Example]) -> Option<Split<'_>> {
    let latest = examples.iter().map(|example| example.at).max()?;
    let test_from = latest - HOLDOUT_DAYS * DAY;
    let validation_from = test_from - HOLDOUT_DAYS * DAY;
    Some(Split {
        training: examples.iter().filter(|e| e.at <= validation_from).collect(),
        validation: examples.iter().filter(|e| e.at > validation_from && e.at <= test_from).collect(),
        test: examples.iter().filter(|e| e.at > test_from).collect(),
        test_from,
    })
}

/// Splits by time, picks the penalty on validation, refits, scores the test month. `l2`
/// fixes the penalty instead of choosing it. Reports to `progress` between fits and stops
/// there when asked.
pub fn train(controls: &[ControlFacts], as_of: i64, options: Options, progress: &Progress) -> Result<Trained, String> {
    let examples = examples(controls, as_of);
    progress.reach(20)?;
    let Some(Split { training, validation, test, test_from }) = split(&examples) else {
        return Err("no indicator result with an earlier one to learn from".into());
    };
    if training.len() < MIN_EXAMPLES {
        return Err(format!(
            "{} results before the most recent {} days to learn from; at least {MIN_EXAMPLES} are needed",
            training.len(),
            2 * HOLDOUT_DAYS
        ));
    }
    let validation_loss = |model: &Learned| {
        let scored: Vec<(f64, bool)> =
            model.probabilities(&validation).into_iter().zip(validation.iter().map(|e| e.failed)).collect();
        log_loss(&scored)
    };
    let mut choice = HashMap::new();
    let chosen = match options.l2 {
        Some(l2) => l2,
        None if validation.is_empty() => 1.0,
        None => {
            let mut best = (f64::INFINITY, 1.0);
            for (step, penalty) in PENALTIES.into_iter().enumerate() {
                progress.reach(20 + 5 * step as u8)?;
                let loss = validation_loss(&Learned::Logistic(fit(&training, penalty)?));
                if loss < best.0 {
                    best = (loss, penalty);
                }
            }
            best.1
        }
    };
    let algorithm = match options.algorithm {
        Some(algorithm) => algorithm,
        None if validation.is_empty() => Algorithm::Logistic,
        None => {
            progress.reach(40)?;
            let logistic = validation_loss(&learn(&training, Algorithm::Logistic, chosen)?);
            progress.reach(45)?;
            let forest = validation_loss(&learn(&training, Algorithm::RandomForest, chosen)?);
            choice.insert("validation_log_loss_logistic".to_string(), logistic);
            choice.insert("validation_log_loss_random_forest".to_string(), forest);
            if forest < logistic { Algorithm::RandomForest } else { Algorithm::Logistic }
        }
    };
    let fitting: Vec<&Example> = training.iter().chain(&validation).copied().collect();
    progress.reach(70)?;
    let model = learn(&fitting, algorithm, chosen)?;
    progress.reach(90)?;
    let base_rate = fitting.iter().filter(|e| e.failed).count() as f64 / fitting.len() as f64;
    let (_, mut metrics) = scored_beside_baselines(&model, &test, base_rate);
    metrics.extend(choice);
    metrics.extend([
        ("l2".to_string(), chosen),
        ("training_examples".to_string(), training.len() as f64),
        ("validation_examples".to_string(), validation.len() as f64),
        ("test_examples".to_string(), test.len() as f64),
        ("test_failures".to_string(), test.iter().filter(|e| e.failed).count() as f64),
        ("test_window_start".to_string(), test_from as f64),
    ]);
    if algorithm == Algorithm::RandomForest {
        metrics.remove("l2");
    }
    Ok(Trained { model, metrics, examples: fitting.len() })
}

/// Which results an evaluation scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// The last this many days of results, up to the latest collected.
    Days(i64),
    /// This share of the most recent examples.
    Fraction(f64),
}

/// Ten bands of predicted probability.
const BANDS: usize = 10;

/// One calibration band: [lower, upper), predictions, mean predicted, observed failure rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// An evaluation's numbers.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub metrics: HashMap<String, f64>,
    pub examples: usize,
    pub window_start: i64,
    pub calibration: Vec<Band>,
}

/// Scores `model` on the results in `window` of `controls`' data up to `as_of`: ranking (AUC),
/// calibration (Brier, bands) and precision/recall at `threshold`, beside the base rate (the
/// failure rate before the window) and the recency baseline.
pub fn evaluate(
    model: &Learned,
    controls: &[ControlFacts],
    as_of: i64,
    window: Window,
    threshold: f64,
) -> Result<Evaluated, String> {
    let mut examples = examples(controls, as_of);
    examples.sort_by_key(|example| example.at);
    let Some(latest) = examples.last().map(|example| example.at) else {
        return Err("no indicator result with an earlier one to evaluate on".into());
    };
    let split = match window {
        Window::Days(days) => examples.partition_point(|example| example.at <= latest - days * DAY),
        Window::Fraction(share) => {
            examples.len() - ((examples.len() as f64 * share).ceil() as usize).min(examples.len())
        }
    };
    let (before, evaluated) = examples.split_at(split);
    if evaluated.is_empty() {
        return Err("no result in the window to evaluate on".into());
    }
    let base_rate =
        if before.is_empty() { 0.0 } else { before.iter().filter(|e| e.failed).count() as f64 / before.len() as f64 };
    let evaluated: Vec<&Example> = evaluated.iter().collect();
    let (scored, mut metrics) = scored_beside_baselines(model, &evaluated, base_rate);
    let predicted_failures = scored.iter().filter(|(p, _)| *p >= threshold).count();
    let true_failures = scored.iter().filter(|(p, failed)| *p >= threshold && *failed).count();
    let failures = scored.iter().filter(|(_, failed)| *failed).count();
    let ratio = |part: usize, whole: usize| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
    metrics.extend([
        ("precision".to_string(), ratio(true_failures, predicted_failures)),
        ("recall".to_string(), ratio(true_failures, failures)),
        ("failures".to_string(), failures as f64),
    ]);
    let calibration = (0..BANDS)
        .map(|band| {
            let (lower, upper) = (band as f64 / BANDS as f64, (band + 1) as f64 / BANDS as f64);
            let members: Vec<&(f64, bool)> = scored
                .iter()
                .filter(|(p, _)| *p >= lower && (*p < upper || (band == BANDS - 1 && *p <= upper)))
                .collect();
            let count = members.len();
            Band {
                lower,
                upper,
                count,
                mean_predicted: if count == 0 {
                    0.0
                } else {
                    members.iter().map(|(p, _)| p).sum::<f64>() / count as f64
                },
                observed_rate: ratio(members.iter().filter(|(_, failed)| *failed).count(), count),
            }
        })
        .collect();
    Ok(Evaluated { metrics, examples: evaluated.len(), window_start: evaluated[0].at, calibration })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Controls of two kinds: a failing kind that fails 60 % of its tests and a sound kind
    /// that fails 8 %, tested weekly for a year (the simulator's structure).
    fn population(seed: u64) -> Vec<ControlFacts> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..80)
            .map(|index| {
                let failing = index % 4 == 0;
                let results =
                    (0..52).map(|week| (week * 7 * DAY, next() >= if failing { 0.6 } else { 0.08 })).collect();
                ControlFacts { sys_id: format!("c{index}"), frequency: "monthly".into(), results, ..Default::default() }
            })
            .collect()
    }

    #[test]
    fn features_see_only_the_past() {
        let control = ControlFacts {
            results: vec![(10 * DAY, false), (20 * DAY, true), (30 * DAY, false)],
            issues: vec![IssueSpan { priority: 1, opened: 15 * DAY, closed: Some(25 * DAY) }],
            ..Default::default()
        };
        assert_eq!(control.features_at(10 * DAY), None, "nothing before the first result");
        let at_20 = control.features_at(20 * DAY).unwrap();
        assert_eq!(at_20[0], 1.0, "one result known, failed");
        assert_eq!(at_20[9], 1.0, "the P1 issue is open on day 20");
        let at_30 = control.features_at(30 * DAY).unwrap();
        assert_eq!(at_30[0], 0.5, "the result of day 30 itself is not known at day 30");
        assert_eq!(at_30[9], 0.0, "closed on day 25");
        assert_eq!(examples(&[control], 30 * DAY).len(), 2);
    }

    #[test]
    fn the_auc_counts_ordered_pairs_and_ties_half() {
        assert_eq!(roc_auc(&[(0.9, true), (0.1, false)]), Some(1.0));
        assert_eq!(roc_auc(&[(0.1, true), (0.9, false)]), Some(0.0));
        assert_eq!(roc_auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(roc_auc(&[(0.8, true), (0.2, true), (0.5, false)]), Some(0.5));
        assert_eq!(roc_auc(&[(0.5, true)]), None);
        assert!((brier(&[(1.0, true), (0.5, false)]) - 0.125).abs() < 1e-12);
    }

    #[test]
    fn a_model_learns_which_controls_fail_and_beats_the_base_rate_on_the_later_month() {
        let controls = population(7);
        let as_of = 51 * 7 * DAY;
        let logistic = Options { algorithm: Some(Algorithm::Logistic), ..Default::default() };
        let trained = train(&controls, as_of, logistic, &Progress::default()).unwrap();
        let metrics = &trained.metrics;
        assert!(metrics["auc"] > 0.75, "{metrics:?}");
        assert!(metrics["brier"] < metrics["brier_base_rate"], "{metrics:?}");
        assert!(metrics["auc"] > metrics["auc_recency_baseline"], "{metrics:?}");
        assert!(metrics["brier"] < metrics["brier_recency_baseline"], "{metrics:?}");
        // The weight of the long failure rate points the right way.
        let column = FEATURES.iter().position(|name| *name == "failure_rate_365d").unwrap();
        let Learned::Logistic(fitted) = &trained.model else { panic!("asked for a logistic model") };
        assert!(fitted.weights[column] > 0.0, "{fitted:?}");
        // The artifact round-trips and predicts the same.
        let json = serde_json::to_string(&trained.model).unwrap();
        let back: Learned = serde_json::from_str(&json).unwrap();
        let features = controls[0].features_at(as_of + 1).unwrap();
        assert!((back.probability(&features) - trained.model.probability(&features)).abs() < 1e-12);
        assert!(back.probability(&features) > back.probability(&controls[1].features_at(as_of + 1).unwrap()));
        assert_eq!(back.contributions(&features, 3).len(), 3);
    }

    #[test]
    fn a_forest_learns_too_and_the_validation_month_picks_the_algorithm() {
        let controls = population(5);
        let as_of = 51 * 7 * DAY;
        let forest = Options { algorithm: Some(Algorithm::RandomForest), ..Default::default() };
        let trained = train(&controls, as_of, forest, &Progress::default()).unwrap();
        let metrics = &trained.metrics;
        assert!(metrics["auc"] > 0.75 && metrics["brier"] < metrics["brier_base_rate"], "{metrics:?}");
        assert!(!metrics.contains_key("l2"), "a forest has no penalty");
        let json = serde_json::to_string(&trained.model).unwrap();
        let back: Learned = serde_json::from_str(&json).unwrap();
        assert_eq!(back.algorithm(), Algorithm::RandomForest);
        let features = controls[0].features_at(as_of + 1).unwrap();
        assert_eq!(back.probability(&features), trained.model.probability(&features));
        let contributions = back.contributions(&features, 5);
        assert_eq!(contributions.len(), 5);
        assert!(contributions.windows(2).all(|pair| pair[0].1.abs() >= pair[1].1.abs()));
        // Unfixed, both are fitted on the training months and the validation month decides.
        let chosen = train(&controls, as_of, Options::default(), &Progress::default()).unwrap();
        let (logistic, forest) =
            (chosen.metrics["validation_log_loss_logistic"], chosen.metrics["validation_log_loss_random_forest"]);
        let expected = if forest < logistic { Algorithm::RandomForest } else { Algorithm::Logistic };
        assert_eq!(chosen.model.algorithm(), expected);
    }

    #[test]
    fn an_evaluation_scores_the_window_and_tells_calibration_precision_and_recall() {
        let controls = population(11);
        let as_of = 51 * 7 * DAY;
        let options = Options { l2: Some(1.0), algorithm: Some(Algorithm::Logistic) };
        let model = train(&controls, as_of, options, &Progress::default()).unwrap().model;
        let evaluated = evaluate(&model, &controls, as_of, Window::Days(70), 0.5).unwrap();
        // Weekly results: the last 70 days up to the latest hold 10 weeks of each control.
        assert_eq!(evaluated.examples, 80 * 10);
        assert_eq!(evaluated.window_start, 42 * 7 * DAY);
        let bands = &evaluated.calibration;
        assert_eq!(bands.len(), 10);
        assert_eq!(bands.iter().map(|band| band.count).sum::<usize>(), evaluated.examples);
        // Calibrated where it counts: the bands holding most predictions come true about as often.
        for band in bands.iter().filter(|band| band.count >= 100) {
            assert!((band.mean_predicted - band.observed_rate).abs() < 0.1, "{band:?}");
        }
        let metrics = &evaluated.metrics;
        assert!(metrics["precision"] > 0.4 && metrics["recall"] > 0.4, "{metrics:?}");
        let share = evaluate(&model, &controls, as_of, Window::Fraction(0.25), 0.5).unwrap();
        assert_eq!(share.examples, (80.0 * 51.0 * 0.25f64).ceil() as usize);
        assert!(evaluate(&model, &[], as_of, Window::Days(30), 0.5).is_err());
    }

    #[test]
    fn too_little_history_or_one_outcome_is_refused_with_the_reason() {
        let few = vec![ControlFacts { results: vec![(0, true), (DAY, true)], ..Default::default() }];
        assert!(train(&few, 100 * DAY, Options::default(), &Progress::default()).unwrap_err().contains("at least 50"));
        let always =
            vec![ControlFacts { results: (0..200).map(|day| (day * DAY, true)).collect(), ..Default::default() }];
        for algorithm in [Algorithm::Logistic, Algorithm::RandomForest] {
            let options = Options { l2: Some(1.0), algorithm: Some(algorithm) };
            assert!(train(&always, 200 * DAY, options, &Progress::default()).unwrap_err().contains("same outcome"));
        }
    }

    #[test]
    fn a_training_reports_its_progress_and_stops_when_asked() {
        let controls = population(11);
        let as_of = 51 * 7 * DAY;
        let progress = Progress::default();
        train(&controls, as_of, Options::default(), &progress).unwrap();
        assert_eq!(progress.percent(), 90);
        let stopped = Progress::default();
        stopped.stop();
        assert_eq!(train(&controls, as_of, Options::default(), &stopped).unwrap_err(), "training cancelled");
        assert_eq!(stopped.percent(), 20, "stopped at its first step");
    }
}
