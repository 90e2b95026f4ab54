//! The gRPC surface: parse and check the request, call the domain and the store, emit the
//! event in the same transaction, map errors. RPCs not listed here answer UNIMPLEMENTED
//! with their name (generated default).

use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::ApiError;
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::events::v1::{
    OrganizationCreated, OrganizationDeleted, OrganizationUpdated,
};
use complianceiq_proto::complianceiq::organization::v1::organization_service_server::OrganizationService;
use complianceiq_proto::complianceiq::organization::v1::{
    CreateOrganizationRequest, DeleteOrganizationRequest, GetOrganizationRequest, Organization,
    UpdateOrganizationRequest,
};
use tonic::{Request, Response, Status};

use crate::{domain, store};

/// Attempts at a derived slug before giving up (each retry adds a random suffix).
const SLUG_ATTEMPTS: usize = 5;

/// The organization service.
pub struct OrganizationApi {
    database: ModuleDatabase,
}

impl OrganizationApi {
    pub fn new(database: ModuleDatabase) -> Self {
        Self { database }
    }

    async fn create(
        &self,
        request: CreateOrganizationRequest,
        context: &RequestContext,
    ) -> Result<Organization, ApiError> {
        let input = request.organization.ok_or_else(|| {
            ApiError::invalid_field("organization", "REQUIRED", "organization is required")
        })?;
        let mut record = domain::new_organization(&input, time::now_micros())?;
        let slug_was_given = !input.slug.is_empty();
        let base_slug = record.slug.clone();

        let mut tx = self.database.write(record.id).await?;
        let mut attempts = 0;
        while !store::insert(&mut tx, &record).await? {
            attempts += 1;
            if slug_was_given || attempts == SLUG_ATTEMPTS {
                return Err(ApiError::AlreadyExists {
                    resource_type: "Organization",
                    name: record.slug.clone(),
                    message: format!("the slug {:?} is taken; choose another", record.slug),
                });
            }
            record.slug = domain::slug_with_suffix(&base_slug);
        }
        let organization = record.to_proto();
        let created = OrganizationCreated {
            organization: Some(organization.clone()),
        };
        tx.emit(Payload::OrganizationCreated(created), context)
            .await?;
        tx.commit().await?;
        tracing::info!(organization_id = %record.id, slug = %record.slug, "organization created");
        Ok(organization)
    }

    async fn get(&self, request: GetOrganizationRequest) -> Result<Organization, ApiError> {
        let id = OrganizationId::parse_field("org_id", &request.org_id)?;
        let mut tx = self.database.read(id).await?;
        let record = store::find_live(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found("Organization", id.to_string()))?;
        tx.commit().await?;
        Ok(record.to_proto())
    }

    async fn update(
        &self,
        request: UpdateOrganizationRequest,
        context: &RequestContext,
    ) -> Result<Organization, ApiError> {
        let id = OrganizationId::parse_field("org_id", &request.org_id)?;
        let input = request.organization.ok_or_else(|| {
            ApiError::invalid_field("organization", "REQUIRED", "organization is required")
        })?;
        let mut tx = self.database.write(id).await?;
        let current = store::find_live(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found("Organization", id.to_string()))?;
        check_etag(&input.etag, &current)?;
        let fields = domain::fields_to_update(request.update_mask.as_ref(), &input, &current)?;
        let (next, changed) = domain::apply_update(&current, &input, &fields, time::now_micros())?;
        if changed.is_empty() {
            tx.commit().await?;
            return Ok(current.to_proto());
        }
        if !store::update(&mut tx, &next, current.revision).await? {
            return Err(concurrent_change());
        }
        let organization = next.to_proto();
        let updated = OrganizationUpdated {
            organization: Some(organization.clone()),
            changed_fields: changed.iter().map(|path| path.to_string()).collect(),
        };
        tx.emit(Payload::OrganizationUpdated(updated), context)
            .await?;
        tx.commit().await?;
        tracing::info!(organization_id = %id, changed = ?changed, "organization updated");
        Ok(organization)
    }

    async fn delete(
        &self,
        request: DeleteOrganizationRequest,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let id = OrganizationId::parse_field("org_id", &request.org_id)?;
        let mut tx = self.database.write(id).await?;
        let current = store::find_live(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found("Organization", id.to_string()))?;
        check_etag(&request.etag, &current)?;
        let deleted = domain::delete(&current, time::now_micros());
        if !store::update(&mut tx, &deleted, current.revision).await? {
            return Err(concurrent_change());
        }
        let event = OrganizationDeleted {
            organization_id: id.to_string(),
            purge_time: time::to_optional_timestamp(deleted.purge_at),
        };
        tx.emit(Payload::OrganizationDeleted(event), context)
            .await?;
        tx.commit().await?;
        tracing::info!(organization_id = %id, "organization deleted");
        Ok(())
    }
}

fn check_etag(given: &str, current: &domain::OrganizationRecord) -> Result<(), ApiError> {
    if !given.is_empty() && given != current.etag() {
        return Err(ApiError::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the organization changed since it was read (etag {given:?}, now {:?}); read it again and retry",
                current.etag()
            ),
        });
    }
    Ok(())
}

fn concurrent_change() -> ApiError {
    ApiError::Aborted {
        reason: "CONCURRENT_MODIFICATION",
        message: "the organization was changed by another request at the same time; retry".into(),
    }
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        request: Request<CreateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = RequestContext::of(&request);
        Ok(Response::new(
            self.create(request.into_inner(), &context).await?,
        ))
    }

    async fn get_organization(
        &self,
        request: Request<GetOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn update_organization(
        &self,
        request: Request<UpdateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = RequestContext::of(&request);
        Ok(Response::new(
            self.update(request.into_inner(), &context).await?,
        ))
    }

    async fn delete_organization(
        &self,
        request: Request<DeleteOrganizationRequest>,
    ) -> Result<Response<()>, Status> {
        let context = RequestContext::of(&request);
        self.delete(request.into_inner(), &context).await?;
        Ok(Response::new(()))
    }
}
