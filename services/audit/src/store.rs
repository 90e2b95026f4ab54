//! The audit trail's one table: an append-only hash chain per organization.
//!
//! An entry's `body` is the `AuditLog` as recorded, encoded without its chain fields; the
//! hash covers those bytes exactly (they are never encoded again, so a map's order cannot
//! change a hash): `hash = hex(SHA-256(previous_hash ‖ body))`, the first entry's
//! `previous_hash` being [`GENESIS`]. The other columns repeat the body's fields for
//! filtering, and verification checks them against it.

use complianceiq_kit::crypto::sha256_hex;
use complianceiq_kit::db::{Backend, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::{time, validate};
use complianceiq_proto::complianceiq::audit::v1::{AuditLog, AuditTrailVerification};
use prost::Message;
use sqlx::Row;

/// The `previous_hash` of an organization's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per query while verifying: memory stays bounded whatever the trail's length.
const VERIFY_BATCH: i64 = 1000;

const COLUMNS: &str = "sequence, id, action, resource_type, resource_id, actor_user_id, outcome, \
                       event_time, body, previous_hash, hash, search_text";

/// What an entry can be found by.
fn search_text(entry: &AuditLog) -> String {
    let actor = entry.actor.clone().unwrap_or_default();
    let mut metadata: Vec<&String> = entry.metadata.values().collect();
    metadata.sort();
    let mut parts =
        vec![&entry.action, &entry.resource_type, &entry.resource_id, &entry.rpc, &actor.email, &actor.user_id];
    parts.extend(metadata);
    validate::words(&parts.iter().map(|part| part.as_str()).collect::<Vec<_>>().join(" ")).join(" ")
}

/// Where retention cut an organization's chain: the last entry removed and its hash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub through_sequence: i64,
    pub hash: String,
    /// Entries this cut removed.
    pub pruned: i64,
    pub created_at: i64,
    pub signature: String,
}

impl Checkpoint {
    /// What the signature covers.
    pub fn message(&self, organization: &str) -> String {
        format!(
            "audit-checkpoint\u{1f}{organization}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.through_sequence, self.hash, self.pruned, self.created_at
        )
    }
}

/// The organization's checkpoints, oldest first.
pub async fn checkpoints(tx: &mut TenantTx) -> Result<Vec<Checkpoint>, ApiError> {
    let rows: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(
        "SELECT through_sequence, hash, pruned, created_at, signature FROM audit_checkpoints \
         WHERE organization_id = $1 ORDER BY through_sequence",
    )
    .bind(tx.tenant().to_string())
    .fetch_all(tx.connection())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(through_sequence, hash, pruned, created_at, signature)| Checkpoint {
            through_sequence,
            hash,
            pruned,
            created_at,
            signature,
        })
        .collect())
}

