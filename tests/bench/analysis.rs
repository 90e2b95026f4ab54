//! The control effectiveness analysis on 1,000 controls and 100,000 indicator results, beside
//! one SQL aggregate over the same rows in the same database (the passed and total results
//! per control in the window, as the application role, under row-level security). Prints a
//! Markdown table for BENCHMARKS.md.
//!
//! `cargo bench -p complianceiq-e2e --bench analysis` (part of `make bench`). With `CIQ_TEST_*`
//! set it also runs on PostgreSQL. `CIQ_BENCH_CONTROLS` and `CIQ_BENCH_RESULTS_PER_CONTROL`
//! change the amounts (default 1000 and 100).

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_servicenow::datetime;
use harness::{Backend, TestPlatform};
use sqlx::{AnyConnection, Connection};

use common::{ROUNDS, setting};

fn sys_id(kind: u8, index: usize) -> String {
    format!("{kind:02x}{index:030x}")
}

/// Rows of `grc_records`: (table, kind, sys_id, fields).
fn instance_rows(
    controls: usize,
    results_per_control: usize,
    now: i64,
) -> Vec<(&'static str, &'static str, String, String)> {
    let mut rows = Vec::new();
    let json = |pairs: &[(&str, String)]| {
        serde_json::to_string(&pairs.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()).unwrap()
    };
    for policy in 0..10 {
        rows.push(("sn_compliance_policy", "policy", sys_id(1, policy), json(&[("name", format!("Policy {policy}"))])));
    }
    for requirement in 0..100 {
        let fields = json(&[
            ("name", format!("R{requirement}")),
            ("active", "true".into()),
            ("document", sys_id(1, requirement % 10)),
        ]);
        rows.push(("sn_compliance_policy_statement", "requirement", sys_id(2, requirement), fields));
    }
    for control in 0..controls {
        let fields = json(&[
            ("number", format!("CTRL{control:07}")),
            ("state", if control % 10 == 0 { "draft" } else { "monitor" }.into()),
            ("status", "compliant".into()),
            ("weighting", (1 + control % 10).to_string()),
            ("content", sys_id(2, control % 100)),
            ("profile", sys_id(3, control % 50)),
        ]);
        rows.push(("sn_compliance_control", "control", sys_id(4, control), fields));
        rows.push(("sn_grc_indicator", "indicator", sys_id(5, control), json(&[("item", sys_id(4, control))])));
        if control % 5 == 0 {
            let fields = json(&[
                ("state", "1".into()),
                ("priority", (1 + control % 4).to_string()),
                ("item", sys_id(4, control)),
            ]);
            rows.push(("sn_grc_issue", "issue", sys_id(6, control), fields));
        }
        for result in 0..results_per_control {
            // Spread over the 90-day window.
            let collected = now - ((result * 89 * 86_400) / results_per_control) as i64 - 60;
            let fields = json(&[
                ("collection_date", datetime::format(collected)),
                ("passed", ((control + result) % 7 != 0).to_string()),
                ("indicator", sys_id(5, control)),
                ("value", "90".into()),
            ]);
            rows.push((
                "sn_grc_indicator_result",
                "indicator_result",
                sys_id(7, control * results_per_control + result),
                fields,
            ));
        }
    }
    rows
}

struct Measured {
    backend: &'static str,
    controls: usize,
    results: usize,
    analysis: Duration,
    aggregate: Duration,
}

async fn measure(backend: Backend, controls: usize, results_per_control: usize) -> Measured {
    let platform = TestPlatform::start(backend).await;
    let tenant = platform.tenant("Bench Analysis").await;
    let instance = uuid::Uuid::now_v7().to_string();
    let now = datetime::parse(&datetime::format(complianceiq_kit::time::now_micros() / 1_000_000)).unwrap();
    sqlx::any::install_default_drivers();
    let mut owner = AnyConnection::connect(&platform.owner_database_url(DatabaseGroup::Analysis)).await.unwrap();
    let rows = instance_rows(controls, results_per_control, now);
    for page in rows.chunks(200) {
        let placeholders: Vec<String> = (0..page.len())
            .map(|row| {
                let base = row * 5;
                format!(
                    "($1, $2, ${}, ${}, ${}, '2026-01-01 00:00:00', ${}, ${}, 0, 0)",
                    base + 3,
                    base + 4,
                    base + 5,
                    base + 6,
                    base + 7
                )
            })
            .collect();
        let statement = format!(
            "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, \
             content_hash, first_synced_at, synced_at) VALUES {}",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(tenant.id()).bind(&instance);
        for (table, kind, id, fields) in page {
            query = query.bind(*table).bind(id.clone()).bind(*kind).bind(fields.clone()).bind("h");
        }
        query.execute(&mut owner).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO grc_instances (organization_id, instance_id, url, last_sync_run_id, data_as_of, updated_at) \
         VALUES ($1, $2, '', 'bench', $3, 0)",
    )
    .bind(tenant.id())
    .bind(&instance)
    .bind(datetime::format(now))
    .execute(&mut owner)
    .await
    .unwrap();
    if backend == Backend::Servers {
        // As after a sync's bulk load: the planner knows the table's size.
        sqlx::query("ANALYZE grc_records").execute(&mut owner).await.unwrap();
    }
    owner.close().await.ok();

    let window = (datetime::format(now - 90 * 86_400), datetime::format(now));
    let compared = common::analysis_beside_aggregate(&platform, backend, &tenant, &instance, |_| window.clone()).await;
    let (analysis, aggregate, rows) = (compared.analysis, compared.aggregate, compared.rows);
    assert_eq!(rows, controls, "every control has results in the window");
    platform.stop().await;
    Measured {
        backend: if backend == Backend::Embedded { "SQLite" } else { "PostgreSQL" },
        controls,
        results: controls * results_per_control,
        analysis,
        aggregate,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let controls = setting("CIQ_BENCH_CONTROLS", 1000) as usize;
        let per_control = setting("CIQ_BENCH_RESULTS_PER_CONTROL", 100) as usize;
        let mut results = vec![measure(Backend::Embedded, controls, per_control).await];
        if std::env::var("CIQ_TEST_POSTGRES_URL").is_ok() {
            results.push(measure(Backend::Servers, controls, per_control).await);
        }
        println!("Median of {ROUNDS} runs each.\n");
        println!("| store | controls | indicator results | analysis job ms | one SQL aggregate ms | job ÷ aggregate |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for result in results {
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} |",
                result.backend,
                result.controls,
                result.results,
                result.analysis.as_secs_f64() * 1e3,
                result.aggregate.as_secs_f64() * 1e3,
                result.analysis.as_secs_f64() / result.aggregate.as_secs_f64()
            );
        }
    });
}
