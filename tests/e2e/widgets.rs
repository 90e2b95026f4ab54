//! Widgets in ServiceNow: the instance service writes a widget's sp_widget record with the
//! instance's stored credentials for the widget service alone; an unchanged record is not
//! written again, a changed one is updated in place, a deleted one is gone; a denied ACL and
//! a changed password are errors that say what to do; no other module, and no other
//! organization, can write through it.

use std::collections::HashMap;

use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{WidgetRecordWrite, WriteWidgetRecordRequest};
use complianceiq_proto::complianceiq::widget::v1::widget_service_client::WidgetServiceClient;
use complianceiq_proto::complianceiq::widget::v1::*;
use complianceiq_servicenow::sim::SimConfig;
use tonic::Code;

use crate::harness::{TestPlatform, reason};
use crate::instances::{RunningSimulator, simulator};
use crate::people::authorized;
use crate::platform_tests;
use crate::sync::connected;

platform_tests!(the_instance_service_writes_widget_records_for_the_widget_service_alone);

fn record(organization: &str, instance: &str, template: &str) -> WriteWidgetRecordRequest {
    let fields: HashMap<String, String> = [("name", "Posture"), ("template", template), ("css", ".ciq {}")]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    WriteWidgetRecordRequest {
        organization_id: organization.into(),
        instance_id: instance.into(),
        widget_key: "ciq-posture".into(),
        fields,
        delete: false,
    }
}

async fn the_instance_service_writes_widget_records_for_the_widget_service_alone(platform: &TestPlatform) {
    let running = simulator(SimConfig { controls: 5, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Widgets").await;
    let other = platform.tenant("Onlooker").await;
    let instance = connected(platform, &tenant, &running).await;
    let mut instances = InstanceServiceClient::new(platform.channel_as("widget", "instance"));

    let written = instances.write_widget_record(record(tenant.id(), &instance.id, "<div>1</div>")).await.unwrap();
    let created = written.into_inner();
    assert_eq!(created.write(), WidgetRecordWrite::Created);
    let records = running.simulator.written("sp_widget");
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0]["id"].as_str(), records[0]["template"].as_str(), records[0]["sys_id"].as_str()),
        (Some("ciq-posture"), Some("<div>1</div>"), Some(created.sys_id.as_str()))
    );
    let writes = running.simulator.writes();
    let again = instances.write_widget_record(record(tenant.id(), &instance.id, "<div>1</div>")).await.unwrap();
    assert_eq!((again.get_ref().write(), running.simulator.writes()), (WidgetRecordWrite::Unchanged, writes));
    let changed = instances.write_widget_record(record(tenant.id(), &instance.id, "<div>2</div>")).await.unwrap();
    assert_eq!(
        (changed.get_ref().write(), changed.get_ref().sys_id.as_str()),
        (WidgetRecordWrite::Updated, created.sys_id.as_str())
    );
    assert_eq!(running.simulator.written("sp_widget").len(), 1, "updated in place");

    // Nobody else: not another module, not another organization's id.
    let refused = InstanceServiceClient::new(platform.channel_as("webhook", "instance"))
        .write_widget_record(record(tenant.id(), &instance.id, "<b>x</b>"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let elsewhere = instances.write_widget_record(record(other.id(), &instance.id, "<b>x</b>")).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    let bad = WriteWidgetRecordRequest { widget_key: "no spaces".into(), ..record(tenant.id(), &instance.id, "x") };
    assert_eq!(instances.write_widget_record(bad).await.unwrap_err().code(), Code::InvalidArgument);

    // Deleted: gone; deleting again finds nothing.
    let delete = WriteWidgetRecordRequest { delete: true, ..record(tenant.id(), &instance.id, "") };
    let deleted = instances.write_widget_record(delete.clone()).await.unwrap().into_inner();
    assert_eq!((deleted.write(), deleted.sys_id.as_str()), (WidgetRecordWrite::Deleted, created.sys_id.as_str()));
    assert!(running.simulator.written("sp_widget").is_empty());
    let absent = instances.write_widget_record(delete).await.unwrap().into_inner();
    assert_eq!(absent.write(), WidgetRecordWrite::Absent);

    // A changed password: a clear refusal, nothing written.
    running.simulator.change_password("rotated-by-an-admin");
    let refused = instances.write_widget_record(record(tenant.id(), &instance.id, "<div>3</div>")).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "SERVICENOW_CREDENTIALS_REFUSED")
    );
    assert!(refused.message().contains("update them"), "{refused:?}");
    assert!(!refused.message().contains("complianceiq-sim"), "no secret in the answer");

    // An ACL that denies writing sp_widget.
    let denied =
        simulator(SimConfig { controls: 5, write_denied_tables: vec!["sp_widget".into()], ..SimConfig::default() })
            .await;
    let locked = connected(platform, &other, &denied).await;
    let refused = instances.write_widget_record(record(other.id(), &locked.id, "<div>1</div>")).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "SERVICENOW_WRITE_DENIED"));
    assert!(refused.message().contains("may not write sp_widget"), "{refused:?}");
    assert!(denied.simulator.written("sp_widget").is_empty());
}

