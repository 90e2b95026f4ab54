//! The ml service (port 8011, analysis_db (model metadata) and object storage (models)):
//! models trained on an organization's own synced GRC data, versioned, and used for
//! predictions.
//!
//! Built so far: the registry (TrainModel as a job on the kit's queue, ListModels, GetModel,
//! DeleteModel, SetDefaultModel), Predict and EvaluateModel, for two kinds: the control failure
//! model (`failure`: logistic regression or a random forest on time-split data, scored on the
//! held-out month against the base rate and the recency baseline) and the risk model (`risk`:
//! ridge regression of the recorded residual score on the controls' effectiveness and history,
//! scored on held-out risks against the mean and the risk analysis's rule); and ScoreControls,
//! with which the predictive analysis uses the organization's default failure model. The other
//! kinds are refused with a field violation (anomalies are the analysis service's
//! DetectAnomalies: an indicator's own history is its baseline, nothing to train). ScanRegulation
//! (`regulation`) maps the clauses of a regulation's text or PDF to the requirements of an
//! instance; it needs no training (the index is built from the requirements per call). A PDF
//! larger than a request takes is uploaded first (`documents`: CreateDocumentUpload, UploadDocument).

pub mod documents;
pub mod failure;
pub mod regulation;
pub mod risk;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use complianceiq_analysis::controls::{ControlData, Links, Requirement, Snapshot};
use complianceiq_kit::auth::{Identity, caller};
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::{Migration, ModuleDatabase, TenantTx};
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::{OrganizationId, UserId};
use complianceiq_kit::jobs::{self, Ending, Job, JobHandler, Stop};
use complianceiq_kit::objects::{Objects, SignedLinks};
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::subscription::{EventHandler, Subscription};
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time};
use complianceiq_proto::EventType;
use complianceiq_proto::complianceiq::analysis::v1::RecordLink;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{Event, ModelTrained};
use complianceiq_proto::complianceiq::ml::v1::ml_service_server::{MlService, MlServiceServer};
use complianceiq_proto::complianceiq::ml::v1::*;
use complianceiq_servicenow::datetime;
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::documents::{Documents, Source};
use crate::failure::{Algorithm, ControlFacts, IssueSpan, Learned, Options, Progress};
use crate::risk::{RiskFacts, RiskModel};
use crate::store::ModelRecord;

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_models"),
    migration!(2, "0002_default_models"),
    migration!(3, "0003_training_progress"),
    migration!(4, "0004_documents"),
];

/// The queue's name for training jobs.
const KIND: &str = "ml_train";
/// Models an organization trains at once: training is CPU work shared by every tenant.
const MAX_TRAININGS: i64 = 3;
/// Longest model name.
const MAX_NAME: usize = 100;
/// Most records one Predict call names.
const MAX_RECORDS: usize = 1000;
/// Horizon of a prediction when none is asked for, and the longest.
const DEFAULT_HORIZON_DAYS: i32 = 30;
const MAX_HORIZON_DAYS: i32 = 365;
/// Days of results an evaluation scores when none are asked for.
const DEFAULT_WINDOW_DAYS: i64 = 30;
/// Longest regulation text scanned, in bytes, and most clauses in it.
const MAX_TEXT_BYTES: usize = 1024 * 1024;
const MAX_CLAUSES: usize = 5000;
/// Largest PDF scanned (the request's 4 MiB limit less room for the rest).
const MAX_PDF_BYTES: usize = 3 * 1024 * 1024;
/// Similarity from which a requirement matches a clause when none is asked for.
const DEFAULT_MIN_SCORE: f64 = 0.2;
const DEFAULT_MAX_MATCHES: i32 = 3;
const MAX_MATCHES: i32 = 20;
/// Features listed per prediction.
const TOP_CONTRIBUTIONS: usize = 5;

#[derive(Clone)]
struct Models {
    database: ModuleDatabase,
    objects: Objects,
    /// Fitted models by artifact key (an artifact never changes): Predict and EvaluateModel
    /// would otherwise fetch and parse a forest of megabytes on every call. Callers read the
    /// model's row first, so a model deleted elsewhere is refused before its cached entry.
    fitted: Arc<std::sync::Mutex<HashMap<String, Arc<Artifact>>>>,
}

/// A fitted model of either kind that trains: its artifact, read by the model's kind.
#[derive(Debug)]
enum Artifact {
    Failure(Learned),
    Risk(RiskModel),
}

/// The features a model of `kind` reads in this version of the platform.
fn features_of(kind: i32) -> &'static [&'static str] {
    if kind == ModelKind::RiskForecast as i32 { &risk::FEATURES } else { &failure::FEATURES }
}

/// Fitted models kept per process.
const FITTED_KEPT: usize = 32;
/// How often a training writes its progress and reads whether to stop.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The instance of the store and the time (seconds) its last completed sync reaches.
async fn synced_instance(
    tx: &mut TenantTx,
    instance: &str,
) -> Result<(complianceiq_analysis::StoredInstance, i64), ApiError> {
    let stored = complianceiq_analysis::instances(tx)
        .await?
        .into_iter()
        .find(|stored| stored.instance_id == instance)
        .ok_or_else(|| ApiError::not_found("Instance", instance))?;
    match datetime::parse(&stored.data_as_of) {
        Some(as_of) => Ok((stored, as_of)),
        None => Err(ApiError::FailedPrecondition {
            reason: "NOT_SYNCED",
            message: format!("instance {instance} has no completed sync to learn from"),
        }),
    }
}

