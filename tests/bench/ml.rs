//! The control failure model: training time for `CIQ_BENCH_CONTROLS` controls (default 1,000)
//! × a year of weekly indicator results, prediction latency for one control and for a batch
//! of 1,000, and the same features and split run through scikit-learn's LogisticRegression
//! (`tests/bench/ml_reference.py`, with `CIQ_BENCH_PYTHON` or the bench venv's Python): the
//! test month's ROC AUC of both. Prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench ml` (part of `make bench`). The data has the
//! simulator's structure: a fifth of the controls fail 60 % of their tests, the others 8 %;
//! issues of priority 1–3 open on failing controls now and then; turning points (a fifth of
//! the sound controls were failing until a remediation, two fifths of the failing ones began
//! failing, 20–260 days before the year's end), each with the issue that tracked the spell.

use std::io::Write;
use std::time::{Duration, Instant};

use complianceiq_ml::failure::{self, Algorithm, ControlFacts, IssueSpan, Options, Progress};

const DAY: i64 = 86_400;
const WEEKS: i64 = 52;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (no dependency for a bench's data).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn population(controls: usize) -> Vec<ControlFacts> {
    let mut rng = Rng(2026);
    (0..controls)
        .map(|index| {
            let failing = rng.next() < 0.2;
            let turns = rng.next() < if failing { 0.4 } else { 0.2 };
            let turn = (WEEKS * 7 - 20 - (rng.next() * 240.0) as i64) * DAY;
            // Remediated at `turn`: failing before. Began failing at `turn`: failing since.
            let failing_at = |time: i64| if turns { (time >= turn) == failing } else { failing };
            let mut results = Vec::new();
            let mut first_failure_in_spell = None;
            for week in 0..WEEKS {
                let collected = week * 7 * DAY + (rng.next() * DAY as f64) as i64;
                let failing_then = failing_at(collected);
                let passed = rng.next() >= if failing_then { 0.6 } else { 0.08 };
                if turns && failing_then && !passed && first_failure_in_spell.is_none() {
                    first_failure_in_spell = Some(collected);
                }
                results.push((collected, passed));
            }
            let mut issues = Vec::new();
            for _ in 0..4 {
                if rng.next() < if failing { 0.5 } else { 0.05 } {
                    let opened = (rng.next() * (WEEKS * 7 * DAY) as f64) as i64;
                    let priority = 1 + (rng.next() * 3.0) as i64;
                    issues.push(IssueSpan { priority, opened, closed: Some(opened + 30 * DAY) });
                }
            }
            if let Some(opened) = first_failure_in_spell {
                let closed = (!failing).then_some(turn);
                issues.push(IssueSpan { priority: 2, opened, closed });
            }
            ControlFacts {
                sys_id: format!("{index:032x}"),
                key_control: rng.next() < 0.3,
                weighting: Some(1 + (rng.next() * 10.0) as i64),
                frequency: "weekly".into(),
                results,
                issues,
            }
        })
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Writes the split as CSV (`set,failed,<features>`) and runs the reference; its test AUC.
fn reference_auc(controls: &[ControlFacts], as_of: i64, l2: f64) -> Option<f64> {
    let python = std::env::var("CIQ_BENCH_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/bench-venv/bin/python").to_string());
    let examples = failure::examples(controls, as_of);
    let split = failure::split(&examples)?;
    let path = std::env::temp_dir().join(format!("ciq-ml-bench-{}.csv", std::process::id()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).ok()?);
    writeln!(file, "set,failed,{}", failure::FEATURES.join(",")).ok()?;
    let sets = [("fit", &split.training), ("fit", &split.validation), ("test", &split.test)];
    for (set, examples) in sets {
        for example in examples.iter() {
            let features: Vec<String> = example.features.iter().map(|x| x.to_string()).collect();
            writeln!(file, "{set},{},{}", u8::from(example.failed), features.join(",")).ok()?;
        }
    }
    file.flush().ok()?;
    drop(file);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/ml_reference.py");
    let output = std::process::Command::new(&python).arg(script).arg(&path).arg(l2.to_string()).output();
    std::fs::remove_file(&path).ok();
    match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().parse().ok(),
        Ok(output) => {
            eprintln!("the reference failed: {}", String::from_utf8_lossy(&output.stderr));
            None
        }
        Err(error) => {
            eprintln!("no reference ({python}: {error}); make bench installs it");
            None
        }
    }
}

fn main() {
    let count = setting("CIQ_BENCH_CONTROLS", 1000) as usize;
    let controls = population(count);
    let as_of = WEEKS * 7 * DAY;
    let results: usize = controls.iter().map(|control| control.results.len()).sum();

    let trained_with = |algorithm: Option<Algorithm>| {
        let mut times = Vec::new();
        let mut trained = None;
        for _ in 0..3 {
            let started = Instant::now();
            let options = Options { algorithm, ..Default::default() };
            trained = Some(failure::train(&controls, as_of, options, &Progress::default()).expect("a model"));
            times.push(started.elapsed());
        }
        (trained.expect("trained"), median(times))
    };
    let runs = [
        ("logistic", trained_with(Some(Algorithm::Logistic))),
        ("random forest", trained_with(Some(Algorithm::RandomForest))),
        ("chosen on validation", trained_with(None)),
    ];

    println!(
        "| model | controls | indicator results | training examples | test examples | training s (median of 3) | predict 1 µs | predict 1,000 ms | test AUC | test Brier |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, (trained, training)) in &runs {
        let model = &trained.model;
        let single = median(
            (0..1000)
                .map(|index| {
                    let started = Instant::now();
                    let features = controls[index % count].features_at(as_of + 1).expect("history");
                    std::hint::black_box(model.probability(&features));
                    std::hint::black_box(model.contributions(&features, 5));
                    started.elapsed()
                })
                .collect(),
        );
        let batch = median(
            (0..5)
                .map(|_| {
                    let started = Instant::now();
                    for control in controls.iter().cycle().take(1000) {
                        let features = control.features_at(as_of + 1).expect("history");
                        std::hint::black_box(model.probability(&features));
                        std::hint::black_box(model.contributions(&features, 5));
                    }
                    started.elapsed()
                })
                .collect(),
        );
        let chosen =
            if *name == "chosen on validation" { format!(" ({})", model.algorithm().name()) } else { String::new() };
        println!(
            "| {name}{chosen} | {count} | {results} | {} | {} | {:.2} | {:.1} | {:.2} | {:.4} | {:.4} |",
            trained.examples,
            trained.metrics["test_examples"],
            training.as_secs_f64(),
            single.as_secs_f64() * 1e6,
            batch.as_secs_f64() * 1e3,
            trained.metrics["auc"],
            trained.metrics["brier"],
        );
    }
    let logistic = &runs[0].1.0;
    println!(
        "| recency baseline | | | | | | | | {:.4} | {:.4} |",
        logistic.metrics["auc_recency_baseline"], logistic.metrics["brier_recency_baseline"]
    );
    println!("| base rate | | | | | | | | 0.5 | {:.4} |", logistic.metrics["brier_base_rate"]);
    let l2 = logistic.metrics["l2"];
    let auc = logistic.metrics["auc"];
    match reference_auc(&controls, as_of, l2) {
        Some(reference) => println!(
            "\nThe logistic model against scikit-learn on the same split (l2 = {l2}): AUC {auc:.4} against {reference:.4}, difference {:.4} (target ≤ 0.02)",
            (auc - reference).abs()
        ),
        None => println!("\nscikit-learn reference not run"),
    }
}