/// Removes the entries from the start of the chain that happened before `cutoff` (µs),
/// behind a checkpoint `sign` signs; the newest entry always stays, so the chain goes on
/// from it. The checkpoint made, if anything was removed.
pub async fn prune(
    tx: &mut TenantTx,
    cutoff: i64,
    sign: impl Fn(&Checkpoint) -> String,
) -> Result<Option<Checkpoint>, ApiError> {
    let tenant = tx.tenant().to_string();
    tx.serialize_on("audit").await?;
    let (first, last): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(sequence), MAX(sequence) FROM audit_logs WHERE organization_id = $1")
            .bind(&tenant)
            .fetch_one(tx.connection())
            .await?;
    let (Some(first), Some(last)) = (first, last) else { return Ok(None) };
    let (kept,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(sequence) FROM audit_logs WHERE organization_id = $1 AND event_time >= $2")
            .bind(&tenant)
            .bind(cutoff)
            .fetch_one(tx.connection())
            .await?;
    let through = kept.unwrap_or(last).min(last) - 1;
    if through < first {
        return Ok(None);
    }
    let (hash,): (String,) = sqlx::query_as("SELECT hash FROM audit_logs WHERE organization_id = $1 AND sequence = $2")
        .bind(&tenant)
        .bind(through)
        .fetch_one(tx.connection())
        .await?;
    let mut checkpoint = Checkpoint {
        through_sequence: through,
        hash,
        pruned: through - first + 1,
        created_at: time::now_micros(),
        signature: String::new(),
    };
    checkpoint.signature = sign(&checkpoint);
    sqlx::query(
        "INSERT INTO audit_checkpoints (organization_id, through_sequence, hash, pruned, created_at, signature) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&tenant)
    .bind(checkpoint.through_sequence)
    .bind(&checkpoint.hash)
    .bind(checkpoint.pruned)
    .bind(checkpoint.created_at)
    .bind(&checkpoint.signature)
    .execute(tx.connection())
    .await?;
    // The guard triggers let through only what a checkpoint covers; on PostgreSQL the
    // application role holds no DELETE and goes through the owner's function.
    let statement = match tx.backend() {
        Backend::Postgres => "SELECT audit_prune($1, $2)",
        Backend::Sqlite => "DELETE FROM audit_logs WHERE organization_id = $1 AND sequence <= $2",
    };
    sqlx::query(statement).bind(&tenant).bind(through).execute(tx.connection()).await?;
    Ok(Some(checkpoint))
}

/// The hash of an entry whose body is `body` after the entry hashed `previous`.
pub fn link(previous: &str, body: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(previous.len() + body.len());
    bytes.extend_from_slice(previous.as_bytes());
    bytes.extend_from_slice(body);
    sha256_hex(&bytes)
}

struct StoredRow {
    sequence: i64,
    id: String,
    action: String,
    resource_type: String,
    resource_id: String,
    actor_user_id: String,
    outcome: i64,
    event_time: i64,
    body: Vec<u8>,
    previous_hash: String,
    hash: String,
    search_text: String,
}

impl StoredRow {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sequence: row.try_get(0)?,
            id: row.try_get(1)?,
            action: row.try_get(2)?,
            resource_type: row.try_get(3)?,
            resource_id: row.try_get(4)?,
            actor_user_id: row.try_get(5)?,
            outcome: row.try_get(6)?,
            event_time: row.try_get(7)?,
            body: row.try_get(8)?,
            previous_hash: row.try_get(9)?,
            hash: row.try_get(10)?,
            search_text: row.try_get(11)?,
        })
    }

    /// The entry as served: the recorded body with its place in the chain.
    fn entry(&self) -> Result<AuditLog, ApiError> {
        let mut entry = AuditLog::decode(self.body.as_slice())
            .map_err(|error| ApiError::internal(format!("audit entry {} does not decode: {error}", self.id)))?;
        entry.sequence = self.sequence;
        entry.hash = self.hash.clone();
        entry.previous_hash = self.previous_hash.clone();
        Ok(entry)
    }

    /// What is wrong with this row after an entry whose hash is `previous`, if anything.
    fn problem(&self, previous: &str) -> Option<&'static str> {
        if self.previous_hash != previous {
            return Some("does not link to the entry before it");
        }
        if link(&self.previous_hash, &self.body) != self.hash {
            return Some("content does not match its hash");
        }
        let Ok(entry) = AuditLog::decode(self.body.as_slice()) else { return Some("content does not decode") };
        let event_time = entry.event_time.as_ref().map_or(0, time::from_timestamp);
        let actor = entry.actor.as_ref().map(|actor| actor.user_id.as_str()).unwrap_or_default();
        let columns_agree = entry.id == self.id
            && entry.action == self.action
            && entry.resource_type == self.resource_type
            && entry.resource_id == self.resource_id
            && actor == self.actor_user_id
            && i64::from(entry.outcome) == self.outcome
            && event_time == self.event_time
            && search_text(&entry) == self.search_text;
        (!columns_agree).then_some("columns differ from the recorded entry")
    }
}