/// The text of a PDF given in `field`, or a violation of it.
async fn read_pdf(violations: &mut FieldViolations, field: &str, pdf: Vec<u8>) -> Result<String, ApiError> {
    // Parsing is CPU work: off the runtime's threads.
    match tokio::task::spawn_blocking(move || regulation::pdf_text(&pdf)).await {
        Ok(Ok(text)) if !text.trim().is_empty() => Ok(text),
        Ok(Ok(_)) => {
            violations.add(field, "NO_TEXT", "the PDF holds no text (a scan needs OCR first)");
            Ok(String::new())
        }
        Ok(Err(reason)) => {
            violations.add(field, "UNREADABLE", reason);
            Ok(String::new())
        }
        Err(error) => Err(ApiError::internal(format!("reading the PDF: {error}"))),
    }
}

/// An instance's data as the models read it.
struct TrainingData {
    controls: Vec<ControlFacts>,
    /// The risks, their linked controls as indices into `controls`.
    risks: Vec<RiskFacts>,
    /// ServiceNow time the data reaches, and the same in seconds.
    data_as_of: String,
    as_of: i64,
}

/// Reads the active controls of an instance with their results and issues, and its risks, as
/// last synced.
async fn training_data(tx: &mut TenantTx, instance: &str) -> Result<TrainingData, ApiError> {
    let (stored, as_of) = synced_instance(tx, instance).await?;
    let snapshot = Snapshot { instance, point: Snapshot::CURRENT };
    let window = (stored.data_as_of.as_str(), stored.data_as_of.as_str());
    let records = ControlData::load(tx, None, snapshot, window, true).await?;
    let mut history = complianceiq_analysis::predictive::load_history(tx, snapshot, &stored.data_as_of).await?;
    let mut issues: HashMap<String, Vec<IssueSpan>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT control_sys_id, priority, opened_at, closed_at, is_open FROM grc_issues \
         WHERE organization_id = $1 AND instance_id = $2 AND control_sys_id IS NOT NULL",
    )
    .bind(tx.tenant().to_string())
    .bind(instance)
    .fetch_all(tx.connection())
    .await?;
    for row in &rows {
        let opened = row.try_get::<Option<String>, _>(2)?.as_deref().and_then(datetime::parse);
        let closed = row.try_get::<Option<String>, _>(3)?.as_deref().and_then(datetime::parse);
        let is_open = row.try_get::<i64, _>(4)? != 0;
        // A closed issue without its closing time cannot be placed in the past: left out.
        let (Some(opened), true) = (opened, is_open || closed.is_some()) else { continue };
        let span = IssueSpan {
            priority: row.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
            opened,
            closed: if is_open { None } else { closed },
        };
        issues.entry(row.try_get(0)?).or_default().push(span);
    }
    let controls: Vec<ControlFacts> = records
        .controls
        .into_iter()
        .filter(|control| control.is_active())
        .map(|control| {
            let mut results = history.remove(&control.sys_id).unwrap_or_default();
            results.sort_unstable();
            ControlFacts {
                issues: issues.remove(&control.sys_id).unwrap_or_default(),
                sys_id: control.sys_id,
                key_control: control.key_control,
                weighting: control.weighting,
                frequency: control.frequency,
                results,
            }
        })
        .collect();
    let position: HashMap<&str, usize> =
        controls.iter().enumerate().map(|(index, control)| (control.sys_id.as_str(), index)).collect();
    let mut linked: HashMap<&str, Vec<usize>> = HashMap::new();
    for (risk, control) in &records.risk_controls {
        if let Some(index) = position.get(control.as_str()) {
            linked.entry(risk.as_str()).or_default().push(*index);
        }
    }
    let risks = records
        .risks
        .iter()
        .filter_map(|risk| {
            Some(RiskFacts {
                sys_id: risk.sys_id.clone(),
                inherent: risk.inherent_score?,
                recorded: risk.residual_score,
                controls: linked.remove(risk.sys_id.as_str()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(TrainingData { controls, risks, data_as_of: stored.data_as_of, as_of })
}

/// Each control's probability of failing its next test after `as_of`, from what was collected
/// by then, with its largest contributions; controls without results are left out.
fn predictions(model: &Learned, controls: &[&ControlFacts], as_of: i64, horizon_days: i32) -> Vec<Prediction> {
    let target_time = time::to_timestamp((as_of + i64::from(horizon_days) * 86_400) * 1_000_000);
    controls
        .iter()
        .filter_map(|control| {
            let features = control.features_at(as_of + 1)?;
            Some(Prediction {
                record_id: control.sys_id.clone(),
                value: model.probability(&features),
                lower_bound: 0.0,
                upper_bound: 0.0,
                target_time: Some(target_time),
                feature_contributions: model.contributions(&features, TOP_CONTRIBUTIONS).into_iter().collect(),
            })
        })
        .collect()
}

/// Each risk's residual score as the model reads its controls at the data's time, with the
/// band of the validation errors and the largest contributions (in residual-score points).
fn risk_predictions(model: &RiskModel, risks: &[&RiskFacts], data: &TrainingData) -> Vec<Prediction> {
    let target_time = time::to_timestamp(data.as_of * 1_000_000);
    risks
        .iter()
        .map(|risk| {
            let predicted = model.predict(&risk.features_at(&data.controls, data.as_of + 1), TOP_CONTRIBUTIONS);
            Prediction {
                record_id: risk.sys_id.clone(),
                value: predicted.value,
                lower_bound: predicted.lower,
                upper_bound: predicted.upper,
                target_time: Some(target_time),
                feature_contributions: predicted.contributions.into_iter().collect(),
            }
        })
        .collect()
}

/// The subjects a Predict call names (every one when it names none), or a field violation per
/// unknown id.
fn chosen<'a, T>(
    all: &'a [T],
    wanted: &[String],
    sys_id: impl Fn(&T) -> &String,
    what: &str,
) -> Result<Vec<&'a T>, ApiError> {
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    let by_id: HashMap<&str, &T> = all.iter().map(|subject| (sys_id(subject).as_str(), subject)).collect();
    let mut violations = FieldViolations::default();
    let mut found = Vec::new();
    for (index, id) in wanted.iter().enumerate() {
        match by_id.get(id.as_str()) {
            Some(subject) => found.push(*subject),
            None => violations.add(
                &format!("record_ids[{index}]"),
                "UNKNOWN_RECORD",
                format!("not {what} of the model's instance"),
            ),
        }
    }
    violations.check()?;
    Ok(found)
}

fn model_id(field: &str, value: &str) -> Result<String, ApiError> {
    let mut violations = FieldViolations::default();
    let id = violations.uuid(field, value);
    violations.check()?;
    Ok(id)
}

/// Parameters a model takes: `l2`, the penalty (logistic or ridge), and for a control failure
/// model `algorithm` (`logistic` or `random_forest`), for a risk model only `ridge`; what is
/// not given is chosen on validation.
fn parameters(violations: &mut FieldViolations, kind: ModelKind, given: &HashMap<String, String>) -> Options {
    let mut options = Options::default();
    let risk = kind == ModelKind::RiskForecast;
    for (key, value) in given {
        match key.as_str() {
            "l2" => match value.parse::<f64>() {
                Ok(penalty) if (0.0..=1000.0).contains(&penalty) && !(risk && penalty == 0.0) => {
                    options.l2 = Some(penalty)
                }
                _ if risk => violations.add("parameters[l2]", "INVALID", "l2 must be a number above 0, at most 1000"),
                _ => violations.add("parameters[l2]", "INVALID", "l2 must be a number from 0 to 1000"),
            },
            "algorithm" if risk => {
                if value != "ridge" {
                    violations.add("parameters[algorithm]", "INVALID", "a risk model's algorithm is ridge")
                }
            }
            "algorithm" => match Algorithm::parse(value) {
                Some(algorithm) => options.algorithm = Some(algorithm),
                None => violations.add("parameters[algorithm]", "INVALID", "algorithm is logistic or random_forest"),
            },
            _ => violations.add(&format!("parameters[{key}]"), "UNKNOWN_PARAMETER", "a model takes algorithm and l2"),
        }
    }
    options
}

impl Models {
    /// Maps a regulation's clauses to requirements; `document` is the file of the request's
    /// `document_id`, read beforehand.
    async fn scan(
        &self,
        organization: OrganizationId,
        request: ScanRegulationRequest,
        document: Option<Source>,
    ) -> Result<ScanRegulationResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let text = match document {
            Some(Source::Pdf(pdf)) => read_pdf(&mut violations, "document_id", pdf).await?,
            Some(Source::Text(text)) => text,
            None => match (request.text.trim().is_empty(), request.pdf.is_empty()) {
                (true, true) => {
                    violations.add("text", "REQUIRED", "give the regulation as text, as a pdf or as a document_id");
                    String::new()
                }
                (false, false) => {
                    violations.add("pdf", "ONE_OF", "give the regulation as text or as a pdf, not both");
                    String::new()
                }
                (true, false) if request.pdf.len() > MAX_PDF_BYTES => {
                    violations.add(
                        "pdf",
                        "TOO_LONG",
                        format!("a PDF has at most {MAX_PDF_BYTES} bytes (upload a larger one: CreateDocumentUpload)"),
                    );
                    String::new()
                }
                (true, false) => read_pdf(&mut violations, "pdf", request.pdf).await?,
                (false, true) if request.text.len() > MAX_TEXT_BYTES => {
                    violations.add("text", "TOO_LONG", format!("a text has at most {MAX_TEXT_BYTES} bytes"));
                    String::new()
                }
                (false, true) => request.text,
            },
        };
        let min_score = match request.min_score {
            0.0 => DEFAULT_MIN_SCORE,
            score if (0.0..=1.0).contains(&score) => score,
            _ => {
                violations.add("min_score", "OUT_OF_RANGE", "min_score is a similarity from 0 to 1");
                0.0
            }
        };
        let max_matches = match request.max_matches {
            0 => DEFAULT_MAX_MATCHES,
            count if (1..=MAX_MATCHES).contains(&count) => count,
            _ => {
                violations.add("max_matches", "OUT_OF_RANGE", format!("max_matches is 1 to {MAX_MATCHES}"));
                0
            }
        };
        let clauses = regulation::clauses(&text);
        if clauses.len() > MAX_CLAUSES {
            violations.add("text", "TOO_MANY_CLAUSES", format!("a text has at most {MAX_CLAUSES} clauses"));
        }
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let (stored, _) = synced_instance(&mut tx, &instance).await?;
        let snapshot = Snapshot { instance: &instance, point: Snapshot::CURRENT };
        let window = (stored.data_as_of.as_str(), stored.data_as_of.as_str());
        let data = ControlData::load(&mut tx, None, snapshot, window, false).await?;
        tx.commit().await?;
        let links = Links { instance_url: &stored.url };
        let mut requirements: Vec<(&String, &Requirement)> =
            data.requirements.iter().filter(|(_, requirement)| requirement.active).collect();
        requirements.sort_by(|a, b| a.0.cmp(b.0));
        let mut controls: HashMap<&str, Vec<RecordLink>> = HashMap::new();
        for control in data.controls.iter().filter(|control| control.is_active()) {
            if let Some(requirement) = &control.requirement {
                let display = if control.number.is_empty() { &control.name } else { &control.number };
                controls.entry(requirement).or_default().push(links.record(
                    "sn_compliance_control",
                    &control.sys_id,
                    display,
                ));
            }
        }
        let texts: Vec<String> =
            requirements.iter().map(|(_, r)| format!("{}\n{}\n{}", r.name, r.reference, r.description)).collect();
        // Indexing and scoring a long text is CPU work: off the runtime's threads.
        let scored = tokio::task::spawn_blocking(move || {
            let index = regulation::Index::new(&texts);
            clauses
                .into_iter()
                .map(|clause| {
                    let matches = index.matches(&clause.text, min_score, max_matches as usize);
                    (clause, matches)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|error| ApiError::Internal(format!("scanning the text: {error}")))?;
        let mut response = ScanRegulationResponse {
            requirements_compared: requirements.len() as i32,
            data_as_of: stored.data_as_of.clone(),
            ..Default::default()
        };
        for (index, (clause, matches)) in scored.into_iter().enumerate() {
            let possible_gap = matches.as_ref().is_some_and(Vec::is_empty);
            response.possible_gaps += i32::from(possible_gap);
            let matches = matches
                .unwrap_or_default()
                .into_iter()
                .map(|found| {
                    let (sys_id, requirement) = requirements[found.document];
                    let display =
                        if requirement.reference.is_empty() { &requirement.name } else { &requirement.reference };
                    ClauseMatch {
                        requirement: Some(links.record("sn_compliance_policy_statement", sys_id, display)),
                        score: (found.score * 1000.0).round() / 1000.0,
                        terms: found.terms,
                        controls: controls.get(sys_id.as_str()).cloned().unwrap_or_default(),
                    }
                })
                .collect();
            response.clauses.push(Clause {
                index: index as i32,
                reference: clause.reference,
                text: clause.text,
                matches,
                possible_gap,
            });
        }
        Ok(response)
    }

    async fn train(&self, identity: &Identity, request: TrainModelRequest) -> Result<Model, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let name = request.name.trim().to_string();
        if name.is_empty() {
            violations.required("name");
        } else if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            violations.add("name", "INVALID", format!("a name has 1 to {MAX_NAME} printable characters"));
        }
        let kind = ModelKind::try_from(request.kind).unwrap_or_default();
        match ModelKind::try_from(request.kind) {
            Ok(ModelKind::ControlFailure | ModelKind::RiskForecast) => {}
            Ok(ModelKind::Unspecified) => violations.required("kind"),
            Ok(ModelKind::AnomalyDetection) => violations.add(
                "kind",
                "NOT_SUPPORTED",
                "anomalies need no training: DetectAnomalies (POST /api/v1/analysis/anomalies) judges each indicator \
                 by its own history",
            ),
            Ok(ModelKind::RegulatoryNlp) => violations.add(
                "kind",
                "NOT_SUPPORTED",
                "the regulatory scan needs no training: ScanRegulation (POST /api/v1/ml/scan) indexes the \
                 requirements on each call",
            ),
            Err(_) => violations.add("kind", "INVALID", "kind is not a ModelKind"),
        }
        let instance = violations.uuid("instance_id", &request.instance_id);
        parameters(&mut violations, kind, &request.parameters);
        violations.check()?;
        let mut tx = self.database.write(organization).await?;
        // One registration at a time per organization: versions are numbered, trainings counted.
        tx.serialize_on("ml-models").await?;
        let training = store::count_training(&mut tx).await?;
        if training >= MAX_TRAININGS {
            return Err(ApiError::ResourceExhausted {
                reason: "TRAINING_LIMIT",
                message: format!(
                    "{training} models of this organization are training and at most {MAX_TRAININGS} train at once: \
                     wait for one to end, or cancel one"
                ),
                retry_after: Some(Duration::from_secs(30)),
            });
        }
        synced_instance(&mut tx, &instance).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let record = ModelRecord {
            artifact_key: format!("models/{organization}/{id}.json"),
            id: id.clone(),
            version: store::next_version(&mut tx, &name).await?,
            name,
            kind: kind as i32,
            state: "training".into(),
            instance_id: instance,
            parameters: request.parameters,
            code_version: env!("CARGO_PKG_VERSION").into(),
            created_by: identity.user_id.to_string(),
            created_at: time::now_micros(),
            ..Default::default()
        };
        store::insert(&mut tx, &record).await?;
        jobs::enqueue(&mut tx, KIND, &id).await?;
        tx.commit().await?;
        Ok(record.to_proto(&organization.to_string()))
    }

    async fn get(&self, organization: OrganizationId, request: GetModelRequest) -> Result<Model, ApiError> {
        let id = model_id("model_id", &request.model_id)?;
        let mut tx = self.database.read(organization).await?;
        let record = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        tx.commit().await?;
        Ok(record.to_proto(&organization.to_string()))
    }

    async fn list(
        &self,
        organization: OrganizationId,
        request: ListModelsRequest,
    ) -> Result<ListModelsResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let kind = match ModelKind::try_from(request.kind) {
            Ok(ModelKind::Unspecified) => None,
            Ok(kind) => Some(kind as i64),
            Err(_) => {
                violations.add("kind", "INVALID", "kind is not a ModelKind");
                None
            }
        };
        let state = match ModelState::try_from(request.state) {
            Ok(state) => store::state_name(state),
            Err(_) => {
                violations.add("state", "INVALID", "state is not a ModelState");
                None
            }
        };
        violations.check()?;
        let filters = format!("kind={kind:?};state={state:?}");
        let page = PageRequest::parse(request.page_size, &request.page_token, &filters)?;
        let mut tx = self.database.read(organization).await?;
        let mut records = store::list(&mut tx, kind, state, &page).await?;
        tx.commit().await?;
        let next_page_token =
            page.finish(&mut records, |record| vec![record.created_at.to_string(), record.id.clone()]);
        let organization = organization.to_string();
        Ok(ListModelsResponse {
            models: records.iter().map(|record| record.to_proto(&organization)).collect(),
            next_page_token,
        })
    }

    async fn delete(&self, organization: OrganizationId, request: DeleteModelRequest) -> Result<(), ApiError> {
        let id = model_id("model_id", &request.model_id)?;
        let mut tx = self.database.write(organization).await?;
        let key = store::delete(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        tx.commit().await?;
        self.fitted.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        // After the commit: a failed delete leaves an orphan file, never a model without its file.
        self.objects.delete(&key).await
    }

    async fn predict(
        &self,
        organization: OrganizationId,
        request: PredictRequest,
    ) -> Result<PredictResponse, ApiError> {
        let mut violations = FieldViolations::default();
        let id = violations.uuid("model_id", &request.model_id);
        let horizon_days = match request.horizon_days {
            0 => DEFAULT_HORIZON_DAYS,
            days if (1..=MAX_HORIZON_DAYS).contains(&days) => days,
            _ => {
                violations.add("horizon_days", "OUT_OF_RANGE", format!("horizon_days is 1 to {MAX_HORIZON_DAYS}"));
                0
            }
        };
        if request.record_ids.len() > MAX_RECORDS {
            violations.add("record_ids", "TOO_MANY", format!("at most {MAX_RECORDS} records per call"));
        }
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let record = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        let model = self.ready(&record).await?;
        let data = training_data(&mut tx, &record.instance_id).await?;
        tx.commit().await?;
        let predictions = match &*model {
            Artifact::Failure(model) => {
                let wanted = chosen(&data.controls, &request.record_ids, |c| &c.sys_id, "an active control")?;
                predictions(model, &wanted, data.as_of, horizon_days)
            }
            Artifact::Risk(model) => {
                let wanted = chosen(&data.risks, &request.record_ids, |r| &r.sys_id, "a risk")?;
                risk_predictions(model, &wanted, &data)
            }
        };
        Ok(PredictResponse { model_id: id, predictions })
    }

    async fn set_default(
        &self,
        organization: OrganizationId,
        request: SetDefaultModelRequest,
    ) -> Result<Model, ApiError> {
        let id = model_id("model_id", &request.model_id)?;
        let mut tx = self.database.write(organization).await?;
        let mut record = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        if record.state != "ready" && record.state != "archived" {
            return Err(ApiError::FailedPrecondition {
                reason: "MODEL_NOT_READY",
                message: format!("model {id} is {}; only a trained model can be the default", record.state),
            });
        }
        store::set_default(&mut tx, &record).await?;
        tx.commit().await?;
        record.is_default = true;
        Ok(record.to_proto(&organization.to_string()))
    }

    /// The predictive analysis's scores: the named model, else the organization's default
    /// control failure model, else none (the analysis keeps to its baseline).
    async fn score_controls(&self, request: ScoreControlsRequest) -> Result<ScoreControlsResponse, ApiError> {
        let organization = OrganizationId::parse_field("organization_id", &request.organization_id)?;
        let mut violations = FieldViolations::default();
        let instance = violations.uuid("instance_id", &request.instance_id);
        let named = (!request.model_id.is_empty()).then(|| violations.uuid("model_id", &request.model_id));
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let record = match &named {
            Some(id) => Some(store::by_id(&mut tx, id).await?.ok_or_else(|| ApiError::not_found("Model", id))?),
            None => store::default_of(&mut tx, ModelKind::ControlFailure as i64).await?,
        };
        let Some(record) = record else {
            tx.commit().await?;
            return Ok(ScoreControlsResponse::default());
        };
        if record.kind != ModelKind::ControlFailure as i32 {
            return Err(ApiError::FailedPrecondition {
                reason: "WRONG_MODEL_KIND",
                message: format!("model {} does not predict control failures", record.id),
            });
        }
        let model = self.ready(&record).await?;
        let Artifact::Failure(model) = &*model else {
            return Err(ApiError::internal(format!("model {} holds no failure model", record.id)));
        };
        let data = training_data(&mut tx, &instance).await?;
        tx.commit().await?;
        // The analysis's own point in time, when it reads an earlier sync than the latest.
        let as_of = datetime::parse(&request.data_as_of).map_or(data.as_of, |asked| asked.min(data.as_of));
        let controls: Vec<&ControlFacts> = data.controls.iter().collect();
        let predictions = predictions(model, &controls, as_of, DEFAULT_HORIZON_DAYS);
        Ok(ScoreControlsResponse { model: Some(record.to_proto(&organization.to_string())), predictions })
    }

    async fn evaluate(
        &self,
        organization: OrganizationId,
        request: EvaluateModelRequest,
    ) -> Result<Evaluation, ApiError> {
        let mut violations = FieldViolations::default();
        let id = violations.uuid("model_id", &request.model_id);
        let instance = (!request.instance_id.is_empty()).then(|| violations.uuid("instance_id", &request.instance_id));
        let window = match (request.holdout_fraction, request.window_days) {
            (0.0, 0) => failure::Window::Days(DEFAULT_WINDOW_DAYS),
            (fraction, 0) if (0.05..=0.5).contains(&fraction) => failure::Window::Fraction(fraction),
            (_, 0) => {
                violations.add("holdout_fraction", "OUT_OF_RANGE", "holdout_fraction is 0.05 to 0.5");
                failure::Window::Days(DEFAULT_WINDOW_DAYS)
            }
            (fraction, days) if fraction == 0.0 && (1..=MAX_HORIZON_DAYS).contains(&days) => {
                failure::Window::Days(i64::from(days))
            }
            (0.0, _) => {
                violations.add("window_days", "OUT_OF_RANGE", format!("window_days is 1 to {MAX_HORIZON_DAYS}"));
                failure::Window::Days(DEFAULT_WINDOW_DAYS)
            }
            _ => {
                violations.add("window_days", "CONFLICT", "set window_days or holdout_fraction, not both");
                failure::Window::Days(DEFAULT_WINDOW_DAYS)
            }
        };
        let threshold = match request.threshold {
            0.0 => 0.5,
            threshold if threshold > 0.0 && threshold < 1.0 => threshold,
            _ => {
                violations.add("threshold", "OUT_OF_RANGE", "threshold lies strictly between 0 and 1");
                0.5
            }
        };
        violations.check()?;
        let mut tx = self.database.read(organization).await?;
        let record = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        let model = self.ready(&record).await?;
        let instance = instance.unwrap_or_else(|| record.instance_id.clone());
        let data = training_data(&mut tx, &instance).await?;
        tx.commit().await?;
        let model = match &*model {
            Artifact::Failure(model) => model,
            Artifact::Risk(model) => {
                let mut violations = FieldViolations::default();
                let windowed = [
                    ("holdout_fraction", request.holdout_fraction != 0.0),
                    ("window_days", request.window_days != 0),
                    ("threshold", request.threshold != 0.0),
                ];
                for (field, _) in windowed.iter().filter(|(_, set)| *set) {
                    violations.add(
                        field,
                        "NOT_APPLICABLE",
                        "a risk model is scored on risks, not on a window of results",
                    );
                }
                violations.check()?;
                // Its own instance: only the risks the training held out.
                let own = instance == record.instance_id;
                let (metrics, count) = risk::evaluate(model, &data.risks, &data.controls, data.as_of, own)
                    .map_err(|message| ApiError::FailedPrecondition { reason: "NOTHING_TO_EVALUATE", message })?;
                return Ok(Evaluation {
                    model_id: id,
                    metrics,
                    example_count: count as i64,
                    evaluate_time: Some(time::to_timestamp(time::now_micros())),
                    ..Default::default()
                });
            }
        };
        let evaluated = failure::evaluate(model, &data.controls, data.as_of, window, threshold)
            .map_err(|message| ApiError::FailedPrecondition { reason: "NOTHING_TO_EVALUATE", message })?;
        let test_window_start = record.metrics.get("test_window_start").copied().unwrap_or(f64::MAX) as i64;
        Ok(Evaluation {
            model_id: id,
            metrics: evaluated.metrics,
            example_count: evaluated.examples as i64,
            evaluate_time: Some(time::to_timestamp(time::now_micros())),
            calibration: evaluated
                .calibration
                .into_iter()
                .map(|band| CalibrationBin {
                    lower: band.lower,
                    upper: band.upper,
                    count: band.count as i64,
                    mean_predicted: band.mean_predicted,
                    observed_rate: band.observed_rate,
                })
                .collect(),
            threshold,
            window_start_time: Some(time::to_timestamp(evaluated.window_start * 1_000_000)),
            overlaps_training: instance == record.instance_id && evaluated.window_start < test_window_start,
        })
    }

    /// The fitted model of a trained version.
    async fn ready(&self, record: &ModelRecord) -> Result<Arc<Artifact>, ApiError> {
        if record.state != "ready" && record.state != "archived" {
            return Err(ApiError::FailedPrecondition {
                reason: "MODEL_NOT_READY",
                message: format!("model {} is {}; only a trained model predicts", record.id, record.state),
            });
        }
        // A model fitted on another feature list (an earlier version of the platform) would read
        // this version's features in the wrong places.
        if record.features.iter().map(String::as_str).ne(features_of(record.kind).iter().copied()) {
            return Err(ApiError::FailedPrecondition {
                reason: "MODEL_OUTDATED",
                message: format!(
                    "model {} was trained by version {} on other features; train a new version",
                    record.id, record.code_version
                ),
            });
        }
        if let Some(fitted) = self.fitted.lock().unwrap_or_else(|e| e.into_inner()).get(&record.artifact_key) {
            return Ok(fitted.clone());
        }
        let bytes = self
            .objects
            .get(&record.artifact_key)
            .await?
            .ok_or_else(|| ApiError::not_found("Model artifact", &record.id))?;
        let unreadable = |e: serde_json::Error| ApiError::internal(format!("model artifact {}: {e}", record.id));
        let fitted = Arc::new(if record.kind == ModelKind::RiskForecast as i32 {
            Artifact::Risk(serde_json::from_slice(&bytes).map_err(unreadable)?)
        } else {
            Artifact::Failure(serde_json::from_slice(&bytes).map_err(unreadable)?)
        });
        let mut kept = self.fitted.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= FITTED_KEPT {
            kept.clear();
        }
        kept.insert(record.artifact_key.clone(), fitted.clone());
        Ok(fitted)
    }

    /// Writes a training's progress (extending the job's lease); whether to stop it.
    async fn checkpoint(&self, job: &Job, percent: u8) -> Result<bool, ApiError> {
        let mut tx = self.database.write(job.organization).await?;
        let stop = store::checkpoint(&mut tx, &job.id, i64::from(percent)).await?;
        job.extend_lease(&mut tx).await?;
        tx.commit().await?;
        Ok(stop)
    }

    /// Waits for a fit, writing its progress as it goes and passing on a request to stop it
    /// (a person's, a deleted model, or the process shutting down).
    async fn watch(
        &self,
        job: &Job,
        stop: &CancellationToken,
        progress: &Progress,
        mut fitting: tokio::task::JoinHandle<Result<Fit, String>>,
    ) -> Result<Fit, Stop> {
        let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let joined = loop {
            tokio::select! {
                joined = &mut fitting => break joined,
                _ = stop.cancelled(), if !progress.stopped() => progress.stop(),
                _ = ticks.tick(), if !progress.stopped() => match self.checkpoint(job, progress.percent()).await {
                    Ok(false) => {}
                    Ok(true) => progress.stop(),
                    Err(error) => {
                        progress.stop();
                        return Err(error.into());
                    }
                },
            }
        };
        let fitted = joined.map_err(|e| Stop::Failed(format!("training stopped: {e}")))?;
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        if progress.stopped() {
            return Err(Stop::Cancelled);
        }
        fitted.map_err(Stop::Failed)
    }

    async fn cancel(&self, organization: OrganizationId, request: CancelTrainingRequest) -> Result<Model, ApiError> {
        let id = model_id("model_id", &request.model_id)?;
        let mut tx = self.database.write(organization).await?;
        let record = store::by_id(&mut tx, &id).await?.ok_or_else(|| ApiError::not_found("Model", &id))?;
        if !store::request_cancel(&mut tx, &id).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "MODEL_NOT_TRAINING",
                message: format!("model {id} is {}; only a training can be cancelled", record.state),
            });
        }
        tx.commit().await?;
        Ok(record.to_proto(&organization.to_string()))
    }

    async fn load(&self, job: &Job) -> Result<Option<ModelRecord>, ApiError> {
        let mut tx = self.database.read(job.organization).await?;
        let record = store::by_id(&mut tx, &job.id).await?;
        tx.commit().await?;
        Ok(record)
    }
}

