//! Retention of the trail, per plan (`CIQ_AUDIT_RETENTION_DAYS`): each organization's plan is
//! kept from organization.created and subscription.changed, and a sweep removes the entries
//! from the start of each chain that happened before the plan's retention, behind a signed
//! checkpoint (store::prune), so what remains still verifies. The organization's own data
//! retention setting does not apply here: a tenant admin cannot shorten the evidence of
//! what they did. An organization whose plan was never heard of keeps everything.

use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::crypto::constant_time_eq;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::module::Worker;
use complianceiq_kit::secrets::SecretBox;
use complianceiq_kit::subscription::EventHandler;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::audit::v1::AuditTrailVerification;
use complianceiq_proto::complianceiq::events::v1::Event;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::organization::v1::Plan;
use sqlx::Row;

use crate::store::{self, Checkpoint};

const DAY_MICROS: i64 = 86_400 * 1_000_000;
/// What a checkpoint's signature is keyed for.
const CHECKPOINT_CONTEXT: &str = "audit-checkpoint";

/// Signs and checks retention checkpoints with a key derived from the encryption keys (any
/// configured key verifies, so a rotation keeps old checkpoints valid).
#[derive(Clone)]
pub struct CheckpointKeys(pub Arc<SecretBox>);

impl CheckpointKeys {
    pub fn sign(&self, organization: &str, checkpoint: &Checkpoint) -> String {
        self.0.keyed_hash(checkpoint.message(organization).as_bytes(), CHECKPOINT_CONTEXT)
    }

    /// The organization's whole trail checked, from its latest checkpoint.
    pub async fn verify(
        &self,
        database: &ModuleDatabase,
        organization: OrganizationId,
    ) -> Result<AuditTrailVerification, ApiError> {
        let tenant = organization.to_string();
        let mut tx = database.read(organization).await?;
        let verification = store::verify(&mut tx, |checkpoint| self.valid(&tenant, checkpoint)).await?;
        tx.commit().await?;
        if !verification.intact {
            tracing::error!(
                target: "security",
                organization_id = %organization,
                first_broken_log_id = %verification.first_broken_log_id,
                first_broken_sequence = verification.first_broken_sequence,
                problem = %verification.problem,
                "the audit trail does not verify"
            );
        }
        Ok(verification)
    }

    pub fn valid(&self, organization: &str, checkpoint: &Checkpoint) -> bool {
        self.0
            .keyed_hashes(checkpoint.message(organization).as_bytes(), CHECKPOINT_CONTEXT)
            .iter()
            .any(|expected| constant_time_eq(expected.as_bytes(), checkpoint.signature.as_bytes()))
    }
}

/// Keeps each organization's plan.
pub struct Plans {
    pub database: ModuleDatabase,
}

#[tonic::async_trait]
impl EventHandler for Plans {
    async fn handle(&self, event: &Event) -> Result<(), ApiError> {
        let plan = match &event.payload {
            Some(Payload::OrganizationCreated(created)) => created.organization.as_ref().map(|o| o.plan()),
            Some(Payload::SubscriptionChanged(changed)) => changed.subscription.as_ref().map(|s| s.plan()),
            _ => None,
        };
        let (Some(plan), Ok(organization)) = (plan, OrganizationId::from_stored(&event.organization_id)) else {
            return Ok(());
        };
        if plan == Plan::Unspecified {
            return Ok(());
        }
        let name = plan.as_str_name().trim_start_matches("PLAN_").to_ascii_lowercase();
        let as_of = event.occur_time.as_ref().map(time::from_timestamp).unwrap_or_else(time::now_micros);
        let mut tx = self.database.global_write().await?;
        // An event can arrive again or late: the newest plan wins.
        sqlx::query(
            "INSERT INTO audit_plans (organization_id, plan, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at \
             WHERE audit_plans.updated_at <= excluded.updated_at",
        )
        .bind(organization.to_string())
        .bind(name)
        .bind(as_of)
        .execute(tx.connection())
        .await?;
        tx.commit().await
    }
}

/// The sweep.
pub struct Retention {
    pub database: ModuleDatabase,
    pub keys: CheckpointKeys,
    /// Days per plan name.
    pub by_plan: Vec<(String, i64)>,
    pub every: Duration,
}

impl Retention {
    pub fn worker(self) -> Worker {
        Worker {
            name: "audit-retention",
            run: Box::new(move |stop| {
                Box::pin(async move {
                    loop {
                        if let Err(error) = self.sweep().await {
                            tracing::warn!(%error, "audit retention sweep failed; the next one retries");
                        }
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(self.every) => {}
                        }
                    }
                })
            }),
        }
    }

    /// Prunes every organization whose plan is known.
    pub async fn sweep(&self) -> Result<(), ApiError> {
        let mut tx = self.database.global_read().await?;
        let rows = sqlx::query("SELECT organization_id, plan FROM audit_plans ORDER BY organization_id")
            .fetch_all(tx.connection())
            .await?;
        tx.commit().await?;
        for row in &rows {
            let plan: String = row.try_get(1)?;
            let Some((_, days)) = self.by_plan.iter().find(|(name, _)| *name == plan) else { continue };
            let organization = OrganizationId::from_stored(&row.try_get::<String, _>(0)?)?;
            let cutoff = time::now_micros().saturating_sub(days.saturating_mul(DAY_MICROS));
            let mut tx = self.database.write(organization).await?;
            let tenant = organization.to_string();
            let made = store::prune(&mut tx, cutoff, |checkpoint| self.keys.sign(&tenant, checkpoint)).await?;
            tx.commit().await?;
            if let Some(checkpoint) = made {
                tracing::info!(
                    organization_id = %organization,
                    plan = %plan,
                    retention_days = days,
                    through_sequence = checkpoint.through_sequence,
                    removed = checkpoint.pruned,
                    "audit entries past their retention removed behind a signed checkpoint"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_as_signed_for_its_organization() {
        let secrets = SecretBox::from_config(&format!("k1:{}=", "A".repeat(43))).expect("a key");
        let keys = CheckpointKeys(Arc::new(secrets));
        let mut checkpoint =
            Checkpoint { through_sequence: 7, hash: "ab".into(), pruned: 7, created_at: 1, signature: String::new() };
        checkpoint.signature = keys.sign("org", &checkpoint);
        assert!(keys.valid("org", &checkpoint));
        assert!(!keys.valid("other", &checkpoint));
        for forged in [
            Checkpoint { through_sequence: 8, ..checkpoint.clone() },
            Checkpoint { hash: "cd".into(), ..checkpoint.clone() },
            Checkpoint { signature: "k1:00".into(), ..checkpoint.clone() },
        ] {
            assert!(!keys.valid("org", &forged), "{forged:?}");
        }
    }
}
