//! The widget service (port 8007, core_db): widgets made from templates (`templates.rs`),
//! versioned on every change, and deployed into ServiceNow as Service Portal widget records.
//!
//! A deployment renders a version into the record's columns and asks the instance service
//! (internal `WriteWidgetRecord`; the mesh admits the widget module alone) to write it with the
//! instance's stored credentials, which never leave that service. The record's `id` is stable
//! per widget, so a new version or a rollback (deploying an earlier version) updates it in
//! place, and a version already there is not written again. Deleting a widget removes its
//! record from every instance where it stands, then the widget, its versions and history.

mod store;
mod templates;

use complianceiq_kit::auth::{Identity, caller};
use complianceiq_kit::config::DatabaseGroup;
use complianceiq_kit::context::RequestContext;
use complianceiq_kit::db::ModuleDatabase;
use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::ids::OrganizationId;
use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::paging::PageRequest;
use complianceiq_kit::{Module, ModuleName, ModuleParts, migration, time};
use complianceiq_proto::complianceiq::events::v1::WidgetDeployed;
use complianceiq_proto::complianceiq::events::v1::event::Payload;
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{WidgetRecordWrite, WriteWidgetRecordRequest};
use complianceiq_proto::complianceiq::widget::v1::widget_service_server::{WidgetService, WidgetServiceServer};
use complianceiq_proto::complianceiq::widget::v1::*;
use tonic::{Request, Response, Status};

use crate::store::{DeploymentRow, VersionRow, WidgetRow};

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 1000;
const MAX_OPTIONS: usize = 20;
const MAX_TEMPLATES: usize = 100;
const MAX_REFRESH_SECONDS: i32 = 86_400;
const UPDATABLE: [&str; 3] = ["name", "description", "config"];

struct WidgetApi {
    database: ModuleDatabase,
    instances: InstanceServiceClient<MeshChannel>,
    public_url: String,
}

fn widget_id(violations: &mut FieldViolations, id: &str) -> String {
    violations.uuid("widget_id", id)
}

/// Checks a configuration against the template that renders it.
fn check_config(field: &str, config: &mut WidgetConfig, per_instance: bool, violations: &mut FieldViolations) {
    match config.refresh_interval_seconds {
        0 => {}
        seconds if (templates::MIN_REFRESH_SECONDS..=MAX_REFRESH_SECONDS).contains(&seconds) => {}
        seconds => violations.add(
            &format!("{field}.refresh_interval_seconds"),
            "OUT_OF_RANGE",
            format!("{seconds} is not within {} to {MAX_REFRESH_SECONDS}", templates::MIN_REFRESH_SECONDS),
        ),
    }
    for (name, value) in &config.filters {
        match name.as_str() {
            "instance_id" => {
                violations.uuid(&format!("{field}.filters.instance_id"), value);
            }
            other => violations.add(
                &format!("{field}.filters"),
                "UNKNOWN_FILTER",
                format!("{other:?} is not a filter; widgets take instance_id"),
            ),
        }
    }
    if per_instance && !config.filters.contains_key("instance_id") {
        violations.add(
            &format!("{field}.filters.instance_id"),
            "REQUIRED",
            "this template shows one instance: set filters.instance_id",
        );
    }
    if config.options.len() > MAX_OPTIONS
        || config.options.iter().any(|(name, value)| name.len() > 100 || value.len() > 1000)
    {
        violations.add(
            &format!("{field}.options"),
            "TOO_LARGE",
            format!("at most {MAX_OPTIONS} options of 1000 characters"),
        );
    }
    // The data source follows from the template; a caller cannot point a widget elsewhere.
    config.data_source.clear();
}

fn check_text(violations: &mut FieldViolations, field: &str, value: &str, required: bool, max: usize) {
    if required && value.trim().is_empty() {
        violations.required(field);
    } else if value.chars().count() > max {
        violations.add(field, "TOO_LONG", format!("at most {max} characters"));
    }
}

fn widget_state(state: &str) -> WidgetState {
    match state {
        "deployed" => WidgetState::Deployed,
        "deploy_failed" => WidgetState::DeployFailed,
        _ => WidgetState::Draft,
    }
}

