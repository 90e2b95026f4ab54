//! Databases: one pool per database group over sqlx's Any driver, so every query is
//! written once (PostgreSQL-style `$n` placeholders, which SQLite accepts too) and runs
//! on SQLite in dev and PostgreSQL in production. Columns use the types the Any driver
//! maps on both engines: ids and enums as TEXT, times as BIGINT microseconds, booleans as
//! BIGINT 0/1 with a CHECK (Any cannot decode SQLite booleans), blobs as BLOB/BYTEA.
//!
//! Tenant scoping lives here and nowhere else: [`ModuleDatabase::write`] and
//! [`ModuleDatabase::read`] open a transaction bound to one organization. On PostgreSQL
//! that sets `app.current_organization_id` for the transaction, which the row-level
//! security policies of every tenant table check; queries also filter by
//! [`TenantTx::tenant`] themselves, so isolation never rests on one mechanism.

pub mod migrate;
pub mod sql;
mod tenant;

use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::Notify;

pub use migrate::Migration;
pub use tenant::{GlobalTx, TenantTx};

use crate::config::DatabaseGroup;
use crate::error::ApiError;
use crate::ids::{ModuleName, OrganizationId};

/// Which engine a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, the default.
    Sqlite,
    /// Production.
    Postgres,
}

impl Backend {
    /// The backend a URL names.
    pub fn of_url(url: &str) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(DatabaseError::Config(format!(
                "unsupported database URL scheme in {}; use postgres:// or sqlite://",
                redact_url(url)
            )))
        }
    }
}

/// Failures while connecting or migrating (start-up), as opposed to request failures.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The server refused or failed.
    #[error("{context}: {source}")]
    Sqlx { context: String, source: sqlx::Error },
    /// A migration problem.
    #[error("{0}")]
    Migration(String),
}

impl DatabaseError {
    pub(crate) fn sqlx(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let context = context.into();
        move |source| Self::Sqlx { context, source }
    }
}

/// A URL with its password replaced, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable database URL>".into(),
    }
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    group: DatabaseGroup,
    /// Woken after a commit that wrote to the outbox, so the relay publishes at once.
    outbox_written: Notify,
}

/// A pool for one database group. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

static INSTALL_DRIVERS: Once = Once::new();

