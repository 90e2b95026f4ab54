use complianceiq_proto::EventPayloadExt;
use complianceiq_proto::complianceiq::events::v1::{Event, event::Payload};
use prost::Message;
use sqlx::{Any, AnyConnection, Transaction};

use super::{Access, Backend, Database};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::ids::{EventId, ModuleName, OrganizationId};
use crate::time;

/// What both transaction kinds share: the connection, the outbox, the commit.
struct Core {
    transaction: Transaction<'static, Any>,
    database: Database,
    module: ModuleName,
    access: Access,
    emitted_events: bool,
}

impl Core {
    /// Begins a transaction; on PostgreSQL with `tenant`, the tenant setting travels in the
    /// same simple query as BEGIN, which saves a round trip on every tenant transaction.
    async fn begin(
        database: &Database,
        module: ModuleName,
        access: Access,
        tenant: Option<OrganizationId>,
    ) -> Result<Self, ApiError> {
        let transaction = database.pool().begin_with(Self::begin_statement(database, access, tenant)).await?;
        Ok(Self::on(transaction, database, module, access))
    }

    /// Like [`Core::begin`], but only on a connection the pool has idle now: `None` instead
    /// of waiting when it has none.
    async fn try_begin(
        database: &Database,
        module: ModuleName,
        access: Access,
        tenant: Option<OrganizationId>,
    ) -> Result<Option<Self>, ApiError> {
        let transaction = database.pool().try_begin_with(Self::begin_statement(database, access, tenant)).await?;
        Ok(transaction.map(|transaction| Self::on(transaction, database, module, access)))
    }

    fn begin_statement(
        database: &Database,
        access: Access,
        tenant: Option<OrganizationId>,
    ) -> sqlx::AssertSqlSafe<String> {
        let begin = match (database.backend(), access) {
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads
            // and then writes can fail with SQLITE_BUSY instead of waiting.
            (Backend::Sqlite, Access::ReadWrite) => "BEGIN IMMEDIATE",
            (Backend::Sqlite, Access::ReadOnly) => "BEGIN",
            (Backend::Postgres, Access::ReadWrite) => "BEGIN",
            (Backend::Postgres, Access::ReadOnly) => "BEGIN READ ONLY",
        };
        sqlx::AssertSqlSafe(match tenant {
            // Transaction-local (`true`): the setting dies with the transaction, so a pooled
            // connection never carries one tenant's scope into another's request. The id is
            // an OrganizationId (a UUID, nothing else), so it is safe in the statement text.
            Some(tenant) if database.backend() == Backend::Postgres => {
                format!("{begin}; SELECT set_config('app.current_organization_id', '{tenant}', true)")
            }
            _ => begin.to_string(),
        })
    }

    fn on(transaction: Transaction<'static, Any>, database: &Database, module: ModuleName, access: Access) -> Self {
        Self { transaction, database: database.clone(), module, access, emitted_events: false }
    }