/// Appends `entry` to its organization's chain, once per `event_id`: a second append of the
/// same event returns the entry the first made. Fills the id, organization, record time
/// and chain fields.
pub async fn append(tx: &mut TenantTx, event_id: &str, mut entry: AuditLog) -> Result<AuditLog, ApiError> {
    let tenant = tx.tenant().to_string();
    tx.serialize_on("audit").await?;
    let statement = format!("SELECT {COLUMNS} FROM audit_logs WHERE organization_id = $1 AND event_id = $2");
    let existing = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(&tenant)
        .bind(event_id)
        .fetch_optional(tx.connection())
        .await?;
    if let Some(row) = existing {
        return StoredRow::read(&row)?.entry();
    }
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT sequence, hash FROM audit_logs WHERE organization_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&tenant)
    .fetch_optional(tx.connection())
    .await?;
    let (sequence, previous_hash) = last.map_or((1, GENESIS.to_string()), |(sequence, hash)| (sequence + 1, hash));
    let now = time::now_micros();
    entry.id = uuid::Uuid::now_v7().to_string();
    entry.organization_id = tenant.clone();
    entry.create_time = Some(time::to_timestamp(now));
    if entry.event_time.is_none() {
        entry.event_time = entry.create_time;
    }
    entry.sequence = 0;
    entry.hash.clear();
    entry.previous_hash.clear();
    let body = entry.encode_to_vec();
    let searchable = search_text(&entry);
    let hash = link(&previous_hash, &body);
    let actor = entry.actor.as_ref().map(|actor| actor.user_id.clone()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_logs (organization_id, sequence, id, event_id, action, resource_type, resource_id, \
         actor_user_id, outcome, event_time, body, previous_hash, hash, search_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&tenant)
    .bind(sequence)
    .bind(&entry.id)
    .bind(event_id)
    .bind(&entry.action)
    .bind(&entry.resource_type)
    .bind(&entry.resource_id)
    .bind(&actor)
    .bind(i64::from(entry.outcome))
    .bind(entry.event_time.as_ref().map_or(now, time::from_timestamp))
    .bind(body)
    .bind(&previous_hash)
    .bind(&hash)
    .bind(searchable)
    .execute(tx.connection())
    .await?;
    entry.sequence = sequence;
    entry.hash = hash;
    entry.previous_hash = previous_hash;
    Ok(entry)
}

