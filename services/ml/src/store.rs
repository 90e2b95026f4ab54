//! The model registry (`ml_models`): every query filters by the transaction's tenant.

use std::collections::HashMap;

use complianceiq_kit::db::TenantTx;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::ml::v1::{Model, ModelState};
use sqlx::Row;

/// A stored model version.
#[derive(Clone, Debug, Default)]
pub struct ModelRecord {
    pub id: String,
    pub name: String,
    pub version: i64,
    pub kind: i32,
    pub state: String,
    pub instance_id: String,
    pub parameters: HashMap<String, String>,
    pub metrics: HashMap<String, f64>,
    pub features: Vec<String>,
    pub training_examples: i64,
    pub artifact_key: String,
    pub data_as_of: String,
    pub code_version: String,
    pub error: String,
    pub created_by: String,
    pub created_at: i64,
    pub trained_at: Option<i64>,
    pub is_default: bool,
    pub progress_percent: i64,
}

impl ModelRecord {
    pub fn to_proto(&self, organization: &str) -> Model {
        let state = match self.state.as_str() {
            "training" => ModelState::Training,
            "ready" => ModelState::Ready,
            "failed" => ModelState::Failed,
            "archived" => ModelState::Archived,
            "cancelled" => ModelState::Cancelled,
            _ => ModelState::Unspecified,
        };
        let artifact = self.state == "ready" || self.state == "archived";
        Model {
            id: self.id.clone(),
            organization_id: organization.to_string(),
            name: self.name.clone(),
            version: self.version as i32,
            kind: self.kind,
            state: state as i32,
            instance_id: self.instance_id.clone(),
            parameters: self.parameters.clone(),
            metrics: self.metrics.clone(),
            training_examples: self.training_examples,
            artifact_uri: if artifact { self.artifact_key.clone() } else { String::new() },
            error: self.error.clone(),
            create_time: Some(time::to_timestamp(self.created_at)),
            train_end_time: self.trained_at.map(time::to_timestamp),
            data_as_of: self.data_as_of.clone(),
            features: self.features.clone(),
            code_version: self.code_version.clone(),
            is_default: self.is_default,
            // A model trained before progress was recorded has 0 stored; a trained one is whole.
            progress_percent: if artifact { 100 } else { self.progress_percent as i32 },
        }
    }
}

pub fn state_name(state: ModelState) -> Option<&'static str> {
    match state {
        ModelState::Training => Some("training"),
        ModelState::Ready => Some("ready"),
        ModelState::Failed => Some("failed"),
        ModelState::Archived => Some("archived"),
        ModelState::Cancelled => Some("cancelled"),
        ModelState::Unspecified => None,
    }
}

const COLUMNS: &str = "id, name, version, kind, state, instance_id, parameters, metrics, features, \
                       training_examples, artifact_key, data_as_of, code_version, error, created_by, created_at, \
                       trained_at, is_default, progress_percent";

fn json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn record(row: &sqlx::any::AnyRow) -> Result<ModelRecord, ApiError> {
    Ok(ModelRecord {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        version: row.try_get(2)?,
        kind: row.try_get::<i64, _>(3)? as i32,
        state: row.try_get(4)?,
        instance_id: row.try_get(5)?,
        parameters: json(&row.try_get::<String, _>(6)?),
        metrics: json(&row.try_get::<String, _>(7)?),
        features: json(&row.try_get::<String, _>(8)?),
        training_examples: row.try_get(9)?,
        artifact_key: row.try_get(10)?,
        data_as_of: row.try_get(11)?,
        code_version: row.try_get(12)?,
        error: row.try_get(13)?,
        created_by: row.try_get(14)?,
        created_at: row.try_get(15)?,
        trained_at: row.try_get(16)?,
        is_default: row.try_get::<i64, _>(17)? != 0,
        progress_percent: row.try_get(18)?,
    })
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The next version of a name (1 for a new name).
pub async fn next_version(tx: &mut TenantTx, name: &str) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT MAX(version) FROM ml_models WHERE organization_id = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0) + 1)
}

