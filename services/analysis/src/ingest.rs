//! Storing synced GRC records: each ingest stream (a page of records, or one table's
//! reconciliation) is one transaction in the organization named by its header. Records are
//! created, updated when their content changed, or recognised unchanged; references are
//! recorded with their target table; reconciliation deletes what ServiceNow no longer has.

use std::collections::{BTreeMap, HashMap, HashSet};

use complianceiq_kit::crypto::sha256_hex;
use complianceiq_kit::db::{Backend, ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::analysis::v1::ingest_records_request::Item;
use complianceiq_proto::complianceiq::analysis::v1::{
    GrcRecord, IngestRecordsRequest, IngestRecordsResponse, ReconcileTable, TableIngestStats,
};
use complianceiq_servicenow::{datetime, tables};
use futures::{Stream, StreamExt};

use complianceiq_kit::db::sql::{bind_ids, list, placeholders, statement};
use sqlx::Row;

/// Stores one stream.
pub async fn ingest(
    database: &ModuleDatabase,
    mut stream: impl Stream<Item = Result<IngestRecordsRequest, tonic::Status>> + Unpin,
) -> Result<IngestRecordsResponse, ApiError> {
    let first = stream
        .next()
        .await
        .transpose()
        .map_err(|status| ApiError::invalid_field("header", "STREAM", status.message().to_string()))?;
    let Some(IngestRecordsRequest { item: Some(Item::Header(header)) }) = first else {
        return Err(ApiError::invalid_field(
            "header",
            "REQUIRED",
            "the first message of an ingest stream is its header",
        ));
    };
    let organization = OrganizationId::parse_field("header.organization_id", &header.organization_id)?;
    let instance = complianceiq_kit::ids::parse_uuid("header.instance_id", &header.instance_id)?.to_string();
    let sync_run = complianceiq_kit::ids::parse_uuid("header.sync_run_id", &header.sync_run_id)?.to_string();
    let mut tx = database.write(organization).await?;
    // Streams of one instance take turns: a page sent again while its first delivery is
    // still being stored (a sync resumed after its process died) must see that delivery's
    // rows, or both would count the records as new and insert their references twice.
    tx.serialize_on(&format!("grc-records:{instance}")).await?;
    crate::jobs::store::note_instance(&mut tx, &instance, &header.instance_url, &header.instance_name).await?;
    let mut stats: BTreeMap<String, TableIngestStats> = BTreeMap::new();
    let mut present: HashMap<String, HashSet<String>> = HashMap::new();
    let mut missing = Vec::new();
    let mut completed = None;
    let now = time::now_micros();
    while let Some(message) = stream.next().await {
        let message = message.map_err(|status| ApiError::Unavailable {
            reason: "STREAM_BROKEN",
            message: format!("the ingest stream broke: {}", status.message()),
            retry_after: None,
        })?;
        match message.item {
            Some(Item::Records(batch)) => {
                let mut by_table: BTreeMap<&'static str, (tables::Table, Vec<&GrcRecord>)> = BTreeMap::new();
                for record in &batch.records {
                    let table = check_record(record)?;
                    by_table.entry(table.name).or_insert_with(|| (table, Vec::new())).1.push(record);
                }
                for (table, mut records) in by_table.into_values() {
                    let received = records.len() as i64;
                    // Only the users GRC records reference are kept.
                    if table.name == tables::USERS.name {
                        let ids: Vec<&str> = records.iter().map(|record| record.sys_id.as_str()).collect();
                        let referenced = referenced_among(&mut tx, &instance, table.name, &ids).await?;
                        records.retain(|record| referenced.contains(&record.sys_id));
                    }
                    let counts = store_batch(&mut tx, &instance, table, &records, now).await?;
                    let entry = stats_of(&mut stats, table.name);
                    entry.received += received;
                    entry.skipped += received - records.len() as i64;
                    entry.created += counts.created;
                    entry.updated += counts.updated;
                    entry.unchanged += counts.unchanged;
                }
            }
            Some(Item::Present(ids)) => {
                let table = known_table(&ids.table)?;
                present.entry(table.name.to_string()).or_default().extend(ids.sys_ids);
            }
            Some(Item::Reconcile(end)) => {
                let table = known_table(&end.table)?;
                if datetime::parse(&end.as_of).is_none() {
                    return Err(ApiError::invalid_field(
                        "reconcile.as_of",
                        "INVALID",
                        "as_of must be YYYY-MM-DD HH:MM:SS",
                    ));
                }
                let range = IdRange::of(&end)?;
                let keep = present.remove(table.name).unwrap_or_default();
                let deleted = reconcile(&mut tx, &instance, table.name, &keep, &end.as_of, range, now).await?;
                stats_of(&mut stats, table.name).deleted += deleted;
            }
            Some(Item::Missing(asked)) => {
                let table = known_table(&asked.target_table)?;
                missing.extend(missing_references(&mut tx, &instance, table.name).await?);
            }
            Some(Item::Complete(end)) => {
                if datetime::parse(&end.data_as_of).is_none() {
                    return Err(ApiError::invalid_field(
                        "complete.data_as_of",
                        "INVALID",
                        "data_as_of must be YYYY-MM-DD HH:MM:SS",
                    ));
                }
                completed = Some(end.data_as_of);
            }
            Some(Item::Header(_)) => {
                return Err(ApiError::invalid_field("header", "REPEATED", "an ingest stream has one header"));
            }
            None => return Err(ApiError::invalid_field("item", "REQUIRED", "an ingest message carries an item")),
        }
    }
    crate::jobs::store::note_stored(&mut tx, &instance, &sync_run, now).await?;
    if let Some(data_as_of) = completed {
        crate::jobs::store::note_completed_sync(&mut tx, &instance, &sync_run, &data_as_of).await?;
    }
    tx.commit().await?;
    keep_statistics(database).await?;
    Ok(IngestRecordsResponse { tables: stats.into_values().collect(), missing_sys_ids: missing })
}

/// Rows changed since the last statistics refresh, beyond which a refresh is due: past both
/// this floor and half the rows the tables hold, so a full sync refreshes a logarithmic
/// number of times.
const STATISTICS_FLOOR: i64 = 2_000;

/// On PostgreSQL, refreshes the planner's statistics of the record tables once they changed
/// by more than half since the last refresh. Without them, the plans a sync's statements were
/// prepared with while the tables were nearly empty stay in use as the tables grow (every
/// lookup of a page then reads the instance's whole table). SQLite plans each lookup by the
/// primary key regardless.
async fn keep_statistics(database: &ModuleDatabase) -> Result<(), ApiError> {
    if database.backend() != Backend::Postgres {
        return Ok(());
    }
    // A read to tell; a write transaction only when a refresh is due (ANALYZE writes).
    let mut check = database.global_read().await?;
    let row = sqlx::query(
        "SELECT COALESCE(SUM(n_mod_since_analyze), 0)::BIGINT, COALESCE(SUM(n_live_tup), 0)::BIGINT \
         FROM pg_stat_user_tables WHERE relname IN ('grc_records', 'grc_references')",
    )
    .fetch_one(check.connection())
    .await?;
    check.commit().await?;
    let (changed, live): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if changed <= STATISTICS_FLOOR || 2 * changed <= live {
        return Ok(());
    }
    let mut tx = database.global_write().await?;
    let refreshed: bool =
        sqlx::query("SELECT ciq_refresh_grc_statistics()").fetch_one(tx.connection()).await?.try_get(0)?;
    tracing::debug!(changed, live, refreshed, "statistics of the record tables refreshed");
    tx.commit().await
}

fn stats_of<'a>(stats: &'a mut BTreeMap<String, TableIngestStats>, table: &str) -> &'a mut TableIngestStats {
    stats
        .entry(table.to_string())
        .or_insert_with(|| TableIngestStats { table: table.to_string(), ..Default::default() })
}