/// One entry by id.
pub async fn entry(tx: &mut TenantTx, id: &str) -> Result<Option<AuditLog>, ApiError> {
    let statement = format!("SELECT {COLUMNS} FROM audit_logs WHERE organization_id = $1 AND id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tx.tenant().to_string())
        .bind(id)
        .fetch_optional(tx.connection())
        .await?;
    row.map(|row| StoredRow::read(&row)?.entry()).transpose()
}

/// What a listing keeps; empty text and zero match everything.
#[derive(Debug, Default)]
pub struct Filter {
    pub actor_user_id: String,
    pub action: String,
    /// Actions starting with this (`security.` for security events).
    pub action_prefix: String,
    pub resource_type: String,
    pub resource_id: String,
    pub outcome: i64,
    /// `[start, end)`, microseconds.
    pub period: (i64, i64),
    /// Words every entry must hold (see `validate::words`).
    pub words: Vec<String>,
}

/// Entries matching `filter`, newest first, after the entry at `before` (a sequence).
pub async fn page(
    tx: &mut TenantTx,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditLog>, ApiError> {
    let mut conditions = vec!["organization_id = $1".to_string(), "event_time >= $2".into(), "event_time < $3".into()];
    let mut texts = Vec::new();
    for (column, value) in [
        ("actor_user_id", &filter.actor_user_id),
        ("action", &filter.action),
        ("resource_type", &filter.resource_type),
        ("resource_id", &filter.resource_id),
    ] {
        if !value.is_empty() {
            texts.push(value.clone());
            conditions.push(format!("{column} = ${}", texts.len() + 3));
        }
    }
    if !filter.action_prefix.is_empty() {
        // A prefix match without LIKE's wildcards: the prefix is data, not a pattern.
        texts.push(filter.action_prefix.clone());
        let n = texts.len() + 3;
        conditions.push(format!("substr(action, 1, length(${n})) = ${n}"));
    }
    if !filter.words.is_empty() {
        let n = texts.len() + 4;
        match tx.backend() {
            Backend::Postgres => {
                texts.push(filter.words.join(" "));
                conditions.push(format!("search @@ plainto_tsquery('simple', ${n})"));
            }
            // FTS5: each word quoted matches literally; words side by side must all match.
            Backend::Sqlite => {
                texts.push(filter.words.iter().map(|word| format!("\"{word}\"")).collect::<Vec<_>>().join(" "));
                conditions.push(format!(
                    "sequence IN (SELECT sequence FROM audit_logs_search \
                     WHERE audit_logs_search MATCH ${n} AND organization_id = $1)"
                ));
            }
        }
    }
    let mut next = texts.len() + 4;
    if filter.outcome != 0 {
        conditions.push(format!("outcome = ${next}"));
        next += 1;
    }
    if before.is_some() {
        conditions.push(format!("sequence < ${next}"));
        next += 1;
    }
    let statement = format!(
        "SELECT {COLUMNS} FROM audit_logs WHERE {} ORDER BY sequence DESC LIMIT ${next}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tx.tenant().to_string())
        .bind(filter.period.0)
        .bind(filter.period.1);
    for text in texts {
        query = query.bind(text);
    }
    if filter.outcome != 0 {
        query = query.bind(filter.outcome);
    }
    if let Some(before) = before {
        query = query.bind(before);
    }
    let rows = query.bind(limit).fetch_all(tx.connection()).await?;
    rows.iter().map(|row| StoredRow::read(row)?.entry()).collect()
}

/// Entries whose event time is in `[start, end)`, oldest first by chain position, after
/// `after` (a sequence): what reports read, batch by batch.
pub async fn in_period(
    tx: &mut TenantTx,
    (start, end): (i64, i64),
    after: i64,
    limit: i64,
) -> Result<Vec<AuditLog>, ApiError> {
    let statement = format!(
        "SELECT {COLUMNS} FROM audit_logs WHERE organization_id = $1 AND event_time >= $2 AND event_time < $3 \
         AND sequence > $4 ORDER BY sequence LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(tx.tenant().to_string())
        .bind(start)
        .bind(end)
        .bind(after)
        .bind(limit)
        .fetch_all(tx.connection())
        .await?;
    rows.iter().map(|row| StoredRow::read(row)?.entry()).collect()
}

/// Walks the organization's chain from its first entry (or from the latest retention
/// checkpoint, every checkpoint's signature checked by `signed`), in batches, and stops at
/// the first entry that breaks it.
pub async fn verify(
    tx: &mut TenantTx,
    signed: impl Fn(&Checkpoint) -> bool,
) -> Result<AuditTrailVerification, ApiError> {
    let tenant = tx.tenant().to_string();
    let mut verification = AuditTrailVerification { intact: true, ..Default::default() };
    let (mut sequence, mut previous) = (0_i64, GENESIS.to_string());
    for checkpoint in checkpoints(tx).await? {
        if !signed(&checkpoint) {
            verification.intact = false;
            verification.first_broken_sequence = checkpoint.through_sequence;
            verification.problem = format!(
                "the retention checkpoint through entry {} is not signed by the platform",
                checkpoint.through_sequence
            );
            return Ok(verification);
        }
        (sequence, previous) = (checkpoint.through_sequence, checkpoint.hash);
        verification.checkpoint_sequence = sequence;
        verification.checkpoint_time = Some(time::to_timestamp(checkpoint.created_at));
    }
    loop {
        let statement = format!(
            "SELECT {COLUMNS} FROM audit_logs WHERE organization_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(&tenant)
            .bind(sequence)
            .bind(VERIFY_BATCH)
            .fetch_all(tx.connection())
            .await?;
        for row in &rows {
            let row = StoredRow::read(row)?;
            let problem = if row.sequence != sequence + 1 {
                Some("an entry before it is missing")
            } else {
                row.problem(&previous)
            };
            if let Some(problem) = problem {
                verification.intact = false;
                verification.first_broken_log_id = row.id.clone();
                verification.first_broken_sequence = row.sequence;
                verification.problem = problem.to_string();
                return Ok(verification);
            }
            verification.entries_checked += 1;
            sequence = row.sequence;
            previous = row.hash;
        }
        if (rows.len() as i64) < VERIFY_BATCH {
            return Ok(verification);
        }
    }
}
