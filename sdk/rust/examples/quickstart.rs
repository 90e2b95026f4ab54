//! From nothing to analysis results through the SDK, against `complianceiq dev`: sign up
//! (the verification letter read from the dev mailbox), create an organization, connect the
//! ServiceNow simulator `dev` serves, sync it, analyse its controls, and read the results.
//!
//!     complianceiq dev &        # the platform on 127.0.0.1:8080, the simulator on :8090
//!     CIQ_MAILBOX=.complianceiq/mailbox cargo run -p complianceiq-sdk --example quickstart
//!
//! Settings (environment): CIQ_ENDPOINT (http://127.0.0.1:8080), CIQ_MAILBOX (the dev data
//! directory's `mailbox`), CIQ_SIMULATOR_URL (http://127.0.0.1:8090).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use complianceiq_sdk::proto::complianceiq::analysis::v1::analysis_service_client::AnalysisServiceClient;
use complianceiq_sdk::proto::complianceiq::analysis::v1::{
    AnalysisJob, AnalyzeControlsRequest, GetAnalysisJobRequest, JobState, ListAnalysisResultsRequest,
};
use complianceiq_sdk::proto::complianceiq::auth::v1::auth_service_client::AuthServiceClient;
use complianceiq_sdk::proto::complianceiq::auth::v1::{
    LoginRequest, RefreshRequest, RegisterRequest, VerifyEmailRequest, login_response,
};
use complianceiq_sdk::proto::complianceiq::instance::v1::instance_service_client::InstanceServiceClient;
use complianceiq_sdk::proto::complianceiq::instance::v1::{
    AuthType, BasicCredentials, CreateInstanceRequest, GetSyncRunRequest, Instance, SyncInstanceRequest, SyncMode,
    SyncState, credentials,
};
use complianceiq_sdk::proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use complianceiq_sdk::proto::complianceiq::organization::v1::{CreateOrganizationRequest, Organization};
use complianceiq_sdk::{Client, Credentials, Error};
use futures::TryStreamExt;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Asks `step` again until it answers something other than `None`, for at most `limit`.
async fn until<T, Fut: Future<Output = std::result::Result<Option<T>, Error>>>(
    what: &str,
    limit: Duration,
    mut step: impl FnMut() -> Fut,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(done) = step().await? {
            return Ok(done);
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The token of the newest verification letter to `email` in the dev mailbox.
fn verification_token(mailbox: &PathBuf, email: &str) -> Option<String> {
    let mut letters: Vec<PathBuf> = std::fs::read_dir(mailbox)
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(&format!("{email}.eml")))
        .collect();
    letters.sort();
    let letter = std::fs::read_to_string(letters.last()?).ok()?;
    letter.lines().find_map(|line| line.strip_prefix("Token: ").map(|token| token.trim().to_string()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = setting("CIQ_ENDPOINT", "http://127.0.0.1:8080");
    let mailbox = PathBuf::from(setting("CIQ_MAILBOX", ".complianceiq/mailbox"));
    let simulator = setting("CIQ_SIMULATOR_URL", "http://127.0.0.1:8090");
    let anonymous = Client::builder(endpoint).timeout(Duration::from_secs(30)).connect().await?;

    // Sign up and verify the address.
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let email = format!("sdk-{stamp}@example.com");
    let password = format!("sdk example {stamp}");
    let register =
        RegisterRequest { email: email.clone(), password: password.clone(), full_name: "SDK Example".into() };
    anonymous.call(async |channel| AuthServiceClient::new(channel).register(register.clone()).await).await?;
    let token = until("the verification letter", Duration::from_secs(10), || async {
        Ok(verification_token(&mailbox, &email))
    })
    .await?;
    anonymous
        .call(async |channel| {
            AuthServiceClient::new(channel).verify_email(VerifyEmailRequest { token: token.clone() }).await
        })
        .await?;
    let login = LoginRequest { email: email.clone(), password, organization_id: String::new() };
    let login = anonymous.call(async |channel| AuthServiceClient::new(channel).login(login.clone()).await).await?;
    let Some(login_response::Result::Tokens(tokens)) = login.result else {
        return Err("the login asked for a second factor".into());
    };
    let person = anonymous.with_credentials(Credentials::session(&tokens));
    println!("signed up as {email}");

    // An organization, and a session scoped to it (the membership arrives by event).
    let organization = Organization { display_name: format!("SDK Example {stamp}"), ..Default::default() };
    let create = CreateOrganizationRequest { organization: Some(organization) };
    let organization = person
        .call(async |channel| OrganizationServiceClient::new(channel).create_organization(create.clone()).await)
        .await?;
    let scoped = until("the membership", Duration::from_secs(30), || async {
        let refresh =
            RefreshRequest { refresh_token: tokens.refresh_token.clone(), organization_id: organization.id.clone() };
        match anonymous.call(async |channel| AuthServiceClient::new(channel).refresh(refresh.clone()).await).await {
            Ok(pair) => Ok(Some(pair)),
            Err(error) if error.code == tonic::Code::PermissionDenied => Ok(None),
            Err(error) => Err(error),
        }
    })
    .await?;
    let member = anonymous.with_credentials(Credentials::session(&scoped));
    println!("organization {} ({})", organization.display_name, organization.id);

    // Connect the simulator (the client retries while the organization's plan arrives) and sync.
    let instance = Instance {
        name: "ServiceNow simulator".into(),
        url: simulator,
        auth_type: AuthType::Basic as i32,
        credentials: Some(complianceiq_sdk::proto::complianceiq::instance::v1::Credentials {
            kind: Some(credentials::Kind::Basic(BasicCredentials {
                username: "complianceiq".into(),
                password: "complianceiq-sim".into(),
            })),
        }),
        ..Default::default()
    };
    let create = CreateInstanceRequest { instance: Some(instance), validate_connection: true };
    let instance =
        member.call(async |channel| InstanceServiceClient::new(channel).create_instance(create.clone()).await).await?;
    let sync = SyncInstanceRequest { instance_id: instance.id.clone(), mode: SyncMode::Full as i32, tables: vec![] };
    let run =
        member.call(async |channel| InstanceServiceClient::new(channel).sync_instance(sync.clone()).await).await?;
    let get = GetSyncRunRequest { instance_id: instance.id.clone(), sync_run_id: run.id.clone() };
    let run = until("the sync", Duration::from_secs(300), || async {
        let run =
            member.call(async |channel| InstanceServiceClient::new(channel).get_sync_run(get.clone()).await).await?;
        Ok((!matches!(run.state(), SyncState::Pending | SyncState::Running)).then_some(run))
    })
    .await?;
    if run.state() != SyncState::Succeeded {
        return Err(format!("the sync ended {:?}: {}", run.state(), run.error).into());
    }
    let fetched: i64 = run.tables.iter().map(|table| table.fetched).sum();
    println!("synced {fetched} records from {}", instance.url);

    // Analyse the controls (once the store has taken in the sync), then read every result.
    let analyse = AnalyzeControlsRequest { instance_id: instance.id.clone(), ..Default::default() };
    let job: AnalysisJob = until("the analysis to start", Duration::from_secs(30), || async {
        match member
            .call(async |channel| AnalysisServiceClient::new(channel).analyze_controls(analyse.clone()).await)
            .await
        {
            Ok(job) => Ok(Some(job)),
            Err(error) if matches!(error.code, tonic::Code::NotFound | tonic::Code::FailedPrecondition) => Ok(None),
            Err(error) => Err(error),
        }
    })
    .await?;
    let get = GetAnalysisJobRequest { job_id: job.id.clone() };
    let job = until("the analysis", Duration::from_secs(120), || async {
        let job = member
            .call(async |channel| AnalysisServiceClient::new(channel).get_analysis_job(get.clone()).await)
            .await?;
        Ok((!matches!(job.state(), JobState::Queued | JobState::Running)).then_some(job))
    })
    .await?;
    if job.state() != JobState::Succeeded {
        return Err(format!("the analysis ended {:?}: {}", job.state(), job.error).into());
    }
    let request = ListAnalysisResultsRequest { job_id: job.id.clone(), page_size: 100, ..Default::default() };
    let results: Vec<_> = member
        .items(request, async |channel, request| {
            AnalysisServiceClient::new(channel).list_analysis_results(request).await
        })
        .try_collect()
        .await?;
    let scored: Vec<f64> = results.iter().filter_map(|result| result.score).collect();
    let mean = scored.iter().sum::<f64>() / scored.len().max(1) as f64;
    println!("{} results, {} scored, mean effectiveness {mean:.1}", results.len(), scored.len());
    if results.is_empty() {
        return Err("the analysis gave no results".into());
    }
    Ok(())
}