fn deployment_proto(organization: &str, row: &DeploymentRow) -> WidgetDeployment {
    let action = match row.action.as_str() {
        "created" => DeploymentAction::Created,
        "updated" => DeploymentAction::Updated,
        "unchanged" => DeploymentAction::Unchanged,
        "removed" => DeploymentAction::Removed,
        _ => DeploymentAction::Unspecified,
    };
    let state = if row.state == "succeeded" { DeploymentState::Succeeded } else { DeploymentState::Failed };
    WidgetDeployment {
        id: row.id.clone(),
        organization_id: organization.to_string(),
        widget_id: row.widget_id.clone(),
        widget_version: row.widget_version as i32,
        instance_id: row.instance_id.clone(),
        state: state as i32,
        servicenow_sys_id: row.sys_id.clone(),
        error: row.error.clone(),
        deployed_by: row.deployed_by.clone(),
        create_time: Some(time::to_timestamp(row.created_at)),
        action: action as i32,
    }
}

impl WidgetApi {
    /// The widget as the API shows it: its current version's definition and its row.
    fn to_proto(organization: &str, row: &WidgetRow, definition: &Widget) -> Widget {
        Widget {
            id: row.id.clone(),
            organization_id: organization.to_string(),
            version: row.version as i32,
            state: widget_state(&row.state) as i32,
            create_time: Some(time::to_timestamp(row.created_at)),
            update_time: Some(time::to_timestamp(row.updated_at)),
            etag: row.version.to_string(),
            ..definition.clone()
        }
    }

    async fn current(&self, organization: OrganizationId, id: &str) -> Result<(WidgetRow, VersionRow), ApiError> {
        let mut tx = self.database.read(organization).await?;
        let row = store::widget(&mut tx, id).await?.ok_or_else(|| ApiError::not_found("Widget", id))?;
        let version = store::version(&mut tx, id, row.version)
            .await?
            .ok_or_else(|| ApiError::internal("a widget without its version"))?;
        tx.commit().await?;
        Ok((row, version))
    }

    /// The definition's template: a built-in, or one of the organization's (rendered by the
    /// built-in of its type); whether it shows one instance.
    async fn check_definition(
        &self,
        organization: OrganizationId,
        definition: &mut Widget,
        violations: &mut FieldViolations,
    ) -> Result<(), ApiError> {
        check_text(violations, "widget.name", &definition.name, true, MAX_NAME);
        check_text(violations, "widget.description", &definition.description, false, MAX_DESCRIPTION);
        let widget_type = match WidgetType::try_from(definition.r#type) {
            Ok(WidgetType::Unspecified) | Err(_) => {
                violations.add(
                    "widget.type",
                    "INVALID",
                    "type must be SCORECARD, CHART, TABLE, HEATMAP or INSIGHT_LIST",
                );
                return Ok(());
            }
            Ok(widget_type) => widget_type,
        };
        let renderer = if definition.template_id.is_empty() {
            templates::for_type(widget_type)
        } else if let Some(built_in) = templates::built_in(&definition.template_id) {
            Some(built_in)
        } else {
            let mut tx = self.database.read(organization).await?;
            let custom = store::templates(&mut tx).await?.into_iter().find(|t| t.id == definition.template_id);
            tx.commit().await?;
            match custom {
                Some(custom) => {
                    if definition.config.is_none() {
                        definition.config = custom.default_config.clone();
                    }
                    templates::for_type(custom.r#type())
                }
                None => {
                    violations.add(
                        "widget.template_id",
                        "UNKNOWN_TEMPLATE",
                        format!("no template {:?}", definition.template_id),
                    );
                    return Ok(());
                }
            }
        };
        let Some(renderer) = renderer else { return Ok(()) };
        if renderer.widget_type != widget_type && !(widget_type == WidgetType::InsightList && renderer.id == "gap-list")
        {
            violations.add(
                "widget.type",
                "TEMPLATE_TYPE",
                format!("template {} makes {} widgets", renderer.id, renderer.widget_type.as_str_name()),
            );
        }
        let config = definition.config.get_or_insert_with(Default::default);
        check_config("widget.config", config, renderer.per_instance, violations);
        Ok(())
    }

    async fn create(&self, identity: &Identity, request: CreateWidgetRequest) -> Result<Widget, ApiError> {
        let organization = identity.tenant()?;
        let input =
            request.widget.ok_or_else(|| ApiError::invalid_field("widget", "REQUIRED", "widget is required"))?;
        let mut definition = Widget {
            name: input.name.trim().to_string(),
            description: input.description.trim().to_string(),
            r#type: input.r#type,
            template_id: input.template_id.trim().to_string(),
            config: input.config,
            ..Default::default()
        };
        let mut violations = FieldViolations::default();
        self.check_definition(organization, &mut definition, &mut violations).await?;
        violations.check()?;
        let now = time::now_micros();
        let row = WidgetRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: definition.name.clone(),
            version: 1,
            state: "draft".into(),
            created_at: now,
            updated_at: now,
        };
        definition.id = row.id.clone();
        definition.version = 1;
        let mut tx = self.database.write(organization).await?;
        if store::name_taken(&mut tx, &row.name, "").await? {
            return Err(name_taken(&row.name));
        }
        store::insert_widget(&mut tx, &row).await?;
        let version = VersionRow {
            version: 1,
            definition: definition.clone(),
            created_by: identity.user_id.to_string(),
            created_at: now,
        };
        store::insert_version(&mut tx, &row.id, &version).await?;
        tx.commit().await?;
        Ok(Self::to_proto(&organization.to_string(), &row, &definition))
    }