fn known_table(name: &str) -> Result<tables::Table, ApiError> {
    tables::by_name(name)
        .ok_or_else(|| ApiError::invalid_field("table", "UNKNOWN_TABLE", format!("{name:?} is not a synced table")))
}

fn check_record(record: &GrcRecord) -> Result<tables::Table, ApiError> {
    let table = known_table(&record.table)?;
    if !complianceiq_servicenow::is_sys_id(&record.sys_id) {
        return Err(ApiError::invalid_field(
            "records.sys_id",
            "INVALID",
            format!("{:?} is not a sys_id", record.sys_id),
        ));
    }
    if datetime::parse(&record.updated_on).is_none() {
        return Err(ApiError::invalid_field(
            "records.updated_on",
            "INVALID",
            format!("{:?} is not YYYY-MM-DD HH:MM:SS", record.updated_on),
        ));
    }
    Ok(table)
}

/// What storing a batch did.
#[derive(Default)]
struct BatchCounts {
    created: i64,
    updated: i64,
    unchanged: i64,
}

/// Rows per multi-row statement (ten parameters each, far below every engine's limit).
const ROWS_PER_STATEMENT: usize = 100;

/// Stores the records of one table set-wise, a few statements per batch rather than a few
/// per record (which costs a round trip each on PostgreSQL). The statements are built from
/// placeholders only; every value is bound.
async fn store_batch(
    tx: &mut TenantTx,
    instance: &str,
    table: tables::Table,
    records: &[&GrcRecord],
    now: i64,
) -> Result<BatchCounts, ApiError> {
    let tenant = tx.tenant().to_string();
    // Sorted fields, so the same content always hashes the same; a page repeats no id.
    let mut prepared: BTreeMap<&str, (&GrcRecord, String, String)> = BTreeMap::new();
    for record in records {
        let fields: BTreeMap<&String, &String> = record.fields.iter().collect();
        let json = serde_json::to_string(&fields).map_err(|e| ApiError::internal(e.to_string()))?;
        let hash = sha256_hex(json.as_bytes());
        prepared.insert(record.sys_id.as_str(), (record, json, hash));
    }
    let ids: Vec<&str> = prepared.keys().copied().collect();
    let mut existing: HashMap<String, String> = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 5) {
        let sql = statement(
            tx.backend(),
            format!(
                "SELECT sys_id, content_hash FROM grc_records WHERE organization_id = $1 AND instance_id = $2 \
                 AND table_name = $3 AND sys_id IN ({})",
                list(4, chunk.len())
            ),
        );
        let query =
            bind_ids(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&tenant).bind(instance).bind(table.name), chunk);
        for row in query.fetch_all(tx.connection()).await? {
            existing.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    let mut counts = BatchCounts::default();
    let mut changed = Vec::new();
    let mut replaced = Vec::new();
    let mut unchanged = Vec::new();
    for (id, (record, json, hash)) in &prepared {
        match existing.get(*id) {
            Some(stored) if stored == hash => {
                counts.unchanged += 1;
                unchanged.push(*id);
            }
            Some(_) => {
                counts.updated += 1;
                replaced.push(*id);
                changed.push((*record, json, hash));
            }
            None => {
                counts.created += 1;
                changed.push((*record, json, hash));
            }
        }
    }
    keep_history(tx, instance, table.name, &replaced, now).await?;
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let sql = statement(
            tx.backend(),
            format!(
                "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, \
                 content_hash, first_synced_at, synced_at, valid_from) VALUES {} \
                 ON CONFLICT (organization_id, instance_id, table_name, sys_id) DO UPDATE SET updated_on = excluded.updated_on, \
                 fields = excluded.fields, content_hash = excluded.content_hash, synced_at = excluded.synced_at, \
                 valid_from = excluded.valid_from",
                placeholders(1, chunk.len(), 11)
            ),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (record, json, hash) in chunk {
            query = query
                .bind(&tenant)
                .bind(instance)
                .bind(table.name)
                .bind(&record.sys_id)
                .bind(table.kind)
                .bind(&record.updated_on)
                .bind(json.as_str())
                .bind(hash.as_str())
                .bind(now)
                .bind(now)
                .bind(now);
        }
        query.execute(tx.connection()).await?;
    }
    for chunk in unchanged.chunks(ROWS_PER_STATEMENT * 5) {
        let sql = statement(
            tx.backend(),
            format!(
                "UPDATE grc_records SET synced_at = $1 WHERE organization_id = $2 AND instance_id = $3 AND table_name = $4 \
                 AND sys_id IN ({})",
                list(5, chunk.len())
            ),
        );
        let query = bind_ids(
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(&tenant).bind(instance).bind(table.name),
            chunk,
        );
        query.execute(tx.connection()).await?;
    }
    // References of the changed records, rewritten (a created record has none to remove).
    for chunk in replaced.chunks(ROWS_PER_STATEMENT * 5) {
        let sql = statement(
            tx.backend(),
            format!(
                "DELETE FROM grc_references WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 \
                 AND sys_id IN ({})",
                list(4, chunk.len())
            ),
        );
        let query =
            bind_ids(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&tenant).bind(instance).bind(table.name), chunk);
        query.execute(tx.connection()).await?;
    }
    let references: Vec<(&str, &str, &str, &String)> = changed
        .iter()
        .flat_map(|(record, _, _)| {
            table.references().filter_map(move |(field, target_table)| {
                record
                    .fields
                    .get(field)
                    .filter(|value| !value.is_empty())
                    .map(|target| (record.sys_id.as_str(), field, target_table, target))
            })
        })
        .collect();
    for chunk in references.chunks(ROWS_PER_STATEMENT) {
        let sql = statement(
            tx.backend(),
            format!(
                "INSERT INTO grc_references (organization_id, instance_id, table_name, sys_id, field, target_table, target_sys_id) \
                 VALUES {}",
                placeholders(1, chunk.len(), 7)
            ),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (sys_id, field, target_table, target) in chunk {
            query = query
                .bind(&tenant)
                .bind(instance)
                .bind(table.name)
                .bind(*sys_id)
                .bind(*field)
                .bind(*target_table)
                .bind(target.as_str());
        }
        query.execute(tx.connection()).await?;
    }
    Ok(counts)
}

