//! Migrations, per backend and per owner. Several modules share one database (the design's
//! core_db holds six services), so history is kept per owner (`kit`, `organization`, ...)
//! in `ciq_schema_migrations`, and each owner numbers its own migrations from 1.
//!
//! Every run happens in one transaction under a lock (an advisory lock on PostgreSQL, the
//! write lock on SQLite), so concurrent starts do not race. A migration edited after it
//! was applied is refused by checksum rather than silently diverging.

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use super::{Backend, Database, DatabaseError};
use crate::time;

/// One schema change, written for each backend.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// 1, 2, 3 ... within the owner.
    pub version: i64,
    /// File stem, e.g. `0001_organizations`.
    pub name: &'static str,
    /// SQL for SQLite.
    pub sqlite: &'static str,
    /// SQL for PostgreSQL, including row-level security for tenant tables.
    pub postgres: &'static str,
}

impl Migration {
    fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    fn checksum(&self, backend: Backend) -> String {
        Sha256::digest(self.sql(backend).as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Declares a migration from `migrations/sqlite/<name>.sql` and `migrations/postgres/<name>.sql`
/// of the calling crate.
#[macro_export]
macro_rules! migration {
    ($version:literal, $name:literal) => {
        $crate::db::Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres/", $name, ".sql")),
        }
    };
}

/// The migrations of one owner.
#[derive(Clone, Copy, Debug)]
pub struct MigrationSet {
    /// `kit` or a module name.
    pub owner: &'static str,
    /// In version order.
    pub migrations: &'static [Migration],
}

/// The kit's own schema, present in every database: the outbox, consumer de-duplication, the
/// job queue ([`crate::jobs`]), retention settings ([`crate::retention`]), and
/// (PostgreSQL) the function that applies tenant isolation to a table.
pub const KIT_MIGRATIONS: MigrationSet = MigrationSet {
    owner: "kit",
    migrations: &[
        crate::migration!(1, "0001_outbox"),
        crate::migration!(2, "0002_tenant_isolation"),
        crate::migration!(3, "0003_outbox_source"),
        crate::migration!(4, "0004_jobs"),
        crate::migration!(5, "0005_retention"),
    ],
};

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// `(owner, version, name)` applied by this run.
    pub applied: Vec<(String, i64, String)>,
}

const ADVISORY_LOCK_KEY: i64 = 0x0043_4951_5f4d_4947; // "CIQ_MIG" in ASCII

/// Applies what is pending. On PostgreSQL, when `application_role` is given, makes sure the
/// role exists without privileges that bypass row-level security, and grants it data access.
pub async fn apply(
    database: &Database,
    sets: &[MigrationSet],
    application_role: Option<&str>,
) -> Result<MigrationReport, DatabaseError> {
    for set in sets {
        for (index, migration) in set.migrations.iter().enumerate() {
            if migration.version != index as i64 + 1 {
                return Err(DatabaseError::Migration(format!(
                    "{} migration {} has version {}; versions must run 1, 2, 3 ... without gaps",
                    set.owner, migration.name, migration.version
                )));
            }
        }
    }
    let backend = database.backend();
    let context = format!("migrating the {} database", database.group().name());
    let begin = if backend == Backend::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let mut tx = database.pool().begin_with(begin).await.map_err(DatabaseError::sqlx(context.clone()))?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADVISORY_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(DatabaseError::sqlx(context.clone()))?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ciq_schema_migrations (\
           owner TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, \
           checksum TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (owner, version))",
    )
    .execute(&mut *tx)
    .await
    .map_err(DatabaseError::sqlx(context.clone()))?;

