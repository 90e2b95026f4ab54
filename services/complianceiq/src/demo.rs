//! `complianceiq dev`'s demo: a ServiceNow simulator beside the platform and, on first run, a
//! demo person whose organization has that instance connected and syncing, and analysed once
//! the first sync completes, so a new user sees synced data and analyses at once. Everything goes through the services' APIs, as a client would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use complianceiq_kit::mesh::MeshChannel;
use complianceiq_kit::runtime::RunningPlatform;
use complianceiq_proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_proto::complianceiq::analysis::v1::{
    AnalyzeComplianceRequest, AnalyzeControlsRequest, AnalyzeRisksRequest,
};
use complianceiq_proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_proto::complianceiq::auth::v1::{
    LoginRequest, RefreshRequest, RegisterRequest, VerifyEmailRequest, login_response,
};
use complianceiq_proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_proto::complianceiq::instance::v1::{
    AuthType, BasicCredentials, CreateInstanceRequest, Credentials, Instance, credentials,
};
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_proto::complianceiq::organization::v1::{CreateOrganizationRequest, Organization};
use complianceiq_servicenow::sim::{self, SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

/// The demo person's address.
pub const EMAIL: &str = "demo@complianceiq.local";

/// What the banner shows about the demo.
pub struct Demo {
    pub simulator_url: String,
    pub email: String,
    pub password: String,
}

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Serves the simulator on `port` until `stop`, and on first run signs the demo person up
/// with an organization connected to it. The simulator's data is the same every run (seed).
pub async fn start(
    platform: &RunningPlatform,
    data_dir: &Path,
    port: u16,
    stop: CancellationToken,
) -> Result<Demo, String> {
    let simulator = Arc::new(Simulator::new(SimConfig::default()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("the ServiceNow simulator cannot listen on 127.0.0.1:{port}: {e} (use --no-demo)"))?;
    let simulator_url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(sim::serve(simulator, listener, stop));

    let marker = data_dir.join("demo.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let saved: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", marker.display()))?;
        let password = saved["password"].as_str().unwrap_or_default().to_string();
        return Ok(Demo { simulator_url, email: EMAIL.into(), password });
    }
    let password = format!("ciq-{}", &complianceiq_kit::crypto::random_token()[..16]);
    sign_up(platform, data_dir, &simulator_url, &password).await?;
    let saved = serde_json::json!({"email": EMAIL, "password": password, "simulator": simulator_url});
    complianceiq_kit::secrets::write_private(&marker, saved.to_string().as_bytes())
        .map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(Demo { simulator_url, email: EMAIL.into(), password })
}