platform_tests!(widgets_deploy_into_servicenow_as_valid_code_with_versions_rollback_and_removal);

/// The parse5 module `make test` installs (a spec-compliant HTML parser that reports errors).
fn parse5() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/node_modules/parse5");
    assert!(
        path.exists(),
        "{} is missing: `make test` installs it (npm install --prefix .tools parse5)",
        path.display()
    );
    path.display().to_string()
}

/// Parses `source` as JavaScript (V8, `node --check`) or as an HTML fragment (parse5), and
/// returns what the parser refused.
fn parse(kind: &str, source: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ciq-parse-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(if kind == "js" { "code.js" } else { "code.html" });
    std::fs::write(&file, source).unwrap();
    let mut node = std::process::Command::new("node");
    if kind == "js" {
        node.arg("--check").arg(&file);
    } else {
        node.arg("-e")
            .arg(
                "const { parseFragment } = require(process.argv[1]); const errors = [];
                 parseFragment(require('fs').readFileSync(process.argv[2], 'utf8'),
                   { onParseError: (e) => errors.push(e.code + ' at ' + e.startLine + ':' + e.startCol) });
                 if (errors.length) { console.error(errors.join('\\n')); process.exit(1); }",
            )
            .arg(parse5())
            .arg(&file);
    }
    let output = node.output().expect("node runs (Node.js parses the generated code; install it)");
    std::fs::remove_dir_all(&dir).ok();
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

/// The sp_widget record of `key`, read back through the Table API.
async fn read_back(running: &RunningSimulator, key: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let config = running.simulator.config();
    let credentials = complianceiq_servicenow::Credentials::Basic {
        username: config.username.clone(),
        password: running.simulator.config().password.clone(),
    };
    let settings = complianceiq_servicenow::ClientSettings {
        network: complianceiq_servicenow::NetworkAccess::AllowPrivate,
        ..Default::default()
    };
    let client = complianceiq_servicenow::Client::new(&running.url, credentials, settings).unwrap();
    let query = complianceiq_servicenow::query::Query::parse(&format!("id={key}")).unwrap();
    let request = complianceiq_servicenow::PageRequest { query, limit: 10, ..Default::default() };
    let mut page = client.page("sp_widget", &request).await.expect("the Table API answers");
    assert!(page.records.len() <= 1, "one record per widget");
    page.records.pop()
}

/// The REST path a widget's server script reads, as written in it.
fn data_path(script: &str) -> String {
    let start = script.find("fetchJson(base + ").expect("the data call") + "fetchJson(base + ".len();
    let literal = &script[start..start + script[start..].find(");").unwrap()];
    serde_json::from_str(literal).expect("a JSON string literal")
}

async fn widgets_deploy_into_servicenow_as_valid_code_with_versions_rollback_and_removal(platform: &TestPlatform) {
    // The checker refuses what it should, so a pass means something.
    assert!(parse("js", "api.controller = function ( {").is_err());
    assert!(parse("html", "<div id=\"a\" id=\"b\"></div>").is_err());

    let running = simulator(SimConfig { controls: 8, ..SimConfig::default() }).await;
    let tenant = platform.tenant("Portal").await;
    let other = platform.tenant("Elsewhere").await;
    let instance = connected(platform, &tenant, &running).await;
    // Synced, so the data the widgets read exists.
    crate::sync::sync(platform, &tenant, &instance.id, complianceiq_proto::complianceiq::instance::v1::SyncMode::Full)
        .await;
    let mut widgets = WidgetServiceClient::new(platform.channel("widget").await);
    let token = tenant.token();

    let templates = widgets
        .list_widget_templates(authorized(ListWidgetTemplatesRequest::default(), token))
        .await
        .expect("templates")
        .into_inner()
        .templates;
    let ids: Vec<&str> = templates.iter().map(|template| template.id.as_str()).collect();
    assert_eq!(ids, ["score-gauge", "control-heatmap", "risk-matrix", "gap-list", "trend-line"]);

    // Bad definitions are refused field by field.
    let bad = Widget { r#type: WidgetType::Chart as i32, template_id: "trend-line".into(), ..Default::default() };
    let refused =
        widgets.create_widget(authorized(CreateWidgetRequest { widget: Some(bad) }, token)).await.unwrap_err();
    let fields: Vec<String> = crate::harness::violations(&refused).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["widget.name", "widget.config.filters.instance_id"], "{refused:?}");

    // A key with read permissions reads what each template's server script reads.
    let (_, key) = crate::api_keys::create_key(platform, token, "widgets", &["insights:read", "analysis:read"]).await;
    let filters: std::collections::HashMap<String, String> = [("instance_id".to_string(), instance.id.clone())].into();
    let mut created = Vec::new();
    for template in &templates {
        let widget = Widget {
            // A name that would break naive code generation.
            name: format!("{} </h3><script>\"'\\", template.name),
            r#type: template.r#type,
            template_id: template.id.clone(),
            config: Some(WidgetConfig { filters: filters.clone(), ..Default::default() }),
            ..Default::default()
        };
        let widget = widgets
            .create_widget(authorized(CreateWidgetRequest { widget: Some(widget) }, token))
            .await
            .expect("created")
            .into_inner();
        assert_eq!((widget.version, widget.state()), (1, WidgetState::Draft));
        let request =
            DeployWidgetRequest { widget_id: widget.id.clone(), instance_id: instance.id.clone(), version: 0 };
        let deployment = widgets.deploy_widget(authorized(request, token)).await.expect("deployed").into_inner();
        assert_eq!((deployment.state(), deployment.action()), (DeploymentState::Succeeded, DeploymentAction::Created));
        let key_of_record = format!("ciq_{}", widget.id.replace('-', ""));
        let record = read_back(&running, &key_of_record).await.expect("the record in ServiceNow");
        assert_eq!(record["sys_id"].as_str(), Some(deployment.servicenow_sys_id.as_str()));
        let column = |name: &str| record[name].as_str().unwrap_or_default().to_string();
        for (kind, name) in [("html", "template"), ("js", "client_script"), ("js", "script")] {
            if let Err(error) = parse(kind, &column(name)) {
                panic!("{} {name} does not parse: {error}\n{}", template.id, column(name));
            }
        }
        assert!(!column("template").contains("<script>"), "the name is escaped");
        serde_json::from_str::<serde_json::Value>(&column("option_schema")).expect("option_schema is JSON");
        let path = data_path(&column("script"));
        let (status, body) =
            crate::api_keys::call(platform, &key, crate::api_keys::Presented::Header, reqwest::Method::GET, &path)
                .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{} reads {path}: {body}", template.id);
        created.push((widget, deployment));
    }

    // The same version again: nothing written.
    let (widget, first) = &created[0];
    let writes = running.simulator.writes();
    let request = DeployWidgetRequest { widget_id: widget.id.clone(), instance_id: instance.id.clone(), version: 0 };
    let again = widgets.deploy_widget(authorized(request.clone(), token)).await.expect("redeployed").into_inner();
    assert_eq!((again.action(), running.simulator.writes()), (DeploymentAction::Unchanged, writes));

    // A change is a new version, deployed as an update of the same record; a rollback too.
    let update = UpdateWidgetRequest {
        widget_id: widget.id.clone(),
        widget: Some(Widget { description: "Board view".into(), etag: widget.etag.clone(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["description".into()] }),
    };
    let updated = widgets.update_widget(authorized(update.clone(), token)).await.expect("updated").into_inner();
    assert_eq!(updated.version, 2);
    let stale = widgets.update_widget(authorized(update, token)).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "an old etag");
    let key_of_record = format!("ciq_{}", widget.id.replace('-', ""));
    let deployed = widgets.deploy_widget(authorized(request.clone(), token)).await.unwrap().into_inner();
    assert_eq!((deployed.action(), deployed.widget_version), (DeploymentAction::Updated, 2));
    assert_eq!(deployed.servicenow_sys_id, first.servicenow_sys_id, "the same record");
    let record = read_back(&running, &key_of_record).await.unwrap();
    assert!(record["script"].as_str().unwrap().contains("data.version = 2;"));
    let rollback = DeployWidgetRequest { version: 1, ..request.clone() };
    let rolled = widgets.deploy_widget(authorized(rollback, token)).await.unwrap().into_inner();
    assert_eq!((rolled.action(), rolled.widget_version), (DeploymentAction::Updated, 1));
    let record = read_back(&running, &key_of_record).await.unwrap();
    assert!(record["script"].as_str().unwrap().contains("data.version = 1;"));
    assert_eq!(running.simulator.written("sp_widget").len(), templates.len(), "no duplicates");
    // widget.deployed for every record written (five creations, the update and the rollback),
    // none for the unchanged redeploy.
    let deployed_events = "SELECT COUNT(*) FROM ciq_outbox WHERE event_type = 'widget.deployed'";
    let events = platform.stored_count(complianceiq_kit::config::DatabaseGroup::Core, deployed_events).await;
    assert_eq!(events, templates.len() as i64 + 2);
    let history = widgets
        .list_widget_deployments(authorized(
            ListWidgetDeploymentsRequest { widget_id: widget.id.clone(), ..Default::default() },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    let versions: Vec<i32> = history.iter().map(|deployment| deployment.widget_version).collect();
    assert_eq!(versions, [1, 2, 1, 1], "newest first");
    assert!(history.iter().all(|deployment| deployment.servicenow_sys_id == first.servicenow_sys_id));
    let listed = widgets
        .list_widget_versions(authorized(
            ListWidgetVersionsRequest { widget_id: widget.id.clone(), ..Default::default() },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(listed.iter().map(|version| version.version).collect::<Vec<_>>(), [2, 1]);

    // Another tenant sees nothing and cannot deploy into this tenant's instance.
    let mut theirs = WidgetServiceClient::new(platform.channel("widget").await);
    let listed =
        theirs.list_widgets(authorized(ListWidgetsRequest::default(), other.token())).await.unwrap().into_inner();
    assert!(listed.widgets.is_empty());
    let foreign = theirs.deploy_widget(authorized(request.clone(), other.token())).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let own = Widget { name: "Mine".into(), r#type: WidgetType::Scorecard as i32, ..Default::default() };
    let own = theirs
        .create_widget(authorized(CreateWidgetRequest { widget: Some(own) }, other.token()))
        .await
        .unwrap()
        .into_inner();
    let into_theirs = DeployWidgetRequest { widget_id: own.id.clone(), instance_id: instance.id.clone(), version: 0 };
    assert_eq!(theirs.deploy_widget(authorized(into_theirs, other.token())).await.unwrap_err().code(), Code::NotFound);

    // Deleted: the record leaves ServiceNow.
    widgets
        .delete_widget(authorized(DeleteWidgetRequest { widget_id: widget.id.clone(), etag: String::new() }, token))
        .await
        .expect("deleted");
    assert!(read_back(&running, &key_of_record).await.is_none(), "undeployed");
    let gone =
        widgets.get_widget(authorized(GetWidgetRequest { widget_id: widget.id.clone() }, token)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // A changed password, and an ACL that denies writing sp_widget: clear errors, kept in the history.
    running.simulator.change_password("rotated-by-an-admin");
    let (second, _) = &created[1];
    let request = DeployWidgetRequest { widget_id: second.id.clone(), instance_id: instance.id.clone(), version: 0 };
    let refused = widgets.deploy_widget(authorized(request, token)).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "SERVICENOW_CREDENTIALS_REFUSED")
    );
    let state = widgets.get_widget(authorized(GetWidgetRequest { widget_id: second.id.clone() }, token)).await.unwrap();
    assert_eq!(state.get_ref().state(), WidgetState::DeployFailed);
    // (The free plan connects one instance: the other organization's is behind the ACL.)
    let denied =
        simulator(SimConfig { controls: 5, write_denied_tables: vec!["sp_widget".into()], ..SimConfig::default() })
            .await;
    let locked = connected(platform, &other, &denied).await;
    let request = DeployWidgetRequest { widget_id: own.id.clone(), instance_id: locked.id.clone(), version: 0 };
    let refused = theirs.deploy_widget(authorized(request, other.token())).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "SERVICENOW_WRITE_DENIED"));
    let request = ListWidgetDeploymentsRequest { widget_id: own.id.clone(), ..Default::default() };
    let history =
        theirs.list_widget_deployments(authorized(request, other.token())).await.unwrap().into_inner().deployments;
    assert_eq!(history[0].state(), DeploymentState::Failed);
    assert!(history[0].error.contains("may not write sp_widget"), "{:?}", history[0]);
}
