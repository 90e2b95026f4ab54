//! Anomaly detection on indicator values (docs/architecture.md, "Analyses"). Each indicator's
//! results in the window (the last `window_days` up to the job's sync) are compared with its
//! results before the window, its usual values, by a robust z-score:
//! z = (value − median) ÷ (1.4826 · MAD), MAD being the median absolute deviation from the
//! median (1.4826 · MAD estimates the standard deviation of normal data without letting the
//! outliers themselves widen it). A value is anomalous from |z| ≥ threshold (default 3.5, the
//! cut Iglewicz and Hoaglin recommend).
//!
//! Seasonal where there is enough history: a value is compared with the earlier values of the
//! same weekday (UTC) when there are at least `MIN_SEASONAL` of them, so an indicator that reads
//! low every weekend is not flagged every weekend. Without `MIN_BASELINE` earlier values an
//! indicator is not judged at all: a handful of values has no "usual".
//!
//! When half or more of the earlier values are equal, the MAD is 0; the scale is then the mean
//! absolute deviation (× 1.2533, its normal-consistent factor), and when every earlier value is
//! the same, any other value is anomalous (its z is reported as ±`MAX_Z`).

use std::collections::HashMap;

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_proto::complianceiq::analysis::v1::AnalysisResult;
use sqlx::Row;

use crate::controls::{Links, Snapshot, one_decimal};

pub const INDICATOR_ANOMALY: &str = "INDICATOR_ANOMALY";
pub const DEFAULT_WINDOW_DAYS: i64 = 30;
pub const DEFAULT_THRESHOLD: f64 = 3.5;
/// Fewest earlier values that make an indicator's usual values.
pub const MIN_BASELINE: usize = 10;
/// Fewest earlier values of one weekday that make that weekday's usual values.
pub const MIN_SEASONAL: usize = 8;
/// The z reported for a value off a baseline without any spread.
pub const MAX_Z: f64 = 1.0e6;
/// Anomalous results listed as a result's sources.
const LISTED: usize = 10;
const DAY: i64 = 86_400;
const MAD_TO_SIGMA: f64 = 1.4826;
const MEAN_AD_TO_SIGMA: f64 = 1.2533;

/// One numeric indicator result.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub sys_id: String,
    /// Collection time, seconds.
    pub collected: i64,
    pub value: f64,
}

/// An indicator with its numeric results, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Indicator {
    pub sys_id: String,
    pub number: String,
    pub name: String,
    pub control: Option<String>,
    pub readings: Vec<Reading>,
}

/// Reads every indicator with its numeric results as of `snapshot`, collected up to `until`
/// (a ServiceNow time).
pub async fn load(tx: &mut TenantTx, snapshot: Snapshot<'_>, until: &str) -> Result<Vec<Indicator>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT i.sys_id, i.number, i.name, i.control_sys_id, r.sys_id, r.collection_date, r.value \
         FROM grc_indicator_result_versions r JOIN grc_indicator_versions i \
         ON i.organization_id = $1 AND i.instance_id = $2 AND i.sys_id = r.indicator_sys_id \
         AND i.valid_from <= $3 AND i.valid_to > $3 \
         WHERE r.organization_id = $1 AND r.instance_id = $2 AND r.valid_from <= $3 AND r.valid_to > $3 \
         AND r.value IS NOT NULL AND r.collection_date <= $4",
    )
    .bind(tenant)
    .bind(snapshot.instance)
    .bind(snapshot.point)
    .bind(until)
    .fetch_all(tx.connection())
    .await?;
    let mut indicators: HashMap<String, Indicator> = HashMap::new();
    for row in &rows {
        let collected: Option<String> = row.try_get(5)?;
        let Some(collected) = collected.as_deref().and_then(complianceiq_servicenow::datetime::parse) else {
            continue;
        };
        let value: f64 = row.try_get(6)?;
        if !value.is_finite() {
            continue;
        }
        let sys_id: String = row.try_get(0)?;
        let indicator = match indicators.entry(sys_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let sys_id = entry.key().clone();
                entry.insert(Indicator {
                    sys_id,
                    number: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                    name: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                    control: row.try_get(3)?,
                    readings: Vec::new(),
                })
            }
        };
        indicator.readings.push(Reading { sys_id: row.try_get(4)?, collected, value });
    }
    let mut indicators: Vec<Indicator> = indicators.into_values().collect();
    for indicator in &mut indicators {
        indicator.readings.sort_by(|a, b| a.collected.cmp(&b.collected).then_with(|| a.sys_id.cmp(&b.sys_id)));
    }
    indicators.sort_by(|a, b| a.sys_id.cmp(&b.sys_id));
    Ok(indicators)
}