async fn sign_up(
    platform: &RunningPlatform,
    data_dir: &Path,
    simulator_url: &str,
    password: &str,
) -> Result<(), String> {
    let channel = |module: &str| {
        let address = platform.addresses.get(module).ok_or_else(|| format!("{module} is not running"))?;
        platform.mesh.channel("gateway", module, &format!("http://{address}")).map_err(|e| e.to_string())
    };
    let fail = |step: &'static str| move |status: tonic::Status| format!("demo: {step}: {}", status.message());
    let mut auth = AuthServiceClient::new(channel("auth")?);
    auth.register(RegisterRequest { email: EMAIL.into(), password: password.into(), full_name: "Demo User".into() })
        .await
        .map_err(fail("registering"))?;
    let token = verification_token(&data_dir.join("mailbox")).await?;
    auth.verify_email(VerifyEmailRequest { token }).await.map_err(fail("verifying the email"))?;
    let login = auth
        .login(LoginRequest { email: EMAIL.into(), password: password.into(), organization_id: String::new() })
        .await
        .map_err(fail("logging in"))?
        .into_inner();
    let Some(login_response::Result::Tokens(tokens)) = login.result else {
        return Err("demo: login asked for a second factor".into());
    };
    let organization = Organization { display_name: "Demo Organization".into(), ..Default::default() };
    let organization = OrganizationServiceClient::new(channel("organization")?)
        .create_organization(authorized(
            CreateOrganizationRequest { organization: Some(organization) },
            &tokens.access_token,
        ))
        .await
        .map_err(fail("creating the organization"))?
        .into_inner();
    // The membership reaches the auth service by event.
    let mut scoped = None;
    for _ in 0..200 {
        let request =
            RefreshRequest { refresh_token: tokens.refresh_token.clone(), organization_id: organization.id.clone() };
        match auth.refresh(request).await {
            Ok(pair) => {
                scoped = Some(pair.into_inner().access_token);
                break;
            }
            Err(status) if status.code() == tonic::Code::PermissionDenied => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => return Err(fail("switching to the organization")(status)),
        }
    }
    let scoped = scoped.ok_or("demo: the organization's membership never reached the auth service")?;
    let defaults = SimConfig::default();
    let instance = Instance {
        name: "ServiceNow simulator".into(),
        url: simulator_url.into(),
        auth_type: AuthType::Basic as i32,
        credentials: Some(Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials {
                username: defaults.username,
                password: defaults.password,
            })),
        }),
        sync_interval_minutes: 60,
        ..Default::default()
    };
    let mut instances = InstanceServiceClient::new(channel("instance")?);
    let analysis = AnalysisServiceClient::new(channel("analysis")?);
    for _ in 0..200 {
        let request = CreateInstanceRequest { instance: Some(instance.clone()), validate_connection: true };
        match instances.create_instance(authorized(request, &scoped)).await {
            Ok(created) => {
                tokio::spawn(analyse_when_synced(analysis, scoped, created.into_inner().id));
                return Ok(());
            }
            // The organization's plan reaches the instance service by event.
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => return Err(fail("connecting the simulator")(status)),
        }
    }
    Err("demo: the organization's plan never reached the instance service".into())
}

/// Once the first sync has completed, starts each analysis, so the demo organization has
/// results to look at right after start.
async fn analyse_when_synced(mut analysis: AnalysisServiceClient<MeshChannel>, token: String, instance_id: String) {
    let controls = AnalyzeControlsRequest { instance_id: instance_id.clone(), ..Default::default() };
    // The first full sync of the demo instance takes seconds; give it five minutes.
    for _ in 0..300 {
        match analysis.analyze_controls(authorized(controls.clone(), &token)).await {
            Ok(_) => break,
            Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            Err(status) => {
                tracing::warn!(error = %status.message(), "demo: starting the control analysis");
                return;
            }
        }
    }
    let risks = AnalyzeRisksRequest { instance_id: instance_id.clone(), ..Default::default() };
    let compliance = AnalyzeComplianceRequest { instance_id, ..Default::default() };
    let started = async {
        analysis.analyze_risks(authorized(risks, &token)).await?;
        analysis.analyze_compliance(authorized(compliance, &token)).await
    };
    match started.await {
        Ok(_) => tracing::info!("demo: control, risk and compliance analyses started"),
        Err(status) => tracing::warn!(error = %status.message(), "demo: starting the analyses"),
    }
}

/// The token of the verification mail to the demo address (the dev mailbox, quoted-printable).
async fn verification_token(mailbox: &Path) -> Result<String, String> {
    for _ in 0..100 {
        let mails: Vec<PathBuf> = std::fs::read_dir(mailbox)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        for mail in mails.iter().filter(|path| path.to_string_lossy().contains(EMAIL)) {
            let text = std::fs::read_to_string(mail).unwrap_or_default().replace("=\r\n", "").replace("=\n", "");
            let token = text
                .lines()
                .find_map(|line| line.strip_prefix("Token: "))
                .map(|token| token.trim().replace("=3D", "="));
            if let Some(token) = token {
                return Ok(token);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("demo: no verification mail in {}", mailbox.display()))
}