pub async fn insert(tx: &mut TenantTx, model: &ModelRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ml_models (organization_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20)"
    )))
    .bind(tenant)
    .bind(&model.id)
    .bind(&model.name)
    .bind(model.version)
    .bind(i64::from(model.kind))
    .bind(&model.state)
    .bind(&model.instance_id)
    .bind(to_json(&model.parameters))
    .bind(to_json(&model.metrics))
    .bind(to_json(&model.features))
    .bind(model.training_examples)
    .bind(&model.artifact_key)
    .bind(&model.data_as_of)
    .bind(&model.code_version)
    .bind(&model.error)
    .bind(&model.created_by)
    .bind(model.created_at)
    .bind(model.trained_at)
    .bind(i64::from(model.is_default))
    .bind(model.progress_percent)
    .execute(tx.connection())
    .await
    .map_err(|error| match &error {
        // Two trainings of one name at once: the later takes the next number on a retry.
        sqlx::Error::Database(database) if database.is_unique_violation() => ApiError::Aborted {
            reason: "CONCURRENT_VERSION",
            message: format!("version {} of {} was created at the same time; try again", model.version, model.name),
        },
        _ => error.into(),
    })?;
    Ok(())
}

/// Writes a training's outcome.
pub async fn save(tx: &mut TenantTx, model: &ModelRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE ml_models SET state = $3, metrics = $4, features = $5, training_examples = $6, data_as_of = $7, \
         error = $8, trained_at = $9, parameters = $10, progress_percent = $11 WHERE organization_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&model.id)
    .bind(&model.state)
    .bind(to_json(&model.metrics))
    .bind(to_json(&model.features))
    .bind(model.training_examples)
    .bind(&model.data_as_of)
    .bind(&model.error)
    .bind(model.trained_at)
    .bind(to_json(&model.parameters))
    .bind(model.progress_percent)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Records a training's progress; whether someone asked to stop it (or deleted the model,
/// which stops it too).
/// Models of the organization still training.
pub async fn count_training(tx: &mut TenantTx) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT COUNT(*) FROM ml_models WHERE organization_id = $1 AND state = 'training'")
        .bind(tenant)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get(0)?)
}

/// Documents of the organization not yet expired at `now`.
pub async fn count_documents(tx: &mut TenantTx, now: i64) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("SELECT COUNT(*) FROM ml_documents WHERE organization_id = $1 AND expires_at > $2")
        .bind(tenant)
        .bind(now)
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get(0)?)
}

pub async fn checkpoint(tx: &mut TenantTx, id: &str, percent: i64) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "UPDATE ml_models SET progress_percent = $3 WHERE organization_id = $1 AND id = $2 AND state = 'training' \
         RETURNING cancel_requested",
    )
    .bind(tenant)
    .bind(id)
    .bind(percent)
    .fetch_optional(tx.connection())
    .await?;
    Ok(row.map(|row| row.try_get::<i64, _>(0)).transpose()?.is_none_or(|requested| requested != 0))
}

/// Asks a training to stop; false when the model is not training (any more).
pub async fn request_cancel(tx: &mut TenantTx, id: &str) -> Result<bool, ApiError> {
    let tenant = tx.tenant().to_string();
    let done = sqlx::query(
        "UPDATE ml_models SET cancel_requested = 1 WHERE organization_id = $1 AND id = $2 AND state = 'training'",
    )
    .bind(tenant)
    .bind(id)
    .execute(tx.connection())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The earlier ready versions of a name step aside for a newly trained one.
pub async fn archive_older(tx: &mut TenantTx, name: &str, version: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "UPDATE ml_models SET state = 'archived' WHERE organization_id = $1 AND name = $2 AND version < $3 \
         AND state = 'ready'",
    )
    .bind(tenant)
    .bind(name)
    .bind(version)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn by_id(tx: &mut TenantTx, id: &str) -> Result<Option<ModelRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ml_models WHERE organization_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(record).transpose()
}