/// What a training produced: the serialised artifact and what the model's row records.
struct Fit {
    artifact: Vec<u8>,
    metrics: HashMap<String, f64>,
    features: Vec<String>,
    algorithm: &'static str,
    examples: usize,
}

/// Trains a model of `kind` on `data`.
fn fit(kind: ModelKind, data: &TrainingData, options: Options, progress: &Progress) -> Result<Fit, String> {
    let serialised = |e: serde_json::Error| format!("artifact: {e}");
    if kind == ModelKind::RiskForecast {
        let trained = risk::train(&data.risks, &data.controls, data.as_of, options.l2, progress)?;
        return Ok(Fit {
            artifact: serde_json::to_vec(&trained.model).map_err(serialised)?,
            features: trained.model.features().to_vec(),
            metrics: trained.metrics,
            algorithm: "ridge",
            examples: trained.examples,
        });
    }
    let trained = failure::train(&data.controls, data.as_of, options, progress)?;
    Ok(Fit {
        artifact: serde_json::to_vec(&trained.model).map_err(serialised)?,
        features: trained.model.features().to_vec(),
        metrics: trained.metrics,
        algorithm: trained.model.algorithm().name(),
        examples: trained.examples,
    })
}

impl JobHandler for Models {
    const KIND: &'static str = KIND;

