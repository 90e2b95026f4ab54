//! The ml service: a control failure model trained on a tenant's synced history, split by
//! time, checked against the simulator's own records (the split's sizes, the structure it
//! plants: non-compliant controls fail more), evaluated, versioned, used for predictions,
//! refused on bad input and invisible to another tenant.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use complianceiq_kit::config::DatabaseGroup;
use complianceiq_proto::complianceiq::instance::v1::SyncMode;
use complianceiq_proto::complianceiq::ml::v1::ml_service_client::MlServiceClient;
use complianceiq_proto::complianceiq::ml::v1::*;
use complianceiq_servicenow::datetime;
use complianceiq_servicenow::sim::{SimConfig, Simulator};
use tonic::Code;

use complianceiq_proto::complianceiq::analysis::v1::{AnalysisJob, JobState, RunPredictiveAnalysisRequest};

use crate::analysis::{all_results, is_active, records};
use crate::harness::{TestPlatform, violations};
use crate::instances::simulator;
use crate::people::{Tenant, authorized};
use crate::platform_tests;
use crate::sync::{connected, sync};

platform_tests!(
    a_control_failure_model_learns_the_tenants_history_and_predicts_for_it_alone,
    a_risk_model_learns_how_assessors_credit_controls_and_explains_each_residual,
    a_regulation_paraphrasing_a_requirement_maps_to_it_and_uncovered_clauses_are_gaps,
    trainings_and_documents_are_bounded_per_organization,
);

const DAY: i64 = 86_400;

async fn client(platform: &TestPlatform) -> MlServiceClient<tonic::transport::Channel> {
    MlServiceClient::new(platform.channel("ml").await)
}