/// Moves the current versions of `ids` (records of `table` about to be replaced or deleted)
/// into the history, current until `now`, so reads as of an earlier sync still find them.
/// A version replaced in the same instant it became current was never visible: it is dropped.
async fn keep_history(tx: &mut TenantTx, instance: &str, table: &str, ids: &[&str], now: i64) -> Result<(), ApiError> {
    let tenant = tx.tenant().to_string();
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 5) {
        let sql = statement(
            tx.backend(),
            format!(
                "INSERT INTO grc_record_history (organization_id, instance_id, table_name, sys_id, updated_on, fields, \
                 valid_from, valid_to) \
                 SELECT organization_id, instance_id, table_name, sys_id, updated_on, fields, valid_from, $1 FROM grc_records \
                 WHERE organization_id = $2 AND instance_id = $3 AND table_name = $4 AND valid_from < $5 AND sys_id IN ({})",
                list(6, chunk.len())
            ),
        );
        // `now` bound twice keeps every parameter in order, for SQLite's positional binding.
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(&tenant).bind(instance).bind(table).bind(now);
        let query = bind_ids(query, chunk);
        query.execute(tx.connection()).await?;
    }
    Ok(())
}

/// Which of `ids` (records of `table`) stored records reference.
async fn referenced_among(
    tx: &mut TenantTx,
    instance: &str,
    table: &str,
    ids: &[&str],
) -> Result<HashSet<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let mut referenced = HashSet::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 5) {
        let sql = statement(
            tx.backend(),
            format!(
                "SELECT DISTINCT target_sys_id FROM grc_references WHERE organization_id = $1 AND instance_id = $2 \
                 AND target_table = $3 AND target_sys_id IN ({})",
                list(4, chunk.len())
            ),
        );
        let query = bind_ids(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&tenant).bind(instance).bind(table), chunk);
        for row in query.fetch_all(tx.connection()).await? {
            referenced.insert(row.try_get(0)?);
        }
    }
    Ok(referenced)
}