/// What the analysis is asked.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Seconds since the epoch the window ends at (the sync's time).
    pub as_of: i64,
    pub window_days: i64,
    pub threshold: f64,
}

/// Usual values: their median and the robust estimate of their spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub median: f64,
    /// 0 when every value is the median.
    pub scale: f64,
    pub values: usize,
}

impl Baseline {
    /// None for no values.
    pub fn of(values: &[f64]) -> Option<Baseline> {
        let median = median_of(values.to_vec())?;
        let deviations: Vec<f64> = values.iter().map(|value| (value - median).abs()).collect();
        let mad = median_of(deviations.clone()).unwrap_or_default();
        let scale = if mad > 0.0 {
            MAD_TO_SIGMA * mad
        } else {
            MEAN_AD_TO_SIGMA * deviations.iter().sum::<f64>() / deviations.len() as f64
        };
        Some(Baseline { median, scale, values: values.len() })
    }

    /// The robust z-score of `value`.
    pub fn z(&self, value: f64) -> f64 {
        let deviation = value - self.median;
        if self.scale > 0.0 {
            (deviation / self.scale).clamp(-MAX_Z, MAX_Z)
        } else if deviation == 0.0 {
            0.0
        } else {
            MAX_Z.copysign(deviation)
        }
    }
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}

/// The weekday of a time, 0 to 6 (UTC; 0 is Thursday, as 1970-01-01 was).
fn weekday(seconds: i64) -> usize {
    seconds.div_euclid(DAY).rem_euclid(7) as usize
}

/// An indicator's usual values: overall, and per weekday where there are enough.
struct Profile {
    overall: Baseline,
    by_weekday: [Option<Baseline>; 7],
}

impl Profile {
    fn of(earlier: &[&Reading]) -> Option<Profile> {
        if earlier.len() < MIN_BASELINE {
            return None;
        }
        let values: Vec<f64> = earlier.iter().map(|reading| reading.value).collect();
        let mut by_weekday: [Option<Baseline>; 7] = Default::default();
        for (day, baseline) in by_weekday.iter_mut().enumerate() {
            let same_day: Vec<f64> =
                earlier.iter().filter(|reading| weekday(reading.collected) == day).map(|r| r.value).collect();
            if same_day.len() >= MIN_SEASONAL {
                *baseline = Baseline::of(&same_day);
            }
        }
        Some(Profile { overall: Baseline::of(&values)?, by_weekday })
    }

    /// The baseline a reading is judged against, and whether it is its weekday's.
    fn for_reading(&self, reading: &Reading) -> (Baseline, bool) {
        match self.by_weekday[weekday(reading.collected)] {
            Some(seasonal) => (seasonal, true),
            None => (self.overall, false),
        }
    }
}

