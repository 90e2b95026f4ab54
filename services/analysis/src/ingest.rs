//! Storing synced GRC records: each ingest stream (a page of records, or one table's
//! reconciliation) is one transaction in the organization named by its header. Records are
//! created, updated when their content changed, or recognised unchanged; references are
//! recorded with their target table; reconciliation deletes what ServiceNow no longer has.

use std::collections::{BTreeMap, HashMap, HashSet};

use complianceiq_kit::crypto::sha256_hex;
use complianceiq_kit::db::{ModuleDatabase, TenantTx};
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::analysis::v1::ingest_records_request::Item;
use complianceiq_proto::complianceiq::analysis::v1::{
    GrcRecord, IngestRecordsRequest, IngestRecordsResponse, TableIngestStats,
};
use complianceiq_servicenow::{datetime, tables};
use futures::{Stream, StreamExt};
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
    let mut tx = database.write(organization).await?;
    let mut stats: BTreeMap<String, TableIngestStats> = BTreeMap::new();
    let mut present: HashMap<String, HashSet<String>> = HashMap::new();
    let now = time::now_micros();
    while let Some(message) = stream.next().await {
        let message = message.map_err(|status| ApiError::Unavailable {
            reason: "STREAM_BROKEN",
            message: format!("the ingest stream broke: {}", status.message()),
            retry_after: None,
        })?;
        match message.item {
            Some(Item::Records(batch)) => {
                for record in batch.records {
                    let table = check_record(&record)?;
                    let entry = stats_of(&mut stats, table.name);
                    entry.received += 1;
                    match store(&mut tx, &instance, table, &record, now).await? {
                        Stored::Created => entry.created += 1,
                        Stored::Updated => entry.updated += 1,
                        Stored::Unchanged => entry.unchanged += 1,
                    }
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
                let keep = present.remove(table.name).unwrap_or_default();
                let deleted = reconcile(&mut tx, &instance, table.name, &keep, &end.as_of).await?;
                stats_of(&mut stats, table.name).deleted += deleted;
            }
            Some(Item::Header(_)) => {
                return Err(ApiError::invalid_field("header", "REPEATED", "an ingest stream has one header"));
            }
            None => return Err(ApiError::invalid_field("item", "REQUIRED", "an ingest message carries an item")),
        }
    }
    tx.commit().await?;
    Ok(IngestRecordsResponse { tables: stats.into_values().collect() })
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
    let hex = record.sys_id.len() == 32 && record.sys_id.chars().all(|c| c.is_ascii_hexdigit());
    if !hex {
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

enum Stored {
    Created,
    Updated,
    Unchanged,
}

async fn store(
    tx: &mut TenantTx,
    instance: &str,
    table: tables::Table,
    record: &GrcRecord,
    now: i64,
) -> Result<Stored, ApiError> {
    let tenant = tx.tenant().to_string();
    // Sorted, so the same content always hashes the same.
    let fields: BTreeMap<&String, &String> = record.fields.iter().collect();
    let json = serde_json::to_string(&fields).map_err(|e| ApiError::internal(e.to_string()))?;
    let hash = sha256_hex(json.as_bytes());
    let existing = sqlx::query(
        "SELECT content_hash FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 AND sys_id = $4",
    )
    .bind(&tenant)
    .bind(instance)
    .bind(table.name)
    .bind(&record.sys_id)
    .fetch_optional(tx.connection())
    .await?;
    let outcome = match existing {
        Some(row) if row.try_get::<String, _>(0)? == hash => {
            sqlx::query(
                "UPDATE grc_records SET synced_at = $1, updated_on = $2 \
                 WHERE organization_id = $3 AND instance_id = $4 AND table_name = $5 AND sys_id = $6",
            )
            .bind(now)
            .bind(&record.updated_on)
            .bind(&tenant)
            .bind(instance)
            .bind(table.name)
            .bind(&record.sys_id)
            .execute(tx.connection())
            .await?;
            return Ok(Stored::Unchanged);
        }
        Some(_) => {
            sqlx::query(
                "UPDATE grc_records SET updated_on = $1, fields = $2, content_hash = $3, synced_at = $4 \
                 WHERE organization_id = $5 AND instance_id = $6 AND table_name = $7 AND sys_id = $8",
            )
            .bind(&record.updated_on)
            .bind(&json)
            .bind(&hash)
            .bind(now)
            .bind(&tenant)
            .bind(instance)
            .bind(table.name)
            .bind(&record.sys_id)
            .execute(tx.connection())
            .await?;
            Stored::Updated
        }
        None => {
            sqlx::query(
                "INSERT INTO grc_records (organization_id, instance_id, table_name, sys_id, kind, updated_on, fields, \
                 content_hash, first_synced_at, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(&tenant)
            .bind(instance)
            .bind(table.name)
            .bind(&record.sys_id)
            .bind(table.kind)
            .bind(&record.updated_on)
            .bind(&json)
            .bind(&hash)
            .bind(now)
            .execute(tx.connection())
            .await?;
            Stored::Created
        }
    };
    sqlx::query("DELETE FROM grc_references WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 AND sys_id = $4")
        .bind(&tenant)
        .bind(instance)
        .bind(table.name)
        .bind(&record.sys_id)
        .execute(tx.connection())
        .await?;
    for (field, target_table) in table.references() {
        let Some(target) = record.fields.get(field).filter(|value| !value.is_empty()) else { continue };
        sqlx::query(
            "INSERT INTO grc_references (organization_id, instance_id, table_name, sys_id, field, target_table, target_sys_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&tenant)
        .bind(instance)
        .bind(table.name)
        .bind(&record.sys_id)
        .bind(field)
        .bind(target_table)
        .bind(target)
        .execute(tx.connection())
        .await?;
    }
    Ok(outcome)
}

/// Deletes stored records of `table` missing from `keep` and last updated at or before
/// `as_of`; how many.
async fn reconcile(
    tx: &mut TenantTx,
    instance: &str,
    table: &str,
    keep: &HashSet<String>,
    as_of: &str,
) -> Result<i64, ApiError> {
    let tenant = tx.tenant().to_string();
    let rows = sqlx::query(
        "SELECT sys_id FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 AND updated_on <= $4",
    )
    .bind(&tenant)
    .bind(instance)
    .bind(table)
    .bind(as_of)
    .fetch_all(tx.connection())
    .await?;
    let mut deleted = 0;
    for row in rows {
        let sys_id: String = row.try_get(0)?;
        if keep.contains(&sys_id) {
            continue;
        }
        for statement in [
            "DELETE FROM grc_references WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 AND sys_id = $4",
            "DELETE FROM grc_records WHERE organization_id = $1 AND instance_id = $2 AND table_name = $3 AND sys_id = $4",
        ] {
            sqlx::query(statement)
                .bind(&tenant)
                .bind(instance)
                .bind(table)
                .bind(&sys_id)
                .execute(tx.connection())
                .await?;
        }
        deleted += 1;
    }
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
    let removed = sqlx::query("DELETE FROM grc_records WHERE organization_id = $1 AND instance_id = $2")
        .bind(&tenant)
        .bind(instance)
        .execute(tx.connection())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(removed)
}