/// Makes `model` its kind's default; the kind's previous default stops being one.
pub async fn set_default(tx: &mut TenantTx, model: &ModelRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("UPDATE ml_models SET is_default = 0 WHERE organization_id = $1 AND kind = $2 AND is_default = 1")
        .bind(&tenant)
        .bind(i64::from(model.kind))
        .execute(tx.connection())
        .await?;
    sqlx::query("UPDATE ml_models SET is_default = 1 WHERE organization_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&model.id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// The organization's default model of `kind`.
pub async fn default_of(tx: &mut TenantTx, kind: i64) -> Result<Option<ModelRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ml_models WHERE organization_id = $1 AND kind = $2 AND is_default = 1"
    )))
    .bind(tenant)
    .bind(kind)
    .fetch_optional(tx.connection())
    .await?;
    row.as_ref().map(record).transpose()
}

/// Newest first.
pub async fn list(
    tx: &mut TenantTx,
    kind: Option<i64>,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<ModelRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let (before_created, before_id) = match &page.after {
        Some(key) if key.len() == 2 => (key[0].parse::<i64>().ok(), key[1].clone()),
        _ => (None, String::new()),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ml_models WHERE organization_id = $1 AND ($2 IS NULL OR kind = $2) \
         AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    )))
    .bind(tenant)
    .bind(kind)
    .bind(state)
    .bind(before_created)
    .bind(before_id)
    .bind(page.fetch_limit())
    .fetch_all(tx.connection())
    .await?;
    rows.iter().map(record).collect()
}

/// Removes a model; its artifact's key when it was there.
pub async fn delete(tx: &mut TenantTx, id: &str) -> Result<Option<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query("DELETE FROM ml_models WHERE organization_id = $1 AND id = $2 RETURNING artifact_key")
        .bind(tenant)
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    row.map(|row| Ok(row.try_get(0)?)).transpose()
}

/// Removes an instance's models; returns their artifacts' keys.
pub async fn purge(tx: &mut TenantTx, instance: &str) -> Result<Vec<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows =
        sqlx::query("DELETE FROM ml_models WHERE organization_id = $1 AND instance_id = $2 RETURNING artifact_key")
            .bind(tenant)
            .bind(instance)
            .fetch_all(tx.connection())
            .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// An uploaded regulation (`ml_documents`); its file is in object storage under [`DocumentRecord::key`].
#[derive(Clone, Debug, Default)]
pub struct DocumentRecord {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl DocumentRecord {
    /// The file's object key.
    pub fn key(&self, organization: &str) -> String {
        document_key(organization, &self.id)
    }
}

pub fn document_key(organization: &str, id: &str) -> String {
    format!("documents/{organization}/{id}")
}

pub async fn insert_document(tx: &mut TenantTx, document: &DocumentRecord) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query(
        "INSERT INTO ml_documents (organization_id, id, file_name, content_type, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(&document.id)
    .bind(&document.file_name)
    .bind(&document.content_type)
    .bind(&document.created_by)
    .bind(document.created_at)
    .bind(document.expires_at)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The document `id` unless it has expired by `now`.
pub async fn document(tx: &mut TenantTx, id: &str, now: i64) -> Result<Option<DocumentRecord>, ApiError> {
    let tenant = tx.tenant().to_string();
    let row = sqlx::query(
        "SELECT id, file_name, content_type, created_by, created_at, expires_at FROM ml_documents \
         WHERE organization_id = $1 AND id = $2 AND expires_at > $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .fetch_optional(tx.connection())
    .await?;
    row.map(|row| {
        Ok(DocumentRecord {
            id: row.try_get(0)?,
            file_name: row.try_get(1)?,
            content_type: row.try_get(2)?,
            created_by: row.try_get(3)?,
            created_at: row.try_get(4)?,
            expires_at: row.try_get(5)?,
        })
    })
    .transpose()
}

/// Removes document `id`'s row.
pub async fn delete_document(tx: &mut TenantTx, id: &str) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    sqlx::query("DELETE FROM ml_documents WHERE organization_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}