/// A result per indicator (of `only`, else all) with results in the window and enough earlier
/// ones; INDICATOR_ANOMALY when any is anomalous. The score is the share of the window's
/// values within the usual range, in percent.
pub fn analyze(
    indicators: &[Indicator],
    only: &[String],
    settings: Settings,
    links: &Links<'_>,
) -> (Vec<AnalysisResult>, Summary) {
    let window_start = settings.as_of - settings.window_days * DAY;
    let mut summary = Summary::default();
    let mut results = Vec::new();
    for indicator in indicators.iter().filter(|i| only.is_empty() || only.contains(&i.sys_id)) {
        let (earlier, window): (Vec<&Reading>, Vec<&Reading>) = indicator
            .readings
            .iter()
            .filter(|reading| reading.collected <= settings.as_of)
            .partition(|reading| reading.collected <= window_start);
        if window.is_empty() {
            continue;
        }
        let Some(profile) = Profile::of(&earlier) else {
            summary.without_baseline += 1;
            continue;
        };
        summary.indicators += 1;
        summary.results += window.len();
        // (reading, z, baseline, seasonal) of the anomalous, the most extreme first.
        let mut anomalous: Vec<(&Reading, f64, Baseline, bool)> = window
            .iter()
            .map(|reading| {
                let (baseline, seasonal) = profile.for_reading(reading);
                (*reading, baseline.z(reading.value), baseline, seasonal)
            })
            .filter(|(_, z, ..)| z.abs() >= settings.threshold)
            .collect();
        anomalous.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.sys_id.cmp(&b.0.sys_id)));
        summary.anomalies += anomalous.len();
        let display = if indicator.number.is_empty() { indicator.name.clone() } else { indicator.number.clone() };
        let mut values: HashMap<String, f64> = [
            ("results".to_string(), window.len() as f64),
            ("anomalies".to_string(), anomalous.len() as f64),
            ("baseline_results".to_string(), earlier.len() as f64),
            ("median".to_string(), profile.overall.median),
            ("scale".to_string(), profile.overall.scale),
            ("threshold".to_string(), settings.threshold),
            ("window_days".to_string(), settings.window_days as f64),
        ]
        .into_iter()
        .collect();
        let mut sources = Vec::new();
        let mut findings = Vec::new();
        if let Some((worst, z, baseline, seasonal)) = anomalous.first() {
            summary.with_anomalies += 1;
            findings.push(INDICATOR_ANOMALY.to_string());
            values.insert("worst_value".into(), worst.value);
            values.insert("worst_z".into(), *z);
            values.insert("worst_median".into(), baseline.median);
            values.insert("worst_scale".into(), baseline.scale);
            values.insert("seasonal".into(), if *seasonal { 1.0 } else { 0.0 });
            for (reading, ..) in anomalous.iter().take(LISTED) {
                let when = complianceiq_servicenow::datetime::format(reading.collected);
                let label = format!("{} on {}", number(reading.value), &when[..when.len().min(10)]);
                sources.push(links.record("sn_grc_indicator_result", &reading.sys_id, &label));
            }
        }
        if let Some(control) = &indicator.control {
            sources.push(links.record("sn_compliance_control", control, control));
        }
        let normal = window.len() - anomalous.len();
        results.push(AnalysisResult {
            subject: Some(links.record("sn_grc_indicator", &indicator.sys_id, &display)),
            score: Some(one_decimal(100.0 * normal as f64 / window.len() as f64)),
            values,
            findings,
            sources,
            ..Default::default()
        });
    }
    (results, summary)
}

/// A value as a person reads it.
fn number(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.2}") }
}