/// Polls a model until training ends; 60 s at most.
async fn trained(platform: &TestPlatform, tenant: &Tenant, model: &Model) -> Model {
    let mut ml = client(platform).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let request = GetModelRequest { model_id: model.id.clone() };
        let current = ml.get_model(authorized(request, tenant.token())).await.unwrap().into_inner();
        if current.state() != ModelState::Training {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "model {} still training", model.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// From the simulator's records: each active control's results (time, passed) up to `as_of`,
/// oldest first, and whether ServiceNow calls the control non-compliant.
fn histories(simulator: &Simulator, as_of: i64) -> BTreeMap<String, (Vec<(i64, bool)>, bool)> {
    let controls: HashMap<String, (bool, bool)> = records(simulator, "sn_compliance_control")
        .into_iter()
        .map(|control| (control["sys_id"].clone(), (is_active(&control), control["status"] == "non_compliant")))
        .collect();
    let control_of: HashMap<String, String> = records(simulator, "sn_grc_indicator")
        .into_iter()
        .map(|indicator| (indicator["sys_id"].clone(), indicator["item"].clone()))
        .collect();
    let mut histories = BTreeMap::new();
    for result in records(simulator, "sn_grc_indicator_result") {
        let Some(control) = control_of.get(&result["indicator"]) else { continue };
        let Some((true, failing)) = controls.get(control) else { continue };
        let collected = datetime::parse(&result["collection_date"]).unwrap();
        if collected <= as_of {
            let entry = histories.entry(control.clone()).or_insert_with(|| (Vec::new(), *failing));
            entry.0.push((collected, result["passed"] == "true"));
        }
    }
    for (results, _) in histories.values_mut() {
        results.sort_unstable();
    }
    histories
}

/// ROC AUC: the share of (failed, passed) pairs the score orders right, ties counting half.
fn roc_auc(scored: &[(f64, bool)]) -> f64 {
    let (mut right, mut pairs) = (0.0, 0.0);
    for (failed_score, _) in scored.iter().filter(|(_, failed)| *failed) {
        for (passed_score, _) in scored.iter().filter(|(_, failed)| !failed) {
            pairs += 1.0;
            right += if failed_score > passed_score {
                1.0
            } else if failed_score == passed_score {
                0.5
            } else {
                0.0
            };
        }
    }
    right / pairs
}

async fn a_control_failure_model_learns_the_tenants_history_and_predicts_for_it_alone(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 2000, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Learning").await;
    let instance = connected(platform, &tenant, &running).await;
    let mut ml = client(platform).await;
    let token = tenant.token().to_string();

    // Bad input is named field by field; an instance with no synced data cannot teach.
    let bad = TrainModelRequest {
        name: " ".into(),
        kind: ModelKind::AnomalyDetection as i32,
        instance_id: "not-an-id".into(),
        parameters: [("depth".to_string(), "3".to_string()), ("l2".to_string(), "-1".to_string())].into(),
    };
    let refused = ml.train_model(authorized(bad, &token)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let fields: Vec<String> = violations(&refused).into_iter().map(|(field, _)| field).collect();
    for field in ["name", "kind", "instance_id", "parameters[depth]", "parameters[l2]"] {
        assert!(fields.contains(&field.to_string()), "{field} in {fields:?}");
    }
    let request = |name: &str, instance_id: &str| TrainModelRequest {
        name: name.into(),
        kind: ModelKind::ControlFailure as i32,
        instance_id: instance_id.into(),
        ..Default::default()
    };
    let unsynced = ml.train_model(authorized(request("Failures", &instance.id), &token)).await.unwrap_err();
    assert_eq!(unsynced.code(), Code::NotFound, "the store has no data of the instance yet: {unsynced:?}");

    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let started = ml.train_model(authorized(request("Failures", &instance.id), &token)).await.unwrap().into_inner();
    assert_eq!((started.state(), started.version), (ModelState::Training, 1));
    let model = trained(platform, &tenant, &started).await;
    assert_eq!(model.state(), ModelState::Ready, "{model:?}");

    // The split, recomputed from the simulator's records: the test set is the last 30 days
    // of results (up to the latest), the model fits everything before; an example needs an
    // earlier result of its control.
    let as_of = datetime::parse(&model.data_as_of).expect("data_as_of");
    let histories = histories(&running.simulator, as_of);
    let latest = histories.values().flat_map(|(results, _)| results.iter().skip(1).map(|(at, _)| *at)).max().unwrap();
    let (mut fitting, mut test, mut oracle) = (0, 0, Vec::new());
    for (results, non_compliant) in histories.values() {
        for (at, passed) in results.iter().skip(1) {
            if *at > latest - 30 * DAY {
                test += 1;
                oracle.push((f64::from(u8::from(*non_compliant)), !passed));
            } else {
                fitting += 1;
            }
        }
    }
    // The best any model can rank the test month: knowing which controls the simulator made
    // failing (it draws each result with that control's rate).
    let oracle = roc_auc(&oracle);
    let metrics = &model.metrics;
    assert_eq!(model.training_examples, fitting, "{metrics:?}");
    assert_eq!(metrics["test_examples"], test as f64, "{metrics:?}");
    // Thresholds: the simulator's non-compliant controls fail 60 % of their tests, the others
    // 8 %, so no model ranks the test month's failures better than the oracle (~0.80 here).
    // Some controls turned (remediated, or failing since lately, each with the issue that
    // tracked the spell), which the recency baseline follows only slowly (~0.76 here) and the
    // issue features see at once. The model must rank within 0.05 of the oracle and above the
    // baseline (~0.79 here, over ~1,100 test results), and be calibrated better than both the
    // base rate and the baseline (Brier).
    assert!(metrics["auc"] >= oracle - 0.05, "oracle {oracle}: {metrics:?}");
    assert!(metrics["auc"] > metrics["auc_recency_baseline"], "{metrics:?}");
    assert!(metrics["brier"] < metrics["brier_base_rate"], "{metrics:?}");
    assert!(metrics["brier"] < metrics["brier_recency_baseline"], "{metrics:?}");
    assert_eq!(model.features, complianceiq_ml::failure::FEATURES);
    // Logistic regression and a random forest were fitted on the training months; the lower
    // validation log loss chose.
    let (logistic, forest) = (metrics["validation_log_loss_logistic"], metrics["validation_log_loss_random_forest"]);
    let chosen = if forest < logistic { "random_forest" } else { "logistic" };
    assert_eq!(model.parameters["algorithm"], chosen, "{metrics:?}");
    assert!(!model.artifact_uri.is_empty() && !model.code_version.is_empty());

    // The evaluation of the test month repeats the training's numbers; a longer window reaches
    // into the fitting data and says so; a calibration table covers every prediction.
    let evaluate = |request: EvaluateModelRequest| {
        let mut ml = ml.clone();
        let token = token.clone();
        async move { ml.evaluate_model(authorized(request, &token)).await }
    };
    let month = EvaluateModelRequest { model_id: model.id.clone(), ..Default::default() };
    let evaluation = evaluate(month).await.unwrap().into_inner();
    assert_eq!(evaluation.example_count, test as i64);
    assert!(!evaluation.overlaps_training);
    for metric in ["auc", "brier", "auc_recency_baseline", "brier_base_rate"] {
        assert!((evaluation.metrics[metric] - metrics[metric]).abs() < 1e-9, "{metric}: {evaluation:?}");
    }
    assert_eq!(evaluation.calibration.iter().map(|band| band.count).sum::<i64>(), test as i64);
    assert_eq!(evaluation.metrics["failures"], metrics["test_failures"]);
    let quarter =
        EvaluateModelRequest { model_id: model.id.clone(), window_days: 90, threshold: 0.3, ..Default::default() };
    let quarter = evaluate(quarter).await.unwrap().into_inner();
    assert!(quarter.overlaps_training && quarter.example_count > test as i64 && quarter.threshold == 0.3);
    let bad = EvaluateModelRequest {
        model_id: model.id.clone(),
        window_days: 30,
        holdout_fraction: 0.2,
        threshold: 1.5,
        ..Default::default()
    };
    let refused = evaluate(bad).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, vec!["window_days".to_string(), "threshold".to_string()]);

    // Predictions for every active control with history, higher for the failing kind.
    let all = PredictRequest { model_id: model.id.clone(), ..Default::default() };
    let predicted = ml.predict(authorized(all, &token)).await.unwrap().into_inner();
    assert_eq!(predicted.predictions.len(), histories.len());
    let (mut failing, mut sound) = (Vec::new(), Vec::new());
    for prediction in &predicted.predictions {
        assert!((0.0..=1.0).contains(&prediction.value), "{prediction:?}");
        assert!(!prediction.feature_contributions.is_empty() && prediction.feature_contributions.len() <= 5);
        assert_eq!(prediction.target_time.as_ref().unwrap().seconds, as_of + 30 * DAY);
        let (_, non_compliant) = &histories[&prediction.record_id];
        if *non_compliant { failing.push(prediction.value) } else { sound.push(prediction.value) }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    assert!(mean(&failing) > mean(&sound) + 0.2, "failing {} against sound {}", mean(&failing), mean(&sound));

    // A batch of named records; an unknown one and a horizon out of range are named.
    let named: Vec<String> = histories.keys().take(2).cloned().collect();
    let some = PredictRequest { model_id: model.id.clone(), record_ids: named.clone(), horizon_days: 7 };
    let predicted = ml.predict(authorized(some, &token)).await.unwrap().into_inner();
    assert_eq!(predicted.predictions.iter().map(|p| p.record_id.clone()).collect::<Vec<_>>(), named);
    let unknown = PredictRequest {
        model_id: model.id.clone(),
        record_ids: vec![named[0].clone(), "0123456789abcdef0123456789abcdef".into()],
        horizon_days: 400,
    };
    let refused = ml.predict(authorized(unknown, &token)).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(field, _)| field).collect();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(fields.contains(&"horizon_days".to_string()), "{fields:?}");
    let unknown = PredictRequest {
        model_id: model.id.clone(),
        record_ids: vec![named[0].clone(), "0123456789abcdef0123456789abcdef".into()],
        ..Default::default()
    };
    let refused = ml.predict(authorized(unknown, &token)).await.unwrap_err();
    assert_eq!(violations(&refused), vec![("record_ids[1]".to_string(), "UNKNOWN_RECORD".to_string())]);

    // A second version of the name, a forest asked for, archives the first.
    let forest = TrainModelRequest {
        parameters: [("algorithm".to_string(), "random_forest".to_string())].into(),
        ..request("Failures", &instance.id)
    };
    let second = ml.train_model(authorized(forest, &token)).await.unwrap().into_inner();
    assert_eq!(second.version, 2);
    let second_trained = trained(platform, &tenant, &second).await;
    assert_eq!(second_trained.state(), ModelState::Ready);
    assert_eq!(second_trained.parameters["algorithm"], "random_forest");
    assert!(second_trained.metrics["brier"] < second_trained.metrics["brier_base_rate"], "{second_trained:?}");
    let first = ml.get_model(authorized(GetModelRequest { model_id: model.id.clone() }, &token)).await.unwrap();
    assert_eq!(first.into_inner().state(), ModelState::Archived);
    let trained_events = "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'model.trained'";
    assert_eq!(platform.stored_count(DatabaseGroup::Analysis, trained_events).await, 2, "model.trained per version");
    let ready = ListModelsRequest { state: ModelState::Ready as i32, ..Default::default() };
    let listed = ml.list_models(authorized(ready, &token)).await.unwrap().into_inner();
    assert_eq!(listed.models.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![second.id.clone()]);
    let paged = ml.list_models(authorized(ListModelsRequest { page_size: 1, ..Default::default() }, &token)).await;
    let paged = paged.unwrap().into_inner();
    assert_eq!((paged.models.len(), paged.models[0].id.clone()), (1, second.id.clone()), "newest first");
    let next = ListModelsRequest { page_size: 1, page_token: paged.next_page_token, ..Default::default() };
    let next = ml.list_models(authorized(next, &token)).await.unwrap().into_inner();
    assert_eq!((next.models[0].id.clone(), next.next_page_token), (model.id.clone(), String::new()));

    // The newest version becomes the default; the predictive analysis then scores with it: its
    // probabilities are the model's, and the job names the model it used.
    let default = SetDefaultModelRequest { model_id: second.id.clone() };
    assert!(ml.set_default_model(authorized(default, &token)).await.unwrap().into_inner().is_default);
    let job = predictive_job(platform, &tenant, &instance.id).await;
    assert_eq!(job.parameters.get("model_id"), Some(&second.id), "{job:?}");
    let analysed: BTreeMap<String, f64> = all_results(platform, &tenant, &job.id)
        .await
        .into_iter()
        .map(|result| (result.subject.unwrap().sys_id, result.score.unwrap()))
        .collect();
    let all = PredictRequest { model_id: second.id.clone(), ..Default::default() };
    let predicted: BTreeMap<String, f64> = ml
        .predict(authorized(all, &token))
        .await
        .unwrap()
        .into_inner()
        .predictions
        .into_iter()
        .map(|prediction| (prediction.record_id, (1000.0 * prediction.value).round() / 10.0))
        .collect();
    assert_eq!(analysed, predicted, "the analysis's probabilities are the default model's");
    let summary = job.summary.unwrap();
    let model_auc = summary.metrics.iter().find(|metric| metric.name == "model_auc").map(|metric| metric.value);
    assert_eq!(model_auc, Some(second_trained.metrics["auc"]));
    // One default per kind: naming the first (archived, still usable) moves it.
    let default = SetDefaultModelRequest { model_id: model.id.clone() };
    assert!(ml.set_default_model(authorized(default, &token)).await.unwrap().into_inner().is_default);
    let defaults: Vec<String> = ml
        .list_models(authorized(ListModelsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .filter(|m| m.is_default)
        .map(|m| m.id)
        .collect();
    assert_eq!(defaults, vec![model.id.clone()]);
    let bad = ml.set_default_model(authorized(SetDefaultModelRequest { model_id: "x".into() }, &token)).await;
    assert_eq!(violations(&bad.unwrap_err())[0].0, "model_id");
    // ScoreControls is the analysis service's alone: the edge refuses it.
    let score = "complianceiq.ml.v1.MlService/ScoreControls";
    let edge = tonic::transport::Channel::from_shared(format!("http://{}", platform.address("gateway")))
        .unwrap()
        .connect_lazy();
    let status = crate::harness::call_raw(edge, score, Some(&token)).await.unwrap_err();
    assert_eq!((status.code(), crate::harness::reason(&status).as_str()), (Code::PermissionDenied, "INTERNAL_RPC"));
    let status = crate::harness::call_raw(platform.channel_as("gateway", "ml"), score, None).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Another tenant sees, uses and deletes nothing, and cannot train on this instance.
    let other = platform.tenant("Other learner").await;
    let hidden = ml.get_model(authorized(GetModelRequest { model_id: second.id.clone() }, other.token())).await;
    assert_eq!(hidden.unwrap_err().code(), Code::NotFound);
    let used = PredictRequest { model_id: second.id.clone(), ..Default::default() };
    assert_eq!(ml.predict(authorized(used, other.token())).await.unwrap_err().code(), Code::NotFound);
    let none = ml.list_models(authorized(ListModelsRequest::default(), other.token())).await.unwrap().into_inner();
    assert!(none.models.is_empty());
    let deleted = ml.delete_model(authorized(DeleteModelRequest { model_id: second.id.clone() }, other.token())).await;
    assert_eq!(deleted.unwrap_err().code(), Code::NotFound);
    let judged = EvaluateModelRequest { model_id: second.id.clone(), ..Default::default() };
    assert_eq!(ml.evaluate_model(authorized(judged, other.token())).await.unwrap_err().code(), Code::NotFound);
    let borrowed = ml.train_model(authorized(request("Borrowed", &instance.id), other.token())).await.unwrap_err();
    assert_eq!(borrowed.code(), Code::NotFound);
    let taken = ml.set_default_model(authorized(SetDefaultModelRequest { model_id: second.id.clone() }, other.token()));
    assert_eq!(taken.await.unwrap_err().code(), Code::NotFound);

    // Deleting a model ends its use.
    ml.delete_model(authorized(DeleteModelRequest { model_id: model.id.clone() }, &token)).await.unwrap();
    let gone = PredictRequest { model_id: model.id.clone(), ..Default::default() };
    assert_eq!(ml.predict(authorized(gone, &token)).await.unwrap_err().code(), Code::NotFound);
    let still = PredictRequest { model_id: second.id.clone(), record_ids: named, ..Default::default() };
    assert_eq!(ml.predict(authorized(still, &token)).await.unwrap().into_inner().predictions.len(), 2);
    // The default was the deleted model: the predictive analysis is back to its baseline.
    let job = predictive_job(platform, &tenant, &instance.id).await;
    assert!(!job.parameters.contains_key("model_id"), "{job:?}");
    // A model fitted on another feature list (an earlier platform version) is refused, not
    // read with the features in the wrong places.
    let older = format!("UPDATE ml_models SET features = '[\"failure_rate_30d\"]' WHERE id = '{}'", second.id);
    platform.execute_as_owner(DatabaseGroup::Analysis, &older).await;
    let outdated = PredictRequest { model_id: second.id.clone(), ..Default::default() };
    let refused = ml.predict(authorized(outdated, &token)).await.unwrap_err();
    assert_eq!(
        (refused.code(), crate::harness::reason(&refused).as_str()),
        (Code::FailedPrecondition, "MODEL_OUTDATED")
    );

    // A training reports its progress and stops when asked (between two fits), keeping nothing;
    // only a training can be cancelled.
    let stopped = ml.train_model(authorized(request("Stopped", &instance.id), &token)).await.unwrap().into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let current = GetModelRequest { model_id: stopped.id.clone() };
        let current = ml.get_model(authorized(current, &token)).await.unwrap().into_inner();
        assert_eq!(current.state(), ModelState::Training, "{current:?}");
        if current.progress_percent > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no progress reported: {current:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel = || CancelTrainingRequest { model_id: stopped.id.clone() };
    let asked = ml.cancel_training(authorized(cancel(), &token)).await.unwrap().into_inner();
    let ended = trained(platform, &tenant, &asked).await;
    assert_eq!((ended.state(), ended.error.as_str()), (ModelState::Cancelled, "cancelled on request"), "{ended:?}");
    assert!(ended.progress_percent < 100 && ended.artifact_uri.is_empty() && ended.metrics.is_empty(), "{ended:?}");
    let again = ml.cancel_training(authorized(cancel(), &token)).await.unwrap_err();
    assert_eq!(
        (again.code(), crate::harness::reason(&again).as_str()),
        (Code::FailedPrecondition, "MODEL_NOT_TRAINING")
    );
    let foreign = ml.cancel_training(authorized(cancel(), other.token())).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let listed = ListModelsRequest { state: ModelState::Cancelled as i32, ..Default::default() };
    let listed = ml.list_models(authorized(listed, &token)).await.unwrap().into_inner().models;
    assert_eq!(listed.into_iter().map(|m| m.id).collect::<Vec<_>>(), vec![stopped.id.clone()]);
}

async fn a_risk_model_learns_how_assessors_credit_controls_and_explains_each_residual(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 800, seed: 11, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Risk learner").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;
    let mut ml = client(platform).await;
    let token = tenant.token().to_string();
    let request = TrainModelRequest {
        name: "Residuals".into(),
        kind: ModelKind::RiskForecast as i32,
        instance_id: instance.id.clone(),
        ..Default::default()
    };
    let bad = TrainModelRequest {
        parameters: [("algorithm".to_string(), "logistic".to_string()), ("l2".to_string(), "0".to_string())].into(),
        ..request.clone()
    };
    let refused = ml.train_model(authorized(bad, &token)).await.unwrap_err();
    let fields: Vec<String> = violations(&refused).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields.len(), 2, "{fields:?}");
    assert!(fields.contains(&"parameters[algorithm]".to_string()) && fields.contains(&"parameters[l2]".to_string()));
    let started = ml.train_model(authorized(request, &token)).await.unwrap().into_inner();
    assert_eq!(started.kind(), ModelKind::RiskForecast);
    let model = trained(platform, &tenant, &started).await;
    assert_eq!(model.state(), ModelState::Ready, "{model:?}");
    assert_eq!(
        (model.parameters["algorithm"].as_str(), model.features.clone()),
        ("ridge", { complianceiq_ml::risk::FEATURES.iter().map(|name| name.to_string()).collect::<Vec<_>>() })
    );

    // From the simulator's records: the risks the split holds out (a fixed hash of the sys_id),
    // and for each risk the share of its active controls that ServiceNow calls non-compliant.
    let controls: HashMap<String, bool> = records(&running.simulator, "sn_compliance_control")
        .into_iter()
        .filter(is_active)
        .map(|control| (control["sys_id"].clone(), control["status"] == "non_compliant"))
        .collect();
    let mut linked: HashMap<String, Vec<bool>> = HashMap::new();
    for link in records(&running.simulator, "sn_risk_m2m_risk_control") {
        if let Some(failing) = controls.get(&link["sn_compliance_control"]) {
            linked.entry(link["sn_risk_risk"].clone()).or_default().push(*failing);
        }
    }
    let risks = records(&running.simulator, "sn_risk_risk");
    let held_out = risks.iter().filter(|risk| complianceiq_ml::risk::is_test(&risk["sys_id"])).count();
    let metrics = &model.metrics;
    assert_eq!(metrics["test_examples"], held_out as f64, "{metrics:?}");
    assert_eq!(model.training_examples as usize, risks.len() - held_out);
    // Thresholds: the simulator's assessors take 10 % off a risk's inherent score for a failing
    // control, 60 % for a sound one and 80 % for a sound key control (weighted, ±15 % noise,
    // rounded to a likelihood × impact): a model must land clearly nearer the recorded
    // residuals than their mean and than the analysis's rule, which credits each control by its
    // pass rate alone (MAE 1.7 against 3.2 and 3.6 here, R² 0.68, on 46 held-out risks).
    assert!(metrics["mae"] < 0.75 * metrics["mae_mean_baseline"], "{metrics:?}");
    assert!(metrics["mae"] < metrics["mae_rule_baseline"], "{metrics:?}");
    assert!(metrics["r2"] > 0.5, "{metrics:?}");

    // Its own instance: evaluated on the same held-out risks; a window of results is refused.
    let evaluation = EvaluateModelRequest { model_id: model.id.clone(), ..Default::default() };
    let evaluation = ml.evaluate_model(authorized(evaluation, &token)).await.unwrap().into_inner();
    assert_eq!(evaluation.example_count, held_out as i64);
    assert!((evaluation.metrics["mae"] - metrics["mae"]).abs() < 1e-9, "{evaluation:?}");
    let windowed = EvaluateModelRequest { model_id: model.id.clone(), window_days: 30, ..Default::default() };
    let refused = ml.evaluate_model(authorized(windowed, &token)).await.unwrap_err();
    assert_eq!(violations(&refused), vec![("window_days".to_string(), "NOT_APPLICABLE".to_string())]);

    // Every risk predicted within its band and below its inherent score, explained by at most
    // five features; risks whose controls all fail keep more of their inherent score.
    let all = PredictRequest { model_id: model.id.clone(), ..Default::default() };
    let predicted = ml.predict(authorized(all, &token)).await.unwrap().into_inner().predictions;
    assert_eq!(predicted.len(), risks.len());
    let inherent: HashMap<String, f64> =
        risks.iter().map(|risk| (risk["sys_id"].clone(), risk["inherent_score"].parse().unwrap())).collect();
    let (mut failing, mut sound) = (Vec::new(), Vec::new());
    for prediction in &predicted {
        let ceiling = inherent[&prediction.record_id];
        assert!(prediction.lower_bound <= prediction.value && prediction.value <= prediction.upper_bound);
        assert!(prediction.value <= ceiling && prediction.upper_bound <= ceiling, "{prediction:?}");
        assert!((1..=5).contains(&prediction.feature_contributions.len()), "{prediction:?}");
        match linked.get(&prediction.record_id) {
            Some(all) if all.iter().all(|failing| *failing) => failing.push(prediction.value / ceiling),
            Some(all) if all.iter().all(|failing| !failing) => sound.push(prediction.value / ceiling),
            _ => {}
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    assert!(mean(&failing) > mean(&sound) + 0.3, "failing {} against sound {}", mean(&failing), mean(&sound));
    let control = controls.keys().next().unwrap().clone();
    let wrong = PredictRequest { model_id: model.id.clone(), record_ids: vec![control], ..Default::default() };
    let refused = ml.predict(authorized(wrong, &token)).await.unwrap_err();
    assert_eq!(violations(&refused), vec![("record_ids[0]".to_string(), "UNKNOWN_RECORD".to_string())]);

    // A risk model can be its kind's default; the predictive analysis, which needs a failure
    // model, goes on with its baseline.
    let default = SetDefaultModelRequest { model_id: model.id.clone() };
    assert!(ml.set_default_model(authorized(default, &token)).await.unwrap().into_inner().is_default);
    let job = predictive_job(platform, &tenant, &instance.id).await;
    assert!(!job.parameters.contains_key("model_id"), "{job:?}");
    let other = platform.tenant("Other risk learner").await;
    let used = PredictRequest { model_id: model.id.clone(), ..Default::default() };
    assert_eq!(ml.predict(authorized(used, other.token())).await.unwrap_err().code(), Code::NotFound);
}

/// A one-page PDF showing `text` line by line in Helvetica, moving down with `Td` as word
/// processors do.
fn pdf_of(text: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut document = Document::with_version("1.5");
    let pages = document.new_object_id();
    let font = document.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"});
    let resources = document.add_object(dictionary! {"Font" => dictionary! {"F1" => font}});
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 9.into()]),
        Operation::new("Td", vec![40.into(), 800.into()]),
    ];
    for line in text.lines() {
        operations.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        operations.push(Operation::new("Td", vec![0.into(), (-11).into()]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations }.encode().unwrap();
    let content = document.add_object(Stream::new(dictionary! {}, content));
    let page = document.add_object(dictionary! {"Type" => "Page", "Parent" => pages, "Contents" => content});
    let tree = dictionary! {
        "Type" => "Pages",
        "Kids" => vec![page.into()],
        "Count" => 1,
        "Resources" => resources,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    document.objects.insert(pages, Object::Dictionary(tree));
    let catalog = document.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages});
    document.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).unwrap();
    bytes
}

/// Runs the predictive analysis of an instance to its end; it must succeed.
async fn predictive_job(platform: &TestPlatform, tenant: &Tenant, instance: &str) -> AnalysisJob {
    let mut analysis = crate::analysis::client(platform).await;
    let request = RunPredictiveAnalysisRequest { instance_id: instance.into(), ..Default::default() };
    let job = analysis.run_predictive_analysis(authorized(request, tenant.token())).await.unwrap().into_inner();
    let job = crate::analysis::ended(platform, tenant, &job).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    job
}

/// The sample regulation the repository ships (docs/samples).
const REGULATION: &str = include_str!("../../docs/samples/regulation.txt");

async fn a_regulation_paraphrasing_a_requirement_maps_to_it_and_uncovered_clauses_are_gaps(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 40, seed: 5, ..SimConfig::default() }).await;
    // One requirement restated in the organization's words; clause 4.2 of the sample
    // regulation paraphrases it ("re-examine every privileged account ... once per quarter").
    let requirement = records(&running.simulator, "sn_compliance_policy_statement")
        .into_iter()
        .find(|requirement| requirement["active"] == "true")
        .expect("an active requirement");
    let requirement = requirement["sys_id"].clone();
    let description = "Privileged accounts on production systems are reviewed every quarter by the system owner, \
                       and accounts that are no longer needed are removed.";
    let edit = [("name", "Privileged access review"), ("description", description)];
    assert!(running.simulator.edit("sn_compliance_policy_statement", &requirement, &edit));
    let implementing: Vec<String> = records(&running.simulator, "sn_compliance_control")
        .into_iter()
        .filter(|control| is_active(control) && control["content"] == requirement)
        .map(|control| control["sys_id"].clone())
        .collect();
    let tenant = platform.tenant("Regulation").await;
    let instance = connected(platform, &tenant, &running).await;
    sync(platform, &tenant, &instance.id, SyncMode::Full).await;

    let mut ml = client(platform).await;
    let request =
        ScanRegulationRequest { instance_id: instance.id.clone(), text: REGULATION.into(), ..Default::default() };
    // The store sees the completed sync shortly after the run ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let scan = loop {
        match ml.scan_regulation(authorized(request.clone(), tenant.token())).await {
            Ok(scan) => break scan.into_inner(),
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                assert!(tokio::time::Instant::now() < deadline, "the store never saw the sync: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("scanning: {status:?}"),
        }
    };
    let clause = |reference: &str| scan.clauses.iter().find(|c| c.reference == reference).expect(reference);
    let numbered: Vec<&str> = scan.clauses.iter().map(|c| c.reference.as_str()).filter(|r| !r.is_empty()).collect();
    assert_eq!(numbered, ["1.1", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2", "5.1", "5.2", "6.1", "7.1", "7.2"]);
    let planted = clause("4.2");
    let best = &planted.matches[0];
    assert_eq!(best.requirement.as_ref().unwrap().sys_id, requirement, "{planted:?}");
    assert!(best.score >= 0.3 && !planted.possible_gap, "{planted:?}");
    for term in ["privileg", "account", "quart"] {
        assert!(best.terms.iter().any(|t| t == term), "{term} explains the match: {:?}", best.terms);
    }
    let mut controls: Vec<String> = best.controls.iter().map(|c| c.sys_id.clone()).collect();
    controls.sort();
    let mut implementing = implementing;
    implementing.sort();
    assert_eq!(controls, implementing, "the requirement's active controls");
    // Subjects the organization never wrote a requirement about are possible gaps; a clause on
    // a topic it covers (incident response) is not.
    assert!(clause("7.1").possible_gap && clause("7.2").possible_gap, "{:?}", clause("7.1"));
    let incidents = clause("5.1");
    assert!(!incidents.possible_gap, "{incidents:?}");
    assert!(incidents.matches.iter().all(|m| m.terms.iter().any(|t| t == "incident")), "{incidents:?}");
    assert_eq!(scan.possible_gaps, scan.clauses.iter().filter(|c| c.possible_gap).count() as i32);
    assert!(scan.requirements_compared > 0 && !scan.data_as_of.is_empty());
    // Every match is at least the minimum score, the best first, and at most max_matches.
    for clause in &scan.clauses {
        assert!(clause.matches.len() <= 3);
        assert!(clause.matches.windows(2).all(|pair| pair[0].score >= pair[1].score));
        assert!(clause.matches.iter().all(|m| m.score >= 0.2));
    }

    // The same regulation as a PDF (a line per text line, as a word processor writes it) scans
    // to the same clauses and the same best match.
    let from_pdf =
        ScanRegulationRequest { instance_id: instance.id.clone(), pdf: pdf_of(REGULATION), ..Default::default() };
    let from_pdf = ml.scan_regulation(authorized(from_pdf, tenant.token())).await.unwrap().into_inner();
    // (Helvetica's standard encoding shows ' as a typographic apostrophe.)
    let texts = |scan: &ScanRegulationResponse| -> Vec<(String, String)> {
        scan.clauses.iter().map(|c| (c.reference.clone(), c.text.replace('\u{2019}', "'"))).collect()
    };
    assert_eq!(texts(&from_pdf), texts(&scan));
    let planted = from_pdf.clauses.iter().find(|c| c.reference == "4.2").unwrap();
    assert_eq!(planted.matches[0].requirement.as_ref().unwrap().sys_id, requirement);
    for (request, field, reason) in [
        (
            ScanRegulationRequest { text: REGULATION.into(), pdf: pdf_of("1.1 Both."), ..Default::default() },
            "pdf",
            "ONE_OF",
        ),
        (ScanRegulationRequest { pdf: b"%PDF-1.7 torn".to_vec(), ..Default::default() }, "pdf", "UNREADABLE"),
        (ScanRegulationRequest { pdf: pdf_of(""), ..Default::default() }, "pdf", "NO_TEXT"),
    ] {
        let request = ScanRegulationRequest { instance_id: instance.id.clone(), ..request };
        let status = ml.scan_regulation(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!(violations(&status), vec![(field.to_string(), reason.to_string())], "{status:?}");
    }

    // Bad input is refused, naming the field; another tenant cannot scan against the instance.
    for (request, field) in [
        (ScanRegulationRequest { text: " ".into(), ..Default::default() }, "text"),
        (ScanRegulationRequest { text: "x".repeat(1024 * 1024 + 1), ..Default::default() }, "text"),
        (ScanRegulationRequest { min_score: 1.5, ..Default::default() }, "min_score"),
        (ScanRegulationRequest { min_score: f64::NAN, ..Default::default() }, "min_score"),
        (ScanRegulationRequest { max_matches: 21, ..Default::default() }, "max_matches"),
    ] {
        let text = if request.text.is_empty() { REGULATION.to_string() } else { request.text.clone() };
        let request = ScanRegulationRequest { instance_id: instance.id.clone(), text, ..request };
        let status = ml.scan_regulation(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!((status.code(), violations(&status)[0].0.as_str()), (Code::InvalidArgument, field), "{status:?}");
    }
    let other = platform.tenant("Regulation elsewhere").await;
    let status = ml.scan_regulation(authorized(request, other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    uploaded_regulations_scan_like_sent_ones(platform, &tenant, &other, &instance.id, &texts(&scan)).await;
}

/// PUTs `bytes` to an upload link through the edge (the link names the public address).
async fn put(platform: &TestPlatform, link: &str, content_type: &str, bytes: Vec<u8>) -> (u16, String) {
    let url = url::Url::parse(link).expect("an absolute link");
    let local = format!("http://{}{}?{}", platform.address("gateway"), url.path(), url.query().unwrap_or_default());
    complianceiq_kit::crypto::install_tls_crypto_provider();
    let response = reqwest::Client::new()
        .put(local)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(bytes)
        .send()
        .await
        .expect("the edge answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A regulation uploaded as a document (a PDF, then a text) scans to the clauses of the same
/// regulation sent in the request; the link takes only its file, only its type, only with its
/// signature; another tenant cannot scan the document; an expired document is refused, and
/// its file and row are purged.
async fn uploaded_regulations_scan_like_sent_ones(
    platform: &TestPlatform,
    tenant: &Tenant,
    other: &Tenant,
    instance: &str,
    expected: &[(String, String)],
) {
    let mut ml = client(platform).await;
    let start = |file_name: &str, content_type: &str| CreateDocumentUploadRequest {
        file_name: file_name.into(),
        content_type: content_type.into(),
    };
    let upload = ml
        .create_document_upload(authorized(start("regulation.pdf", "application/pdf"), tenant.token()))
        .await
        .unwrap()
        .into_inner();
    let document = upload.document.clone().unwrap();
    assert_eq!((document.file_name.as_str(), document.organization_id.as_str()), ("regulation.pdf", tenant.id()));
    let lifetime = document.expire_time.unwrap().seconds - document.create_time.unwrap().seconds;
    assert_eq!(lifetime, 24 * 3600, "a document is kept a day");
    // Locally the edge's request limit bounds a file (4 MiB by default).
    assert_eq!(upload.max_bytes, 4 * 1024 * 1024);
    let scan = |document_id: &str| ScanRegulationRequest {
        instance_id: instance.into(),
        document_id: document_id.into(),
        ..Default::default()
    };
    let status = ml.scan_regulation(authorized(scan(&document.id), tenant.token())).await.unwrap_err();
    assert_eq!(
        (status.code(), crate::harness::reason(&status).as_str()),
        (Code::FailedPrecondition, "DOCUMENT_NOT_UPLOADED")
    );

    // Refused: another type than the document's, a tampered signature, an empty file.
    let pdf = pdf_of(REGULATION);
    let (status, body) = put(platform, &upload.upload_uri, "text/plain", pdf.clone()).await;
    assert!(status == 400 && body.contains("CONTENT_TYPE_MISMATCH"), "{status} {body}");
    let tampered = upload.upload_uri.replace("signature=", "signature=x");
    let (status, body) = put(platform, &tampered, "application/pdf", pdf.clone()).await;
    assert!(status == 403 && body.contains("LINK_INVALID"), "{status} {body}");
    let (status, body) = put(platform, &upload.upload_uri, "application/pdf", Vec::new()).await;
    assert_eq!(status, 400, "{body}");
    let too_large = vec![b' '; upload.max_bytes as usize + 1];
    let (status, body) = put(platform, &upload.upload_uri, "application/pdf", too_large).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = put(platform, &upload.upload_uri, "application/pdf", pdf).await;
    assert_eq!(status, 200, "{body}");

    let from_document = ml.scan_regulation(authorized(scan(&document.id), tenant.token())).await.unwrap().into_inner();
    let texts: Vec<(String, String)> =
        from_document.clauses.iter().map(|c| (c.reference.clone(), c.text.replace('\u{2019}', "'"))).collect();
    assert_eq!(texts, expected);
    let status = ml.scan_regulation(authorized(scan(&document.id), other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "another tenant's document: {status:?}");
    let both = ScanRegulationRequest { text: REGULATION.into(), ..scan(&document.id) };
    let status = ml.scan_regulation(authorized(both, tenant.token())).await.unwrap_err();
    assert_eq!(violations(&status), vec![("document_id".to_string(), "ONE_OF".to_string())]);

    // A text document, its type with a charset.
    let text = ml
        .create_document_upload(authorized(start("regulation.txt", "text/plain; charset=utf-8"), tenant.token()))
        .await
        .unwrap()
        .into_inner();
    let (status, body) = put(platform, &text.upload_uri, "text/plain; charset=utf-8", REGULATION.into()).await;
    assert_eq!(status, 200, "{body}");
    let text_id = text.document.unwrap().id;
    let from_text = ml.scan_regulation(authorized(scan(&text_id), tenant.token())).await.unwrap().into_inner();
    assert_eq!(from_text.clauses.len(), expected.len());
    // A second upload replaces the first.
    let shorter = "1.1 Privileged accounts are reviewed every quarter by their owner.";
    let (status, body) = put(platform, &text.upload_uri, "text/plain", shorter.into()).await;
    assert_eq!(status, 200, "{body}");
    let replaced = ml.scan_regulation(authorized(scan(&text_id), tenant.token())).await.unwrap().into_inner();
    assert_eq!(replaced.clauses.iter().map(|c| c.reference.as_str()).collect::<Vec<_>>(), ["1.1"]);

    // Bad requests name their field.
    for (request, field, reason) in [
        (start("", "application/pdf"), "file_name", "REQUIRED"),
        (start(&"a".repeat(256), "application/pdf"), "file_name", "TOO_LONG"),
        (start("r.docx", "application/msword"), "content_type", "UNSUPPORTED"),
        (start("r.pdf", ""), "content_type", "REQUIRED"),
    ] {
        let status = ml.create_document_upload(authorized(request, tenant.token())).await.unwrap_err();
        assert_eq!(violations(&status), vec![(field.to_string(), reason.to_string())], "{status:?}");
    }

    // Expired (backdated), the document is refused at once and purged by its queued job.
    let count = format!("SELECT COUNT(*) FROM ml_documents WHERE id = '{}'", document.id);
    assert_eq!(platform.stored_count(DatabaseGroup::Analysis, &count).await, 1);
    let objects = complianceiq_kit::objects::Objects::from_url(&platform.config.object_store_url()).unwrap();
    let file = format!("documents/{}/{}", tenant.id(), document.id);
    assert!(objects.get(&file).await.unwrap().is_some(), "the uploaded file is stored");
    platform
        .execute_as_owner(
            DatabaseGroup::Analysis,
            &format!(
                "UPDATE ml_documents SET expires_at = 1 WHERE id = '{0}'; \
                 UPDATE ciq_jobs SET lease_until = 1 WHERE kind = 'ml_document_expiry' AND job_id = '{0}'",
                document.id
            ),
        )
        .await;
    let status = ml.scan_regulation(authorized(scan(&document.id), tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    platform.stored_count_reaches(DatabaseGroup::Analysis, &count, 0).await;
    assert!(objects.get(&file).await.unwrap().is_none(), "the file went before its row");
    let (status, _) = put(platform, &upload.upload_uri, "application/pdf", pdf_of(REGULATION)).await;
    assert_eq!(status, 404, "a purged document takes no file");
}

/// An organization trains at most three models at once and keeps at most a hundred documents;
/// a refusal says so with RESOURCE_EXHAUSTED, and the bound lifts as trainings end and
/// documents expire. Another organization is not held back by the first one's.
async fn trainings_and_documents_are_bounded_per_organization(platform: &TestPlatform) {
    let tenant = platform.tenant("Busy").await;
    let other = platform.tenant("Idle").await;
    let mut ml = client(platform).await;
    let busy: Vec<String> = (1..=3)
        .map(|version| {
            format!(
                "('{}', 'busy-{version}', 'busy', {version}, 1, 'training', 'i', '{{}}', '{{}}', '[]', 0, 'k', '', '', '', 'u', 0)",
                tenant.id()
            )
        })
        .collect();
    platform
        .execute_as_owner(
            DatabaseGroup::Analysis,
            &format!(
                "INSERT INTO ml_models (organization_id, id, name, version, kind, state, instance_id, parameters, \
                 metrics, features, training_examples, artifact_key, data_as_of, code_version, error, created_by, \
                 created_at) VALUES {}",
                busy.join(", ")
            ),
        )
        .await;
    let train = || TrainModelRequest {
        name: "next".into(),
        kind: ModelKind::ControlFailure as i32,
        instance_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    let status = ml.train_model(authorized(train(), tenant.token())).await.unwrap_err();
    assert_eq!(
        (status.code(), crate::harness::reason(&status).as_str()),
        (Code::ResourceExhausted, "TRAINING_LIMIT"),
        "{status:?}"
    );
    // Past the bound, the request is judged on its own (the instance is unknown).
    let status = ml.train_model(authorized(train(), other.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    platform
        .execute_as_owner(DatabaseGroup::Analysis, "UPDATE ml_models SET state = 'failed' WHERE id = 'busy-1'")
        .await;
    let status = ml.train_model(authorized(train(), tenant.token())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "one training ended: {status:?}");

    let far = 4_000_000_000_000_000_i64;
    platform
        .execute_as_owner(
            DatabaseGroup::Analysis,
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO ml_documents (organization_id, id, file_name, content_type, created_by, created_at, \
                 expires_at) SELECT '{}', 'kept-' || i, 'r.pdf', 'application/pdf', 'u', 0, {far} FROM n",
                tenant.id()
            ),
        )
        .await;
    let upload = || CreateDocumentUploadRequest { file_name: "r.pdf".into(), content_type: "application/pdf".into() };
    let status = ml.create_document_upload(authorized(upload(), tenant.token())).await.unwrap_err();
    assert_eq!(
        (status.code(), crate::harness::reason(&status).as_str()),
        (Code::ResourceExhausted, "DOCUMENT_LIMIT"),
        "{status:?}"
    );
    ml.create_document_upload(authorized(upload(), other.token())).await.unwrap();
    platform
        .execute_as_owner(DatabaseGroup::Analysis, "UPDATE ml_documents SET expires_at = 1 WHERE id = 'kept-1'")
        .await;
    ml.create_document_upload(authorized(upload(), tenant.token())).await.unwrap();
}