    async fn update(&self, identity: &Identity, request: UpdateWidgetRequest) -> Result<Widget, ApiError> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.widget_id);
        let changes =
            request.widget.ok_or_else(|| ApiError::invalid_field("widget", "REQUIRED", "widget is required"))?;
        let paths: Vec<String> = match request.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            _ => UPDATABLE
                .iter()
                .filter(|path| match **path {
                    "name" => !changes.name.is_empty(),
                    "description" => !changes.description.is_empty(),
                    _ => changes.config.is_some(),
                })
                .map(|path| path.to_string())
                .collect(),
        };
        for path in &paths {
            if !UPDATABLE.contains(&path.as_str()) {
                violations.add(
                    "update_mask",
                    "NOT_UPDATABLE",
                    format!(
                        "{path:?} cannot change; a widget's type and template are fixed. Update {}",
                        UPDATABLE.join(", ")
                    ),
                );
            }
        }
        violations.check()?;
        let (mut row, current) = self.current(organization, &id).await?;
        if !changes.etag.is_empty() && changes.etag != row.version.to_string() {
            return Err(ApiError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!("the widget is at version {}, not {}: read it again", row.version, changes.etag),
            });
        }
        let mut definition = current.definition.clone();
        for path in &paths {
            match path.as_str() {
                "name" => definition.name = changes.name.trim().to_string(),
                "description" => definition.description = changes.description.trim().to_string(),
                _ => definition.config = changes.config.clone(),
            }
        }
        let mut violations = FieldViolations::default();
        self.check_definition(organization, &mut definition, &mut violations).await?;
        violations.check()?;
        if definition == current.definition {
            return Ok(Self::to_proto(&organization.to_string(), &row, &definition));
        }
        let now = time::now_micros();
        row.version += 1;
        row.name = definition.name.clone();
        row.updated_at = now;
        definition.version = row.version as i32;
        let mut tx = self.database.write(organization).await?;
        if store::name_taken(&mut tx, &row.name, &id).await? {
            return Err(name_taken(&row.name));
        }
        store::save_widget(&mut tx, &row).await?;
        let version = VersionRow {
            version: row.version,
            definition: definition.clone(),
            created_by: identity.user_id.to_string(),
            created_at: now,
        };
        store::insert_version(&mut tx, &id, &version).await?;
        tx.commit().await?;
        Ok(Self::to_proto(&organization.to_string(), &row, &definition))
    }

    /// Writes (or removes) the widget's record in one instance and records the deployment.
    async fn push(
        &self,
        identity: &Identity,
        context: &RequestContext,
        row: &WidgetRow,
        version: &VersionRow,
        instance: &str,
        remove: bool,
    ) -> Result<WidgetDeployment, Status> {
        let organization = identity.tenant()?;
        let fields = if remove {
            Default::default()
        } else {
            let mut at_version = version.definition.clone();
            at_version.id = row.id.clone();
            at_version.version = version.version as i32;
            templates::record(&at_version, &self.public_url).map_err(ApiError::internal)?.into_iter().collect()
        };
        let request = WriteWidgetRecordRequest {
            organization_id: organization.to_string(),
            instance_id: instance.to_string(),
            widget_key: templates::record_key(&row.id),
            fields,
            delete: remove,
        };
        let outcome = self.instances.clone().write_widget_record(request).await;
        let mut deployment = DeploymentRow {
            id: uuid::Uuid::now_v7().to_string(),
            widget_id: row.id.clone(),
            widget_version: version.version,
            instance_id: instance.to_string(),
            deployed_by: identity.user_id.to_string(),
            created_at: time::now_micros(),
            ..Default::default()
        };
        match &outcome {
            Ok(written) => {
                let written = written.get_ref();
                deployment.state = "succeeded".into();
                deployment.sys_id = written.sys_id.clone();
                deployment.action = match written.write() {
                    WidgetRecordWrite::Created => "created",
                    WidgetRecordWrite::Updated => "updated",
                    WidgetRecordWrite::Unchanged => "unchanged",
                    _ => "removed",
                }
                .into();
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(ApiError::not_found("Instance", instance).into());
            }
            Err(status) => {
                deployment.state = "failed".into();
                deployment.action = if remove { "removed" } else { "" }.into();
                deployment.error = status.message().to_string();
            }
        }
        let mut tx = self.database.write(organization).await?;
        store::insert_deployment(&mut tx, &deployment).await?;
        if !remove && let Some(mut current) = store::widget(&mut tx, &row.id).await? {
            current.state = if deployment.state == "succeeded" { "deployed" } else { "deploy_failed" }.into();
            store::save_widget(&mut tx, &current).await?;
        }
        if deployment.state == "succeeded" && ["created", "updated"].contains(&deployment.action.as_str()) {
            let deployed = WidgetDeployed {
                widget_id: row.id.clone(),
                widget_version: version.version as i32,
                instance_id: instance.to_string(),
                servicenow_sys_id: deployment.sys_id.clone(),
            };
            tx.emit(Payload::WidgetDeployed(deployed), context).await?;
        }
        tx.commit().await?;
        tracing::info!(widget_id = %row.id, version = version.version, instance, action = %deployment.action, state = %deployment.state, "widget deployment");
        outcome?;
        Ok(deployment_proto(&organization.to_string(), &deployment))
    }

    async fn deploy(
        &self,
        identity: &Identity,
        context: &RequestContext,
        request: DeployWidgetRequest,
    ) -> Result<WidgetDeployment, Status> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.widget_id);
        let instance = violations.uuid("instance_id", &request.instance_id);
        if request.version < 0 {
            violations.add("version", "OUT_OF_RANGE", "version must be positive (0: the current one)");
        }
        violations.check()?;
        let (row, current) = self.current(organization, &id).await?;
        let version = if request.version == 0 || i64::from(request.version) == row.version {
            current
        } else {
            let mut tx = self.database.read(organization).await?;
            let found = store::version(&mut tx, &id, i64::from(request.version)).await?;
            tx.commit().await?;
            found.ok_or_else(|| {
                ApiError::invalid_field(
                    "version",
                    "UNKNOWN_VERSION",
                    format!("widget {id} has versions 1 to {}", row.version),
                )
            })?
        };
        self.push(identity, context, &row, &version, &instance, false).await
    }

    async fn delete(
        &self,
        identity: &Identity,
        context: &RequestContext,
        request: DeleteWidgetRequest,
    ) -> Result<(), Status> {
        let organization = identity.tenant()?;
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.widget_id);
        violations.check()?;
        let (row, current) = self.current(organization, &id).await?;
        if !request.etag.is_empty() && request.etag != row.version.to_string() {
            return Err(ApiError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!("the widget is at version {}, not {}", row.version, request.etag),
            }
            .into());
        }
        let mut tx = self.database.read(organization).await?;
        let live = store::live_instances(&mut tx, &id).await?;
        tx.commit().await?;
        // Undeployed first: a widget whose record cannot be removed stays, to be deleted again.
        for instance in live {
            match self.push(identity, context, &row, &current, &instance, true).await {
                Ok(_) => {}
                // A disconnected instance took its records' reach with it.
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => return Err(status),
            }
        }
        let mut tx = self.database.write(organization).await?;
        store::delete_widget(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::AlreadyExists {
        resource_type: "Widget",
        name: name.to_string(),
        message: format!("the organization already has a widget named {name:?}"),
    }
}