impl Database {
    /// Connects to `url`. SQLite files (and their directory) are created if missing.
    pub async fn connect(group: DatabaseGroup, url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            create_sqlite_directory(url)?;
        }
        let options: AnyConnectOptions =
            url.parse().map_err(DatabaseError::sqlx(format!("parsing database URL {}", redact_url(url))))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed while one writer commits; the busy timeout
                        // makes concurrent writers wait instead of failing. A sync's page
                        // dirties thousands of pages of large indexes: with the default 2 MB
                        // cache they spill to the WAL mid-transaction and are read back, and a
                        // checkpoint (with its fsync) follows nearly every commit. A cache of up
                        // to 32 MB per connection (filled only as used) and checkpoints every
                        // 32 MB of WAL keep that off the write path (BENCHMARKS.md).
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8192;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| {
                let context = format!("connecting to {} database {}", group.name(), redact_url(url));
                // On a new server the application role does not exist until the first
                // migration creates it: say so instead of leaving a bare refusal.
                let unknown_role =
                    source.as_database_error().and_then(|error| error.code()).as_deref() == Some("28000");
                if unknown_role {
                    DatabaseError::Config(format!(
                        "{context}: {source}; if the role is the application role, the {} database lacks \
                         migrations: run `complianceiq migrate` (it creates the role) first",
                        group.name()
                    ))
                } else {
                    DatabaseError::Sqlx { context, source }
                }
            })?;
        Ok(Self { inner: Arc::new(Inner { pool, backend, group, outbox_written: Notify::new() }) })
    }

    /// Refuses a PostgreSQL connection whose role would bypass row-level security
    /// (superuser or BYPASSRLS), unless explicitly allowed.
    pub async fn ensure_row_level_security_applies(&self, allow_bypass: bool) -> Result<(), DatabaseError> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        let (user, superuser, bypass): (String, bool, bool) =
            sqlx::query_as("SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(self.pool())
                .await
                .map_err(DatabaseError::sqlx("checking the database role"))?;
        if (superuser || bypass) && !allow_bypass {
            return Err(DatabaseError::Config(format!(
                "the {} database connection uses role {user}, which bypasses row-level security \
                 (superuser or BYPASSRLS); connect as the application role instead (see \
                 docs/architecture.md, \"Data\"), or set CIQ_DATABASE_ALLOW_RLS_BYPASS=true",
                self.group().name()
            )));
        }
        // An owner may switch row-level security off (ALTER TABLE … DISABLE ROW LEVEL
        // SECURITY, DROP POLICY): the application must not own what it reads.
        let owned: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r' AND pg_get_userbyid(c.relowner) = current_user \
             ORDER BY 1 LIMIT 5",
        )
        .fetch_all(self.pool())
        .await
        .map_err(DatabaseError::sqlx("checking table owners"))?;
        if !owned.is_empty() && !allow_bypass {
            let tables: Vec<&str> = owned.iter().map(|(table,)| table.as_str()).collect();
            return Err(DatabaseError::Config(format!(
                "the {} database connection uses role {user}, which owns tables ({}): an owner can switch \
                 row-level security off. Run migrations as a separate schema owner (CIQ_DATABASE_ADMIN_USER) \
                 and connect as the application role, or set CIQ_DATABASE_ALLOW_RLS_BYPASS=true",
                self.group().name(),
                tables.join(", ")
            )));
        }
        Ok(())
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The group this database serves.
    pub fn group(&self) -> DatabaseGroup {
        self.inner.group
    }

    /// The pool, for infrastructure queries (migrations, outbox relay). Tenant data goes
    /// through [`ModuleDatabase`] only.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub(crate) fn outbox_written(&self) -> &Notify {
        &self.inner.outbox_written
    }

    /// A handle for one module, whose writes emit events under the module's name.
    pub fn for_module(&self, module: ModuleName) -> ModuleDatabase {
        ModuleDatabase { database: self.clone(), module }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

fn create_sqlite_directory(url: &str) -> Result<(), DatabaseError> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|error| DatabaseError::Config(format!("creating {}: {error}", parent.display())))?;
    }
    Ok(())
}

/// How a transaction will be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// A module's view of its database: tenant-scoped transactions only.
#[derive(Clone)]
pub struct ModuleDatabase {
    database: Database,
    module: ModuleName,
}

impl ModuleDatabase {
    /// Closes the pool (an operator command's, when it is done).
    pub async fn close(&self) {
        self.database.close().await;
    }

    /// A read-write transaction scoped to `organization`.
    pub async fn write(&self, organization: OrganizationId) -> Result<TenantTx, ApiError> {
        TenantTx::begin(&self.database, self.module, organization, Access::ReadWrite).await
    }

    /// A read-only transaction scoped to `organization`.
    pub async fn read(&self, organization: OrganizationId) -> Result<TenantTx, ApiError> {
        TenantTx::begin(&self.database, self.module, organization, Access::ReadOnly).await
    }

    /// A second read-only transaction for reads that may run in parallel with one already
    /// open: on a connection the pool has idle now, or `None` (read on the first instead).
    /// Never waiting is what makes it safe: tasks that each hold a connection and wait for
    /// another could exhaust the pool and wait on each other.
    pub async fn try_read(&self, organization: OrganizationId) -> Result<Option<TenantTx>, ApiError> {
        TenantTx::try_begin(&self.database, self.module, organization, Access::ReadOnly).await
    }

    /// A read-write transaction over data that belongs to no organization (see [`GlobalTx`]).
    pub async fn global_write(&self) -> Result<GlobalTx, ApiError> {
        GlobalTx::begin(&self.database, self.module, Access::ReadWrite).await
    }

    /// A read-only transaction over data that belongs to no organization.
    pub async fn global_read(&self) -> Result<GlobalTx, ApiError> {
        GlobalTx::begin(&self.database, self.module, Access::ReadOnly).await
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.database.backend()
    }
}