    async fn execute(&self, job: &Job, stop: &CancellationToken) -> Result<(), Stop> {
        if stop.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let Some(mut record) = self.load(job).await? else { return Ok(()) };
        if record.state != "training" {
            return Ok(());
        }
        // Cancelled while it waited on the queue.
        if self.checkpoint(job, 0).await? {
            return Err(Stop::Cancelled);
        }
        let mut tx = self.database.read(job.organization).await?;
        let data = training_data(&mut tx, &record.instance_id).await?;
        tx.commit().await?;
        let mut violations = FieldViolations::default();
        let kind = ModelKind::try_from(record.kind).unwrap_or_default();
        let options = parameters(&mut violations, kind, &record.parameters);
        let started = std::time::Instant::now();
        let data_as_of = data.data_as_of.clone();
        let progress = Arc::new(Progress::default());
        // Fitting is CPU work: off the runtime's threads.
        let fitting = tokio::task::spawn_blocking({
            let progress = progress.clone();
            move || fit(kind, &data, options, &progress)
        });
        let trained = self.watch(job, stop, &progress, fitting).await?;
        self.objects.put(&record.artifact_key, trained.artifact).await?;
        record.state = "ready".into();
        record.progress_percent = 100;
        record.metrics = trained.metrics;
        record.features = trained.features;
        record.parameters.insert("algorithm".into(), trained.algorithm.into());
        record.training_examples = trained.examples as i64;
        record.data_as_of = data_as_of;
        record.trained_at = Some(time::now_micros());
        let mut tx = self.database.write(job.organization).await?;
        // Deleted, or cancelled after the last checkpoint: a cancel that was answered OK holds.
        if store::checkpoint(&mut tx, &record.id, i64::from(progress.percent())).await? {
            drop(tx);
            self.objects.delete(&record.artifact_key).await?;
            return Err(Stop::Cancelled);
        }
        store::save(&mut tx, &record).await?;
        store::archive_older(&mut tx, &record.name, record.version).await?;
        job.extend_lease(&mut tx).await?;
        let trained = ModelTrained {
            model_id: record.id.clone(),
            name: record.name.clone(),
            version: record.version as i32,
            metrics: record.metrics.clone(),
        };
        let context = RequestContext {
            request_id: record.id.clone(),
            actor_user_id: UserId::from_stored(&record.created_by).ok(),
            traceparent: None,
        };
        tx.emit(Payload::ModelTrained(trained), &context).await?;
        tx.commit().await?;
        tracing::info!(
            model_id = %record.id,
            examples = record.training_examples,
            auc = record.metrics.get("auc").copied().unwrap_or_default(),
            mae = record.metrics.get("mae").copied().unwrap_or_default(),
            fit_ms = started.elapsed().as_millis(),
            "model trained"
        );
        Ok(())
    }