#[tonic::async_trait]
impl WidgetService for WidgetApi {
    async fn create_widget(&self, request: Request<CreateWidgetRequest>) -> Result<Response<Widget>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.create(&identity, request.into_inner()).await?))
    }

    async fn list_widgets(
        &self,
        request: Request<ListWidgetsRequest>,
    ) -> Result<Response<ListWidgetsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let only = match WidgetType::try_from(request.r#type) {
            Ok(widget_type) => widget_type,
            Err(_) => return Err(ApiError::invalid_field("type", "INVALID", "type is not a widget type").into()),
        };
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("type={}", request.r#type))?;
        let mut after = page.after.as_ref().and_then(|key| key.first().cloned()).unwrap_or_default();
        let mut tx = self.database.read(organization).await?;
        let mut found = Vec::new();
        // Filtered by type after reading: read on until the page is full or the table ends.
        loop {
            let rows = store::widgets_page(&mut tx, &after, page.fetch_limit()).await?;
            let exhausted = (rows.len() as i64) < page.fetch_limit();
            for (row, definition) in rows {
                after = row.id.clone();
                if only == WidgetType::Unspecified || definition.r#type == only as i32 {
                    found.push(Self::to_proto(&organization.to_string(), &row, &definition));
                }
            }
            if exhausted || found.len() as i64 >= page.fetch_limit() {
                break;
            }
        }
        tx.commit().await?;
        let next_page_token = page.finish(&mut found, |widget| vec![widget.id.clone()]);
        Ok(Response::new(ListWidgetsResponse { widgets: found, next_page_token }))
    }

    async fn get_widget(&self, request: Request<GetWidgetRequest>) -> Result<Response<Widget>, Status> {
        let organization = caller(&request)?.tenant()?;
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.get_ref().widget_id);
        violations.check()?;
        let (row, version) = self.current(organization, &id).await?;
        Ok(Response::new(Self::to_proto(&organization.to_string(), &row, &version.definition)))
    }

    async fn update_widget(&self, request: Request<UpdateWidgetRequest>) -> Result<Response<Widget>, Status> {
        let identity = caller(&request)?;
        Ok(Response::new(self.update(&identity, request.into_inner()).await?))
    }

    async fn delete_widget(&self, request: Request<DeleteWidgetRequest>) -> Result<Response<()>, Status> {
        let identity = caller(&request)?;
        let context = RequestContext::of(&request);
        self.delete(&identity, &context, request.into_inner()).await?;
        Ok(Response::new(()))
    }

    async fn deploy_widget(&self, request: Request<DeployWidgetRequest>) -> Result<Response<WidgetDeployment>, Status> {
        let identity = caller(&request)?;
        let context = RequestContext::of(&request);
        Ok(Response::new(self.deploy(&identity, &context, request.into_inner()).await?))
    }

    async fn list_widget_versions(
        &self,
        request: Request<ListWidgetVersionsRequest>,
    ) -> Result<Response<ListWidgetVersionsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.widget_id);
        violations.check()?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &id)?;
        let before = page.after_number()?.unwrap_or(0);
        let (row, _) = self.current(organization, &id).await?;
        let mut tx = self.database.read(organization).await?;
        let mut found = store::versions(&mut tx, &id, before, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut found, |version| vec![version.version.to_string()]);
        let organization = organization.to_string();
        let versions = found
            .into_iter()
            .map(|version| WidgetVersion {
                version: version.version as i32,
                widget: Some(Widget {
                    version: version.version as i32,
                    ..Self::to_proto(&organization, &row, &version.definition)
                }),
                created_by: version.created_by,
                create_time: Some(time::to_timestamp(version.created_at)),
            })
            .collect();
        Ok(Response::new(ListWidgetVersionsResponse { versions, next_page_token }))
    }

    async fn list_widget_deployments(
        &self,
        request: Request<ListWidgetDeploymentsRequest>,
    ) -> Result<Response<ListWidgetDeploymentsResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = widget_id(&mut violations, &request.widget_id);
        violations.check()?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &id)?;
        let after = page.after.as_ref().and_then(|key| key.first().cloned()).unwrap_or_default();
        self.current(organization, &id).await?;
        let mut tx = self.database.read(organization).await?;
        let mut found = store::deployments(&mut tx, &id, &after, page.fetch_limit()).await?;
        tx.commit().await?;
        let next_page_token = page.finish(&mut found, |deployment| vec![deployment.id.clone()]);
        let deployments = found.iter().map(|row| deployment_proto(&organization.to_string(), row)).collect();
        Ok(Response::new(ListWidgetDeploymentsResponse { deployments, next_page_token }))
    }

    async fn list_widget_templates(
        &self,
        request: Request<ListWidgetTemplatesRequest>,
    ) -> Result<Response<ListWidgetTemplatesResponse>, Status> {
        let organization = caller(&request)?.tenant()?;
        let request = request.into_inner();
        let only = WidgetType::try_from(request.r#type)
            .map_err(|_| ApiError::invalid_field("type", "INVALID", "type is not a widget type"))?;
        let page = PageRequest::parse(request.page_size, &request.page_token, &format!("type={}", request.r#type))?;
        let skip = page.after_number()?.unwrap_or(0).max(0) as usize;
        let mut tx = self.database.read(organization).await?;
        let custom = store::templates(&mut tx).await?;
        tx.commit().await?;
        let all: Vec<WidgetTemplate> = templates::BUILT_IN
            .iter()
            .map(templates::proto)
            .chain(custom)
            .filter(|template| only == WidgetType::Unspecified || template.r#type == only as i32)
            .collect();
        let mut numbered: Vec<(usize, WidgetTemplate)> = all.into_iter().enumerate().skip(skip).collect();
        numbered.truncate(page.fetch_limit() as usize);
        let next_page_token = page.finish(&mut numbered, |(index, _)| vec![(index + 1).to_string()]);
        Ok(Response::new(ListWidgetTemplatesResponse {
            templates: numbered.into_iter().map(|(_, template)| template).collect(),
            next_page_token,
        }))
    }

    async fn create_widget_template(
        &self,
        request: Request<CreateWidgetTemplateRequest>,
    ) -> Result<Response<WidgetTemplate>, Status> {
        let organization = caller(&request)?.tenant()?;
        let input = request
            .into_inner()
            .template
            .ok_or_else(|| ApiError::invalid_field("template", "REQUIRED", "template is required"))?;
        let mut violations = FieldViolations::default();
        check_text(&mut violations, "template.name", &input.name, true, MAX_NAME);
        check_text(&mut violations, "template.description", &input.description, false, MAX_DESCRIPTION);
        let renderer = WidgetType::try_from(input.r#type).ok().and_then(templates::for_type);
        if renderer.is_none() {
            violations.add("template.type", "INVALID", "type must be SCORECARD, CHART, TABLE, HEATMAP or INSIGHT_LIST");
        }
        let mut config = input.default_config.unwrap_or_default();
        // A widget made from the template sets its own instance; the default need not.
        check_config("template.default_config", &mut config, false, &mut violations);
        violations.check()?;
        let now = time::now_micros();
        let template = WidgetTemplate {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: organization.to_string(),
            name: input.name.trim().to_string(),
            description: input.description.trim().to_string(),
            r#type: input.r#type,
            default_config: Some(config),
            built_in: false,
            create_time: Some(time::to_timestamp(now)),
        };
        let mut tx = self.database.write(organization).await?;
        let existing = store::templates(&mut tx).await?;
        if existing.len() >= MAX_TEMPLATES {
            return Err(ApiError::ResourceExhausted {
                reason: "TEMPLATE_LIMIT",
                message: format!("an organization keeps at most {MAX_TEMPLATES} templates"),
                retry_after: None,
            }
            .into());
        }
        if existing.iter().any(|t| t.name == template.name)
            || templates::BUILT_IN.iter().any(|t| t.name == template.name)
        {
            return Err(ApiError::AlreadyExists {
                resource_type: "WidgetTemplate",
                name: template.name.clone(),
                message: format!("a template named {:?} exists", template.name),
            }
            .into());
        }
        store::insert_template(&mut tx, &template, now).await?;
        tx.commit().await?;
        Ok(Response::new(template))
    }
}

/// The module declaration.
pub fn module() -> Module {
    Module {
        name: ModuleName("widget"),
        port: 8007,
        database: Some(DatabaseGroup::Core),
        // Deployments write through the instance service, which keeps the credentials.
        calls: &["instance"],
        migrations: &[migration!(1, "0001_widgets")],
        reseal: None,
        build: |context| {
            Box::pin(async move {
                let api = WidgetApi {
                    database: context.database()?,
                    instances: InstanceServiceClient::new(context.channel("instance")?),
                    public_url: context.config.mail.public_url.clone(),
                };
                Ok(ModuleParts::new().service(WidgetServiceServer::new(api)))
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_configuration_is_checked_against_its_template() {
        let mut violations = FieldViolations::default();
        let mut config = WidgetConfig {
            refresh_interval_seconds: 5,
            filters: BTreeMap::from([("owner".to_string(), "x".to_string())]).into_iter().collect(),
            data_source: "https://elsewhere.example.com".into(),
            ..Default::default()
        };
        check_config("widget.config", &mut config, true, &mut violations);
        let fields: Vec<String> =
            violations.check().unwrap_err().field_violations().iter().map(|v| v.field.clone()).collect();
        assert_eq!(
            fields,
            ["widget.config.refresh_interval_seconds", "widget.config.filters", "widget.config.filters.instance_id"]
        );
        assert!(config.data_source.is_empty(), "the template decides where data comes from");
    }
}
