//! Metric time series from the history of analyses: names, buckets and their means.

use std::collections::BTreeMap;

use complianceiq_proto::complianceiq::common::v1::{DataPoint, Interval, TimeSeries};
use time::{Date, Month, OffsetDateTime};

use crate::store::Snapshot;

/// The standard metrics, each read from the history entries that carry it: (name, the
/// analysis type whose entries carry it or "" for every entry, unit).
pub const STANDARD: &[(&str, &str, &str)] = &[
    ("posture_score", "", "score"),
    ("open_insights", "", "insights"),
    ("control_effectiveness_score", "control_effectiveness", "score"),
    ("risk_mitigation_score", "risk_correlation", "score"),
    ("compliance_coverage", "compliance_gap", "percent"),
    ("failure_probability", "predictive", "percent"),
];

/// A metric a request can name: a standard one, or `<analysis type>.<metric of its summary>`
/// (e.g. `control_effectiveness.ineffective`).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricName {
    pub name: String,
    analysis_type: String,
    summary_metric: Option<String>,
    unit: String,
}

impl MetricName {
    /// `None` when the name is neither standard nor of the `<type>.<metric>` form.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some((_, analysis_type, unit)) = STANDARD.iter().find(|(standard, ..)| *standard == name) {
            return Some(Self {
                name: name.into(),
                analysis_type: analysis_type.to_string(),
                summary_metric: None,
                unit: unit.to_string(),
            });
        }
        let (analysis_type, metric) = name.split_once('.')?;
        let known =
            STANDARD.iter().any(|(_, standard_type, _)| !standard_type.is_empty() && *standard_type == analysis_type);
        (known && !metric.is_empty()).then(|| Self {
            name: name.into(),
            analysis_type: analysis_type.into(),
            summary_metric: Some(metric.into()),
            unit: String::new(),
        })
    }

    /// The value an entry gives this metric, if it carries it.
    pub fn value(&self, snapshot: &Snapshot) -> Option<f64> {
        if !self.analysis_type.is_empty() && snapshot.analysis_type != self.analysis_type {
            return None;
        }
        match (self.name.as_str(), &self.summary_metric) {
            (_, Some(metric)) => snapshot.metrics.get(metric).copied(),
            ("posture_score", None) => Some(snapshot.posture_score),
            ("open_insights", None) => Some(snapshot.open_by_severity.values().sum::<i64>() as f64),
            _ => Some(snapshot.score),
        }
    }
}

/// The interval for a period when none is asked for: about 24 to 100 points.
pub fn default_interval((start, end): (i64, i64)) -> Interval {
    let days = end.saturating_sub(start) / 86_400_000_000;
    match days {
        ..=3 => Interval::Hour,
        4..=100 => Interval::Day,
        101..=730 => Interval::Week,
        _ => Interval::Month,
    }
}

/// The start (microseconds, UTC) of the bucket holding `micros`.
pub fn bucket_start(micros: i64, interval: Interval) -> i64 {
    let seconds = micros.div_euclid(1_000_000);
    let day = seconds.div_euclid(86_400) * 86_400;
    let start = match interval {
        Interval::Hour => seconds.div_euclid(3_600) * 3_600,
        Interval::Day | Interval::Unspecified => day,
        // 1970-01-01 was a Thursday; ISO weeks start on Monday.
        Interval::Week => day - ((day / 86_400 + 3).rem_euclid(7)) * 86_400,
        Interval::Month | Interval::Quarter => {
            let date = OffsetDateTime::from_unix_timestamp(seconds).map(|t| t.date()).unwrap_or(Date::MIN);
            let month = date.month() as u8;
            let first = if interval == Interval::Quarter { (month - 1) / 3 * 3 + 1 } else { month };
            let month = Month::try_from(first).unwrap_or(Month::January);
            Date::from_calendar_date(date.year(), month, 1)
                .map(|date| date.midnight().assume_utc().unix_timestamp())
                .unwrap_or(day)
        }
    };
    start * 1_000_000
}

/// One series per metric: the mean of each bucket's values, buckets without a value left out.
pub fn series(metrics: &[MetricName], snapshots: &[Snapshot], interval: Interval, instance: &str) -> Vec<TimeSeries> {
    metrics
        .iter()
        .map(|metric| {
            let mut buckets: BTreeMap<i64, (f64, i64)> = BTreeMap::new();
            for snapshot in snapshots {
                if let Some(value) = metric.value(snapshot) {
                    let bucket = buckets.entry(bucket_start(snapshot.created_at, interval)).or_default();
                    bucket.0 += value;
                    bucket.1 += 1;
                }
            }
            TimeSeries {
                metric: metric.name.clone(),
                labels: [("instance_id".to_string(), instance.to_string())].into_iter().collect(),
                points: buckets
                    .into_iter()
                    .map(|(start, (sum, count))| DataPoint {
                        time: Some(complianceiq_kit::time::to_timestamp(start)),
                        value: (10.0 * sum / count as f64).round() / 10.0,
                        sample_count: count,
                    })
                    .collect(),
                unit: metric.unit.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn at(year: i32, month: u8, day: u8, hour: u8) -> i64 {
        let date = Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap();
        date.with_hms(hour, 30, 0).unwrap().assume_utc().unix_timestamp() * 1_000_000
    }

    #[test]
    fn buckets_start_on_the_hour_day_monday_month_and_quarter() {
        let t = at(2026, 11, 19, 13); // a Thursday
        assert_eq!(bucket_start(t, Interval::Hour), at(2026, 11, 19, 13) - 30 * 60 * 1_000_000);
        assert_eq!(bucket_start(t, Interval::Day), at(2026, 11, 19, 0) - 30 * 60 * 1_000_000);
        assert_eq!(bucket_start(t, Interval::Week), at(2026, 11, 16, 0) - 30 * 60 * 1_000_000);
        assert_eq!(bucket_start(t, Interval::Month), at(2026, 11, 1, 0) - 30 * 60 * 1_000_000);
        assert_eq!(bucket_start(t, Interval::Quarter), at(2026, 10, 1, 0) - 30 * 60 * 1_000_000);
        assert_eq!(default_interval((0, 90 * DAY)), Interval::Day);
    }

    #[test]
    fn a_series_averages_the_entries_that_carry_its_metric() {
        let entry = |analysis_type: &str, created_at: i64, score: f64| Snapshot {
            analysis_type: analysis_type.into(),
            created_at,
            score,
            posture_score: score,
            metrics: [("ineffective".to_string(), score / 10.0)].into(),
            ..Default::default()
        };
        let t = at(2026, 11, 19, 1);
        let snapshots = [
            entry("control_effectiveness", t, 60.0),
            entry("compliance_gap", t + 1, 30.0),
            entry("control_effectiveness", t + DAY, 70.0),
        ];
        let names: Vec<MetricName> =
            ["control_effectiveness_score", "posture_score", "control_effectiveness.ineffective"]
                .iter()
                .map(|n| MetricName::parse(n).unwrap())
                .collect();
        let series = series(&names, &snapshots, Interval::Day, "i");
        let points = |index: usize| series[index].points.iter().map(|p| (p.value, p.sample_count)).collect::<Vec<_>>();
        assert_eq!(points(0), [(60.0, 1), (70.0, 1)]);
        assert_eq!(points(1), [(45.0, 2), (70.0, 1)]);
        assert_eq!(points(2), [(6.0, 1), (7.0, 1)]);
        assert!(MetricName::parse("nonsense").is_none());
        assert!(MetricName::parse("unknown_type.metric").is_none());
    }
}