    async fn emit(
        &mut self,
        organization: &str,
        payload: Payload,
        context: &RequestContext,
    ) -> Result<Event, ApiError> {
        let now = time::now_micros();
        let event = Event {
            id: EventId::generate().to_string(),
            r#type: payload.event_type().to_string(),
            organization_id: organization.to_string(),
            source: self.module.0.to_string(),
            occur_time: Some(time::to_timestamp(now)),
            actor_user_id: context.actor_user_id.map(|user| user.to_string()).unwrap_or_default(),
            request_id: context.request_id.clone(),
            traceparent: context.traceparent.clone().unwrap_or_default(),
            payload: Some(payload),
        };
        sqlx::query(
            "INSERT INTO ciq_outbox (event_id, event_type, organization_id, payload, created_at, attempts, source) \
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(&event.id)
        .bind(&event.r#type)
        .bind(&event.organization_id)
        .bind(event.encode_to_vec())
        .bind(now)
        .bind(&event.source)
        .execute(&mut *self.transaction)
        .await?;
        self.emitted_events = true;
        Ok(event)
    }

    async fn commit(self) -> Result<(), ApiError> {
        if self.access == Access::ReadOnly && self.database.backend() == Backend::Postgres {
            // PostgreSQL refuses writes in a READ ONLY transaction, so ending it commits
            // nothing. Dropping it queues the ROLLBACK on the connection, and the pool sends
            // it with the check it runs on every returned connection: a read waits for two
            // round trips (BEGIN with the tenant setting, then the query), not three.
            drop(self.transaction);
            return Ok(());
        }
        self.transaction.commit().await?;
        if self.emitted_events {
            self.database.outbox_written().notify_one();
        }
        Ok(())
    }
}

/// A transaction bound to one organization. Store functions take it and filter every
/// query by [`TenantTx::tenant`]; on PostgreSQL row-level security enforces the same
/// scope. Events emitted through it are written to the outbox in the same transaction,
/// so an event exists exactly when the change that caused it was committed.
pub struct TenantTx {
    core: Core,
    organization: OrganizationId,
    tenant: String,
}

impl TenantTx {
    pub(super) async fn begin(
        database: &Database,
        module: ModuleName,
        organization: OrganizationId,
        access: Access,
    ) -> Result<Self, ApiError> {
        let core = Core::begin(database, module, access, Some(organization)).await?;
        Ok(Self { core, organization, tenant: organization.to_string() })
    }

    /// Like [`TenantTx::begin`], but only on a connection the pool has idle now: `None`
    /// instead of waiting when it has none.
    pub(super) async fn try_begin(
        database: &Database,
        module: ModuleName,
        organization: OrganizationId,
        access: Access,
    ) -> Result<Option<Self>, ApiError> {
        let core = Core::try_begin(database, module, access, Some(organization)).await?;
        Ok(core.map(|core| Self { core, organization, tenant: organization.to_string() }))
    }

    /// The organization this transaction is scoped to.
    pub fn organization_id(&self) -> OrganizationId {
        self.organization
    }

    /// The organization id as bound in `WHERE organization_id = $n`.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The connection, for `sqlx::query(..).fetch_*(tx.connection())`.
    pub fn connection(&mut self) -> &mut AnyConnection {
        &mut self.core.transaction
    }

    /// Writes an event of this organization to the outbox, within this transaction.
    pub async fn emit(&mut self, payload: Payload, context: &RequestContext) -> Result<Event, ApiError> {
        let tenant = self.tenant.clone();
        self.core.emit(&tenant, payload, context).await
    }

    /// Commits, then wakes the outbox relay if events were written.
    pub async fn commit(self) -> Result<(), ApiError> {
        self.core.commit().await
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.core.database.backend()
    }

    /// Holds, until this transaction ends, the organization's lock named `name`: writers
    /// that must not interleave (an audit chain, the records of one instance) queue on it.
    /// SQLite's single writer already serializes every write transaction.
    pub async fn serialize_on(&mut self, name: &str) -> Result<(), ApiError> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))")
                .bind(name)
                .bind(self.tenant.clone())
                .execute(self.connection())
                .await?;
        }
        Ok(())
    }
}

/// A transaction over data that belongs to no organization: the auth service's accounts
/// and sessions (a person spans organizations) and directories replicated from them. Only
/// tables without an `organization_id` scope, or reads across organizations that a module
/// owns by design (a person's memberships), go through it.
pub struct GlobalTx {
    core: Core,
}

impl GlobalTx {
    pub(super) async fn begin(database: &Database, module: ModuleName, access: Access) -> Result<Self, ApiError> {
        Ok(Self { core: Core::begin(database, module, access, None).await? })
    }

    /// The connection.
    pub fn connection(&mut self) -> &mut AnyConnection {
        &mut self.core.transaction
    }

    /// Writes an event to the outbox, within this transaction; `organization` when the event
    /// concerns one.
    pub async fn emit(
        &mut self,
        organization: Option<OrganizationId>,
        payload: Payload,
        context: &RequestContext,
    ) -> Result<Event, ApiError> {
        let organization = organization.map(|id| id.to_string()).unwrap_or_default();
        self.core.emit(&organization, payload, context).await
    }

    /// Commits, then wakes the outbox relay if events were written.
    pub async fn commit(self) -> Result<(), ApiError> {
        self.core.commit().await
    }
}