/// Records of `table` that stored records reference but the store lacks. Two index scans
/// and a difference here, rather than an anti-join the planner may run as a nested loop over
/// freshly filled tables it has no statistics for (3.7 s for 12 000 records on PostgreSQL).
async fn missing_references(tx: &mut TenantTx, instance: &str, table: &str) -> Result<Vec<String>, ApiError> {
    let tenant = tx.tenant().to_string();
    let referenced = sqlx::query(
        "SELECT DISTINCT target_sys_id FROM grc_references WHERE organization_id = $1 AND instance_id = $2 \
         AND target_table = $3 ORDER BY target_sys_id",
    )
    .bind(&tenant)
    .bind(instance)
    .bind(table)
    .fetch_all(tx.connection())
    .await?;
    let stored = sqlx::query(
        "SELECT sys_id FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3",
    )
    .bind(&tenant)
    .bind(instance)
    .bind(table)
    .fetch_all(tx.connection())
    .await?;
    let stored: HashSet<String> = stored.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
    let mut missing = Vec::new();
    for row in referenced {
        let id: String = row.try_get(0)?;
        if !stored.contains(&id) {
            missing.push(id);
        }
    }
    Ok(missing)
}

/// A range of sys_ids being reconciled: (after, through], either end open when empty.
#[derive(Clone, Copy, Debug)]
struct IdRange<'a> {
    after: &'a str,
    through: &'a str,
}

impl<'a> IdRange<'a> {
    fn of(end: &'a ReconcileTable) -> Result<Self, ApiError> {
        for (field, value) in
            [("reconcile.after_sys_id", &end.after_sys_id), ("reconcile.through_sys_id", &end.through_sys_id)]
        {
            // Lowercase, as ServiceNow writes sys_ids: ordered the same by every collation.
            let sys_id = complianceiq_servicenow::is_sys_id(value) && !value.bytes().any(|b| b.is_ascii_uppercase());
            if !value.is_empty() && !sys_id {
                return Err(ApiError::invalid_field(field, "INVALID", format!("{value:?} is not a sys_id")));
            }
        }
        if !end.after_sys_id.is_empty() && !end.through_sys_id.is_empty() && end.after_sys_id >= end.through_sys_id {
            return Err(ApiError::invalid_field(
                "reconcile.through_sys_id",
                "INVALID",
                "the range's upper bound must come after its lower bound",
            ));
        }
        Ok(Self { after: &end.after_sys_id, through: &end.through_sys_id })
    }

