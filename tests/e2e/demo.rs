//! `complianceiq dev` as a new person meets it (what `make run` starts): the demo
//! organization, its ServiceNow simulator synced, and analyses and insights to read right
//! after start, through the gateway's REST API only.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::time::Instant;

use crate::distributed::{binary, lease_ports};
use crate::gateway::rest_at;
use crate::harness::unique_suffix;

const ANALYSES: [&str; 3] =
    ["ANALYSIS_TYPE_CONTROL_EFFECTIVENESS", "ANALYSIS_TYPE_RISK_CORRELATION", "ANALYSIS_TYPE_COMPLIANCE_GAP"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_organization_shows_analyses_and_insights_after_start() {
    let data_dir = std::env::temp_dir().join(format!("ciq-demo-{}", unique_suffix()));
    let mut design_ports: Vec<u16> = complianceiq::modules().iter().map(|module| module.port).collect();
    design_ports.extend([8090, 9090]);
    let lease = lease_ports(&design_ports);
    let offset = lease.offset;
    let mut child = Command::new(binary())
        .arg("dev")
        .env("CIQ_DATA_DIR", &data_dir)
        .env("CIQ_PORT_OFFSET", offset.to_string())
        .env("CIQ_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("complianceiq dev starts");
    let outcome = std::panic::AssertUnwindSafe(demo_is_ready(&data_dir, offset));
    let outcome = futures::FutureExt::catch_unwind(outcome).await;
    child.kill().await.ok();
    std::fs::remove_dir_all(&data_dir).ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn demo_is_ready(data_dir: &std::path::Path, offset: u16) {
    let gateway = format!("http://127.0.0.1:{}", 8080 + offset);
    // The demo person's password is written once the organization is set up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let saved: Value = loop {
        if let Ok(text) = std::fs::read_to_string(data_dir.join("demo.json")) {
            break serde_json::from_str(&text).expect("demo.json is JSON");
        }
        assert!(Instant::now() < deadline, "the demo was never set up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let login = json!({"email": saved["email"], "password": saved["password"]});
    let (status, _, body) = rest_at(&gateway, Method::POST, "/api/v1/auth/login", None, Some(login)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = &body["tokens"];
    assert!(!tokens["organizationId"].as_str().unwrap_or_default().is_empty(), "signed in to the demo organization");
    let token = tokens["accessToken"].as_str().unwrap().to_string();

    // The first sync completes and the three analyses run on it, unasked.
    let deadline = Instant::now() + Duration::from_secs(180);
    let jobs = loop {
        let (status, _, body) = rest_at(&gateway, Method::GET, "/api/v1/analysis/jobs", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let jobs = body["jobs"].as_array().cloned().unwrap_or_default();
        let succeeded = |kind: &str| jobs.iter().any(|j| j["type"] == kind && j["state"] == "JOB_STATE_SUCCEEDED");
        if ANALYSES.iter().all(|kind| succeeded(kind)) {
            break jobs;
        }
        assert!(!jobs.iter().any(|job| job["state"] == "JOB_STATE_FAILED"), "{jobs:?}");
        assert!(Instant::now() < deadline, "the demo's analyses did not all succeed: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Their findings are the organization's insights, with a posture score.
    let instance = jobs[0]["instanceId"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/api/v1/insights/{instance}");
        let (status, _, body) = rest_at(&gateway, Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let insights = body["insights"].as_array().map_or(0, Vec::len);
        if insights > 0 && body["postureScore"].as_f64().is_some_and(|score| score > 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the demo shows no insights: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