    async fn record_end(&self, tx: &mut TenantTx, job: &Job, ending: &Ending) -> Result<(), ApiError> {
        let Some(mut record) = store::by_id(tx, &job.id).await? else { return Ok(()) };
        if record.state != "training" {
            return Ok(());
        }
        (record.state, record.error) = match ending {
            Ending::Cancelled => ("cancelled".into(), "cancelled on request".into()),
            _ => ("failed".into(), ending.failure().unwrap_or_else(|| "training ended without a model".into())),
        };
        record.trained_at = Some(time::now_micros());
        store::save(tx, &record).await?;
        tracing::info!(model_id = %record.id, state = %record.state, error = %record.error, "model training ended");
        Ok(())
    }
}

/// Models learnt from a disconnected instance go with its data.
struct InstancePurge {
    database: ModuleDatabase,
    objects: Objects,
}

#[tonic::async_trait]
impl EventHandler for InstancePurge {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let Some(Payload::InstanceDeleted(deleted)) = &event.payload else { return Ok(()) };
        let Ok(organization) = OrganizationId::from_stored(&event.organization_id) else { return Ok(()) };
        let mut tx = self.database.write(organization).await?;
        let keys = store::purge(&mut tx, &deleted.instance_id).await?;
        tx.commit().await?;
        for key in &keys {
            if let Err(error) = self.objects.delete(key).await {
                tracing::warn!(object_key = %key, error = %error, "a model file of a disconnected instance stayed");
            }
        }
        Ok(())
    }
}