    /// By byte order, whatever the database's collation says.
    fn contains(&self, sys_id: &str) -> bool {
        sys_id > self.after && (self.through.is_empty() || sys_id <= self.through)
    }
}

/// Deletes stored records of `table` in `range` missing from `keep` and last updated at or
/// before `as_of`, keeping them in the history as current until `now`; how many.
async fn reconcile(
    tx: &mut TenantTx,
    instance: &str,
    table: &str,
    keep: &HashSet<String>,
    as_of: &str,
    range: IdRange<'_>,
    now: i64,
) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let select = "SELECT sys_id FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 \
                  AND updated_on <= $4 AND sys_id > $5";
    let query = if range.through.is_empty() {
        sqlx::query(select)
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!("{select} AND sys_id <= $6")))
    };
    let query = query.bind(&tenant).bind(instance).bind(table).bind(as_of).bind(range.after);
    let query = if range.through.is_empty() { query } else { query.bind(range.through) };
    let rows = query.fetch_all(tx.connection()).await?;
    let rows: Vec<_> =
        rows.into_iter().filter(|row| row.try_get::<String, _>(0).is_ok_and(|id| range.contains(&id))).collect();
    // Users nothing references any more are not kept either.
    let referenced = if table == tables::USERS.name {
        let stored: Vec<String> = rows.iter().map(|row| row.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        let ids: Vec<&str> = stored.iter().map(String::as_str).collect();
        Some(referenced_among(tx, instance, table, &ids).await?)
    } else {
        None
    };
    let mut gone = Vec::new();
    for row in &rows {
        let sys_id: String = row.try_get(0)?;
        if !(keep.contains(&sys_id) && referenced.as_ref().is_none_or(|referenced| referenced.contains(&sys_id))) {
            gone.push(sys_id);
        }
    }
    // Set-wise, a statement per table and chunk, as pages are stored.
    let ids: Vec<&str> = gone.iter().map(String::as_str).collect();
    keep_history(tx, instance, table, &ids, now).await?;
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 5) {
        for target in ["grc_references", "grc_records"] {
            let sql = statement(
                tx.backend(),
                format!(
                    "DELETE FROM {target} WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 \
                     AND sys_id IN ({})",
                    list(4, chunk.len())
                ),
            );
            let query = bind_ids(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&tenant).bind(instance).bind(table), chunk);
            query.execute(tx.connection()).await?;
        }
    }
    let deleted = gone.len() as i64;
    Ok(deleted)
}

/// Removes every record of an instance; how many.
pub async fn purge(database: &ModuleDatabase, organization: OrganizationId, instance: &str) -> Result<u64, ApiError> {
    let mut tx = database.write(organization).await?;
    let tenant = tx.tenant().to_string();
    sqlx::query("DELETE FROM grc_references WHERE organization_id = $1 AND instance_id = $2")
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?;
    for table in ["grc_record_history", "grc_sync_points"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE organization_id = $1 AND instance_id = $2"
        )))
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?;
    }
    let removed = sqlx::query("DELETE FROM grc_records WHERE organization_id = $1 AND instance_id = $2")
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?
        .rows_affected();
    // No analysis starts on it any more; its jobs stay as history.
    sqlx::query("DELETE FROM grc_instances WHERE organization_id = $1 AND instance_id = $2")
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?;
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconciled_range_is_two_lowercase_sys_ids_in_order_either_open() {
        let (low, high) = ("0".repeat(32), "f".repeat(32));
        let end = |after: &str, through: &str| ReconcileTable {
            after_sys_id: after.into(),
            through_sys_id: through.into(),
            ..Default::default()
        };
        let range = end(&low, &high);
        let range = IdRange::of(&range).unwrap();
        assert!(!range.contains(&low) && range.contains(&high) && range.contains(&"a".repeat(32)));
        let open = end("", "");
        assert!(IdRange::of(&open).unwrap().contains(&low));
        for (after, through) in [(high.as_str(), low.as_str()), (&low, &low), ("", &"F".repeat(32)), ("abc", "")] {
            assert!(IdRange::of(&end(after, through)).is_err(), "{after:?}..{through:?}");
        }
    }
}