/// Counts of a run, for the job's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Indicators judged (results in the window and enough earlier ones).
    pub indicators: usize,
    pub with_anomalies: usize,
    /// Results in the window of the indicators judged.
    pub results: usize,
    pub anomalies: usize,
    /// Indicators with results in the window but too few earlier ones.
    pub without_baseline: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 20_000 * DAY;

    fn reading(index: usize, collected: i64, value: f64) -> Reading {
        Reading { sys_id: format!("r{index:03}"), collected, value }
    }

    fn indicator(readings: Vec<Reading>) -> Indicator {
        Indicator { sys_id: "ind".into(), number: "IND0001".into(), readings, ..Default::default() }
    }

    fn settings() -> Settings {
        Settings { as_of: NOW, window_days: 30, threshold: DEFAULT_THRESHOLD }
    }

    fn run(indicator: &Indicator) -> AnalysisResult {
        let (mut results, _) = analyze(std::slice::from_ref(indicator), &[], settings(), &Links { instance_url: "" });
        assert_eq!(results.len(), 1);
        results.remove(0)
    }

    #[test]
    fn the_median_and_mad_resist_the_outliers_they_judge() {
        let baseline = Baseline::of(&[10.0, 11.0, 9.0, 10.0, 1000.0]).unwrap();
        assert_eq!(baseline.median, 10.0);
        // Deviations 0, 1, 1, 0, 990: MAD 1.
        assert!((baseline.scale - MAD_TO_SIGMA).abs() < 1e-12);
        assert!(baseline.z(1000.0) > 600.0);
        // Over half the values equal: the mean absolute deviation stands in for the MAD.
        let flat = Baseline::of(&[5.0, 5.0, 5.0, 7.0]).unwrap();
        assert!((flat.scale - MEAN_AD_TO_SIGMA * 0.5).abs() < 1e-12);
        let constant = Baseline::of(&[5.0; 4]).unwrap();
        assert_eq!((constant.z(5.0), constant.z(4.0)), (0.0, -MAX_Z));
    }

    #[test]
    fn a_planted_value_is_found_and_ordinary_noise_is_not() {
        // Daily values 90–99 for a year, one of them planted at 250 in the window.
        let mut readings: Vec<Reading> =
            (0..365).map(|day| reading(day, NOW - (364 - day as i64) * DAY, 90.0 + (day * 7 % 10) as f64)).collect();
        readings[350].value = 250.0;
        let planted = readings[350].sys_id.clone();
        let result = run(&indicator(readings));
        assert_eq!(result.findings, vec![INDICATOR_ANOMALY]);
        assert_eq!(result.values["anomalies"], 1.0);
        assert_eq!(result.sources[0].sys_id, planted);
        assert_eq!(result.values["worst_value"], 250.0);
        assert_eq!(result.score, Some(one_decimal(100.0 * 29.0 / 30.0)));
    }

    #[test]
    fn a_weekly_pattern_is_usual_but_the_same_value_on_another_weekday_is_not() {
        // Weekend days (weekday 2 and 3: Saturday and Sunday) read about 20, the others about 95.
        let usual = |collected: i64, jitter: f64| {
            if matches!(weekday(collected), 2 | 3) { 20.0 + jitter } else { 95.0 + jitter }
        };
        let mut readings: Vec<Reading> = (0..200)
            .map(|day| {
                let collected = NOW - (199 - day as i64) * DAY;
                reading(day, collected, usual(collected, (day % 3) as f64))
            })
            .collect();
        let result = run(&indicator(readings.clone()));
        assert!(result.findings.is_empty(), "weekends read low every week: {:?}", result.values);
        // The weekend's value on a weekday is anomalous.
        let weekday_index = (190..200).find(|&i| !matches!(weekday(readings[i].collected), 2 | 3)).unwrap();
        readings[weekday_index].value = 20.0;
        let result = run(&indicator(readings));
        assert_eq!(result.findings, vec![INDICATOR_ANOMALY]);
        assert_eq!(result.values["seasonal"], 1.0);
        assert_eq!(result.values["anomalies"], 1.0);
    }

    #[test]
    fn too_little_history_judges_nothing_and_only_restricts() {
        let readings: Vec<Reading> = (0..12).map(|day| reading(day, NOW - (11 - day as i64) * DAY, 1.0)).collect();
        let (results, summary) = analyze(&[indicator(readings)], &[], settings(), &Links { instance_url: "" });
        assert!(results.is_empty());
        assert_eq!(summary.without_baseline, 1);
        let readings: Vec<Reading> = (0..100).map(|day| reading(day, NOW - (99 - day as i64) * DAY, 1.0)).collect();
        let (results, _) =
            analyze(&[indicator(readings)], &["other".to_string()], settings(), &Links { instance_url: "" });
        assert!(results.is_empty());
    }
}