struct MlApi {
    models: Models,
    documents: Documents,
}

#[tonic::async_trait]
impl MlService for MlApi {
    async fn train_model(&self, request: Request<TrainModelRequest>) -> Result<Response<Model>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.models.train(&identity, request.into_inner()).await?))
    }

    async fn list_models(&self, request: Request<ListModelsRequest>) -> Result<Response<ListModelsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.list(organization, request.into_inner()).await?))
    }

    async fn get_model(&self, request: Request<GetModelRequest>) -> Result<Response<Model>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.get(organization, request.into_inner()).await?))
    }

    async fn predict(&self, request: Request<PredictRequest>) -> Result<Response<PredictResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.predict(organization, request.into_inner()).await?))
    }

    async fn evaluate_model(&self, request: Request<EvaluateModelRequest>) -> Result<Response<Evaluation>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.evaluate(organization, request.into_inner()).await?))
    }

    async fn scan_regulation(
        &self,
        request: Request<ScanRegulationRequest>,
    ) -> Result<Response<ScanRegulationResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let document = self.documents.for_scan(organization, &request).await?;
        Ok(Response::new(self.models.scan(organization, request, document).await?))
    }

    async fn set_default_model(&self, request: Request<SetDefaultModelRequest>) -> Result<Response<Model>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.set_default(organization, request.into_inner()).await?))
    }

    async fn score_controls(
        &self,
        request: Request<ScoreControlsRequest>,
    ) -> Result<Response<ScoreControlsResponse>, Status> {
        Ok(Response::new(self.models.score_controls(request.into_inner()).await?))
    }

    async fn cancel_training(&self, request: Request<CancelTrainingRequest>) -> Result<Response<Model>, Status> {
        let organization = caller(&request)?.tenant()?;
        Ok(Response::new(self.models.cancel(organization, request.into_inner()).await?))
    }

    async fn create_document_upload(
        &self,
        request: Request<CreateDocumentUploadRequest>,
    ) -> Result<Response<DocumentUpload>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.documents.create_upload(&identity, request.into_inner()).await?))
    }

    async fn upload_document(&self, request: Request<UploadDocumentRequest>) -> Result<Response<Document>, Status> {
        Ok(Response::new(self.documents.upload(request.into_inner()).await?))
    }

    async fn delete_model(&self, request: Request<DeleteModelRequest>) -> Result<Response<()>, Status> {
        let organization = caller(&request)?.tenant()?;
        self.models.delete(organization, request.into_inner()).await?;
        Ok(Response::new(()))
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("ml"),
        port: 8011,
        database: Some(DatabaseGroup::Analysis),
        calls: &[],
        migrations: MIGRATIONS,
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let database = context.database()?;
                let objects = Objects::from_url(&context.config.object_store_url()).map_err(|e| format!("ml: {e}"))?;
                let models =
                    Models { database: database.clone(), objects: objects.clone(), fitted: Default::default() };
                let documents = Documents {
                    database: database.clone(),
                    objects: objects.clone(),
                    links: SignedLinks {
                        secrets: context.secrets.clone(),
                        public_url: context.config.mail.public_url.clone(),
                        ttl: Duration::from_secs(context.config.storage.download_link_seconds.max(1)),
                        route: documents::UPLOAD_ROUTE,
                    },
                    max_request_bytes: context.config.gateway.max_body_bytes,
                };
                let purge = Subscription {
                    consumer: "ml-instance-purge",
                    events: vec![EventType::InstanceDeleted],
                    handler: Arc::new(InstancePurge { database: database.clone(), objects }),
                };
                // A person waits for a model: the queue is read more often than the default.
                let settings =
                    jobs::WorkerSettings { poll: Duration::from_millis(200), ..context.config.jobs.worker_settings() };
                let worker =
                    jobs::worker("ml-training", database, Arc::new(models.clone()), settings, context.metrics.clone());
                let expiry =
                    documents.clone().expiry_worker(context.config.jobs.worker_settings(), context.metrics.clone());
                // An uploaded document reaches the service whole (the edge bounds it first).
                let service = MlServiceServer::new(MlApi { models, documents })
                    .max_decoding_message_size(documents::MAX_PDF_BYTES + 64 * 1024);
                Ok(ModuleParts::new().service(service).subscription(purge).worker(worker).worker(expiry))
            })
        },
    }
}