    let applied_rows = sqlx::query("SELECT owner, version, name, checksum FROM ciq_schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(DatabaseError::sqlx(context.clone()))?;
    let applied: Vec<(String, i64, String, String)> =
        applied_rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect();

    let mut report = MigrationReport::default();
    for set in sets {
        for (owner, version, name, _) in applied.iter().filter(|(owner, ..)| owner == set.owner) {
            if *version > set.migrations.len() as i64 {
                return Err(DatabaseError::Migration(format!(
                    "the {} database has {owner} migration {version} ({name}), which this build does not know; \
                     it was migrated by a newer version",
                    database.group().name()
                )));
            }
        }
        for migration in set.migrations {
            let checksum = migration.checksum(backend);
            let done = applied.iter().find(|(owner, version, ..)| owner == set.owner && *version == migration.version);
            if let Some((_, _, _, stored)) = done {
                if *stored != checksum {
                    return Err(DatabaseError::Migration(format!(
                        "{} migration {} changed after it was applied; add a new migration instead",
                        set.owner, migration.name
                    )));
                }
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(migration.sql(backend)))
                .execute(&mut *tx)
                .await
                .map_err(DatabaseError::sqlx(format!("{} migration {}", set.owner, migration.name)))?;
            sqlx::query(
                "INSERT INTO ciq_schema_migrations (owner, version, name, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(set.owner)
            .bind(migration.version)
            .bind(migration.name)
            .bind(&checksum)
            .bind(time::now_micros())
            .execute(&mut *tx)
            .await
            .map_err(DatabaseError::sqlx(context.clone()))?;
            report.applied.push((set.owner.to_string(), migration.version, migration.name.to_string()));
        }
    }

    if let (Backend::Postgres, Some(role)) = (backend, application_role) {
        for statement in application_role_statements(role)? {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(DatabaseError::sqlx(format!("granting access to role {role}")))?;
        }
    }
    tx.commit().await.map_err(DatabaseError::sqlx(context))?;
    Ok(report)
}

/// Migrations of `sets` not yet applied to `database`, as `owner version (name)`.
pub async fn pending(database: &Database, sets: &[MigrationSet]) -> Result<Vec<String>, DatabaseError> {
    let applied: Vec<(String, i64)> =
        match sqlx::query("SELECT owner, version FROM ciq_schema_migrations").fetch_all(database.pool()).await {
            Ok(rows) => rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
            // Never migrated: the history table itself is missing.
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some("42P01") || error.message().contains("no such table") =>
            {
                Vec::new()
            }
            Err(error) => {
                return Err(DatabaseError::sqlx(format!("reading the {} migration history", database.group().name()))(
                    error,
                ));
            }
        };
    Ok(sets
        .iter()
        .flat_map(|set| set.migrations.iter().map(move |migration| (set.owner, migration)))
        .filter(|(owner, migration)| !applied.iter().any(|(o, v)| o == owner && *v == migration.version))
        .map(|(owner, migration)| format!("{owner} {} ({})", migration.version, migration.name))
        .collect())
}

/// The role the services connect as: created if missing, never superuser or BYPASSRLS,
/// with data access to every table except the migration history.
fn application_role_statements(role: &str) -> Result<Vec<String>, DatabaseError> {
    let valid = !role.is_empty()
        && role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(DatabaseError::Config(format!(
            "application role {role:?} must be lowercase letters, digits and underscores"
        )));
    }
    Ok(vec![
        // Roles are cluster-wide: two databases migrated at once may both try to create it.
        format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
                 CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; \
               END IF; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
             END $$"
        ),
        format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
        // Append-only tables (those with an `*_append_only` trigger): no changes, even
        // before the trigger would refuse them.
        format!(
            "DO $$ DECLARE target regclass; BEGIN \
               FOR target IN SELECT DISTINCT tgrelid::regclass FROM pg_trigger \
                             WHERE tgname LIKE '%\\_append\\_only%' AND NOT tgisinternal LOOP \
                 EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM \"{role}\"', target); \
               END LOOP; \
             END $$"
        ),
        // Read-only: services check at start that their schema is current.
        format!("REVOKE ALL ON ciq_schema_migrations FROM \"{role}\""),
        format!("GRANT SELECT ON ciq_schema_migrations TO \"{role}\""),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_that_could_inject_sql_are_refused() {
        for bad in ["", "App", "a;DROP TABLE x", "a\"b", "1abc", &"a".repeat(64)] {
            assert!(application_role_statements(bad).is_err(), "{bad:?}");
        }
        assert!(application_role_statements("complianceiq_app").is_ok());
    }
}
