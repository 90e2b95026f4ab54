use complianceiq_proto::EventPayloadExt;
use complianceiq_proto::complianceiq::events::v1::{Event, event::Payload};
use prost::Message;
use sqlx::{Any, AnyConnection, Transaction};

use super::{Access, Backend, Database};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::ids::{EventId, ModuleName, OrganizationId};
use crate::time;

/// A transaction bound to one organization. Store functions take it and filter every
/// query by [`TenantTx::tenant`]; on PostgreSQL row-level security enforces the same
/// scope. Events emitted through it are written to the outbox in the same transaction,
/// so an event exists exactly when the change that caused it was committed.
pub struct TenantTx {
    transaction: Transaction<'static, Any>,
    database: Database,
    module: ModuleName,
    organization: OrganizationId,
    tenant: String,
    emitted_events: bool,
}

impl TenantTx {
    pub(super) async fn begin(
        database: &Database,
        module: ModuleName,
        organization: OrganizationId,
        access: Access,
    ) -> Result<Self, ApiError> {
        let begin = match (database.backend(), access) {
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads
            // and then writes can fail with SQLITE_BUSY instead of waiting.
            (Backend::Sqlite, Access::ReadWrite) => "BEGIN IMMEDIATE",
            (Backend::Sqlite, Access::ReadOnly) => "BEGIN",
            (Backend::Postgres, Access::ReadWrite) => "BEGIN",
            (Backend::Postgres, Access::ReadOnly) => "BEGIN READ ONLY",
        };
        let mut transaction = database.pool().begin_with(begin).await?;
        let tenant = organization.to_string();
        if database.backend() == Backend::Postgres {
            // Transaction-local (`true`): the setting dies with the transaction, so a pooled
            // connection never carries one tenant's scope into another's request.
            sqlx::query("SELECT set_config('app.current_organization_id', $1, true)")
                .bind(&tenant)
                .execute(&mut *transaction)
                .await?;
        }
        Ok(Self {
            transaction,
            database: database.clone(),
            module,
            organization,
            tenant,
            emitted_events: false,
        })
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
        &mut self.transaction
    }

    /// Writes an event of this organization to the outbox, within this transaction.
    pub async fn emit(
        &mut self,
        payload: Payload,
        context: &RequestContext,
    ) -> Result<Event, ApiError> {
        let now = time::now_micros();
        let event = Event {
            id: EventId::generate().to_string(),
            r#type: payload.event_type().to_string(),
            organization_id: self.tenant.clone(),
            source: self.module.0.to_string(),
            occur_time: Some(time::to_timestamp(now)),
            actor_user_id: context
                .actor_user_id
                .map(|user| user.to_string())
                .unwrap_or_default(),
            request_id: context.request_id.clone(),
            traceparent: context.traceparent.clone().unwrap_or_default(),
            payload: Some(payload),
        };
        sqlx::query(
            "INSERT INTO ciq_outbox (event_id, event_type, organization_id, payload, created_at, attempts) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(&event.id)
        .bind(&event.r#type)
        .bind(&event.organization_id)
        .bind(event.encode_to_vec())
        .bind(now)
        .execute(&mut *self.transaction)
        .await?;
        self.emitted_events = true;
        Ok(event)
    }

    /// Commits, then wakes the outbox relay if events were written.
    pub async fn commit(self) -> Result<(), ApiError> {
        self.transaction.commit().await?;
        if self.emitted_events {
            self.database.outbox_written().notify_one();
        }
        Ok(())
    }
}
