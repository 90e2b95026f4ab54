//! `complianceiq`: one binary, every module.
//!
//! - `dev`: all modules in one process on embedded defaults (SQLite, in-process bus and
//!   cache) under one data directory.
//! - `serve --target a,b`: chosen modules, configured for PostgreSQL, Redis and NATS.
//! - `migrate`: apply pending database migrations.
//! - `modules`: list the modules, their ports and databases.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use complianceiq_kit::config::{DEFAULT_PUBLIC_URL, LogFormat, PlatformConfig};
use complianceiq_kit::runtime::{self, RunningPlatform};
use complianceiq_kit::telemetry;

#[derive(Parser)]
#[command(name = "complianceiq", version, about = "ComplianceIQ: GRC analysis for ServiceNow IRM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every module in this process on embedded defaults.
    Dev {
        /// Do not start the ServiceNow simulator and the demo organization connected to it.
        #[arg(long)]
        no_demo: bool,
        /// Port of the demo's ServiceNow simulator (the port offset applies).
        #[arg(long, default_value_t = 8090)]
        demo_port: u16,
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// Run the chosen modules, on PostgreSQL, Redis and NATS JetStream.
    Serve {
        /// Modules to run, comma-separated, or `all`.
        #[arg(long, env = "CIQ_TARGET", value_delimiter = ',', required = true)]
        target: Vec<String>,
        /// Apply pending migrations before starting (needs the admin user).
        #[arg(long, env = "CIQ_MIGRATE", default_value_t = false)]
        migrate: bool,
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// Modules whose migrations to apply, comma-separated, or `all`.
        #[arg(long, env = "CIQ_TARGET", value_delimiter = ',', default_value = "all")]
        target: Vec<String>,
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// List the modules with their ports, databases and the modules they call.
    Modules,
    /// Render the Kubernetes manifests that follow from the module table and the mesh policy
    /// (workloads, cert-manager Certificates, Istio policy) into k8s/.
    Manifests {
        /// Repository root to write under.
        #[arg(long, default_value = ".")]
        root: std::path::PathBuf,
        /// Write nothing; fail if a committed file differs from what the code renders.
        #[arg(long)]
        check: bool,
        /// SPIFFE trust domain of module identities.
        #[arg(long, env = "CIQ_MESH_TRUST_DOMAIN", default_value = "cluster.local")]
        trust_domain: String,
        /// Kubernetes namespace of the platform.
        #[arg(long, env = "CIQ_MESH_NAMESPACE", default_value = "complianceiq")]
        namespace: String,
    },
    /// Serve a simulated ServiceNow instance (Table API and /oauth_token.do) with seeded GRC
    /// data, to develop and test against.
    SnowSim(SnowSimArgs),
    /// Add a new RS256 signing key to the JWT keys directory; it signs from then on, and the
    /// previous key stays published until its tokens have expired.
    RotateJwtKey {
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// Encrypt every stored secret (MFA seeds, ServiceNow credentials) again under the first
    /// key of CIQ_ENCRYPTION_KEYS. Put the new key first, keep the old ones, deploy, run
    /// this, then drop the old keys. Interrupted, it resumes where it stopped.
    RotateEncryptionKey {
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// Platform staff (Super Admin): accounts that belong to no organization and use the staff
    /// API across organizations. Made only here, never through the API.
    Staff {
        #[command(subcommand)]
        action: StaffAction,
    },
}

#[derive(Subcommand)]
enum StaffAction {
    /// Create a staff account with a random password and an enrolled second factor, printed
    /// once; for an existing staff account, replace both and end its sessions.
    Add {
        /// The staff member's email (not one of a tenant account).
        email: String,
        /// Their name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// List staff accounts.
    List {
        #[command(flatten)]
        config: PlatformConfig,
    },
    /// Disable a staff account and end its sessions.
    Remove {
        /// The staff member's email.
        email: String,
        #[command(flatten)]
        config: PlatformConfig,
    },
}

#[derive(clap::Args)]
struct SnowSimArgs {
    /// Address to listen on.
    #[arg(long, env = "CIQ_SNOW_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    /// Seed of the generated data (same seed and size, same records).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of controls; the other tables are sized from it.
    #[arg(long, default_value_t = 200)]
    controls: usize,
    /// Answer every n-th Table API request with 429 and Retry-After (0: never).
    #[arg(long, default_value_t = 0)]
    throttle_every: u64,
    /// Seconds of Retry-After sent with a 429.
    #[arg(long, default_value_t = 1)]
    retry_after_seconds: u64,
    /// Answer every n-th Table API request with 503 (0: never).
    #[arg(long, default_value_t = 0)]
    fail_every: u64,
    /// Added latency per request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Records changed (updated, created, deleted) per second.
    #[arg(long, default_value_t = 0.0)]
    churn_per_second: f64,
    /// Tables the user may not read (403), comma-separated.
    #[arg(long, value_delimiter = ',')]
    deny_tables: Vec<String>,
    /// Basic-auth user (also the password grant's user).
    #[arg(long, default_value = "complianceiq")]
    username: String,
    /// Its password.
    #[arg(long, default_value = "complianceiq-sim")]
    password: String,
    /// OAuth client id.
    #[arg(long, default_value = "complianceiq-client")]
    client_id: String,
    /// OAuth client secret.
    #[arg(long, default_value = "complianceiq-sim-secret")]
    client_secret: String,
}

async fn snow_sim(args: SnowSimArgs) -> Result<(), String> {
    use complianceiq_servicenow::sim::{self, SimConfig, Simulator};
    let config = SimConfig {
        seed: args.seed,
        controls: args.controls,
        username: args.username,
        password: args.password,
        client_id: args.client_id,
        client_secret: args.client_secret,
        throttle_every: args.throttle_every,
        fail_every: args.fail_every,
        retry_after_seconds: args.retry_after_seconds,
        latency: std::time::Duration::from_millis(args.latency_ms),
        denied_tables: args.deny_tables,
        churn_per_second: args.churn_per_second,
        ..SimConfig::default()
    };
    let simulator = std::sync::Arc::new(Simulator::new(config));
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("listening on {}: {e}", args.listen))?;
    println!("ServiceNow simulator at http://{} (seed {})", args.listen, args.seed);
    for (table, count) in simulator.counts() {
        println!("  {table:<32} {count:>7}");
    }
    println!(
        "  basic auth user {:?}, OAuth client {:?} (see --help for the secrets)",
        simulator.config().username,
        simulator.config().client_id
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let churn = {
        let (simulator, stop) = (simulator.clone(), stop.clone());
        tokio::spawn(async move { simulator.churn_forever(stop).await })
    };
    let served = tokio::select! {
        served = sim::serve(simulator, listener, stop.clone()) => served,
        _ = shutdown_signal() => Ok(()),
    };
    stop.cancel();
    let _ = churn.await;
    served
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("complianceiq: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Dev { no_demo, demo_port, mut config } => {
            // Mailed links lead to the console this process serves, wherever its ports moved.
            let gateway_port = complianceiq_gateway::module().port;
            if std::env::var_os("CIQ_PUBLIC_URL").is_none() && config.mail.public_url == DEFAULT_PUBLIC_URL {
                config.mail.public_url = format!("http://localhost:{}", config.listen.port_for(gateway_port));
            }
            let config_public_url = config.mail.public_url.clone();
            let telemetry = telemetry::init(&config.telemetry, LogFormat::Pretty, "complianceiq")?;
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| format!("creating data directory {}: {e}", config.data_dir.display()))?;
            let data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
            let options = complianceiq::start_options(vec!["all".into()], true);
            let demo_port = config.listen.port_for(demo_port);
            let platform = runtime::start(config, complianceiq::modules(), options).await.map_err(|e| e.to_string())?;
            let demo = if no_demo {
                None
            } else {
                Some(complianceiq::demo::start(&platform, &data_dir, demo_port, platform.shutdown_token()).await?)
            };
            let console = format!("{}/", config_public_url.trim_end_matches('/'));
            print_banner(&platform, Some(&data_dir));
            println!("  console: {console}");
            if let Some(demo) = demo {
                println!("  demo: sign in as {} / {} (organization \"Demo Organization\");", demo.email, demo.password);
                println!("        its ServiceNow instance is the simulator at {}, synced hourly", demo.simulator_url);
                println!();
            }
            let result = run_until_stopped(platform).await;
            telemetry.shutdown();
            result
        }
        Command::Serve { target, migrate, config } => {
            // One module per process (as in Kubernetes) names the process after it.
            let service_name = match target.as_slice() {
                [only] if only != "all" => format!("{only}-service"),
                _ => "complianceiq".to_string(),
            };
            let telemetry = telemetry::init(&config.telemetry, LogFormat::Json, &service_name)?;
            require_servers(&config, &target)?;
            let options = complianceiq::start_options(target, migrate);
            let platform = runtime::start(config, complianceiq::modules(), options).await.map_err(|e| e.to_string())?;
            for (module, address) in &platform.addresses {
                tracing::info!(module, %address, "listening");
            }
            tracing::info!(ops = %platform.ops_address, "operations port (health, /metrics)");
            tracing::info!(startup_ms = platform.startup_time.as_millis() as u64, "ready");
            let result = run_until_stopped(platform).await;
            telemetry.shutdown();
            result
        }
        Command::Migrate { target, config } => {
            let _telemetry = telemetry::init(&config.telemetry, LogFormat::Pretty, "complianceiq")?;
            let modules = complianceiq::modules();
            let targets = runtime::resolve_targets(&modules, &target).map_err(|e| e.to_string())?;
            let reports = runtime::migrate(&config, &targets).await.map_err(|e| e.to_string())?;
            for (group, report) in reports {
                if report.applied.is_empty() {
                    println!("{} database: up to date", group.name());
                }
                for (owner, version, name) in report.applied {
                    println!("{} database: applied {owner} {version} ({name})", group.name());
                }
            }
            Ok(())
        }
        Command::RotateJwtKey { config } => {
            let dir = config.jwt_keys_dir();
            let id = complianceiq_auth::KeyRing::generate_into(&dir).map_err(|e| e.to_string())?;
            println!("new signing key {id} in {}; running auth services pick it up within a second", dir.display());
            Ok(())
        }
        Command::RotateEncryptionKey { config } => {
            let counts = runtime::reseal_secrets(&config, &complianceiq::modules()).await.map_err(|e| e.to_string())?;
            for (module, count) in counts {
                println!("{module}: {count} secret(s) re-sealed");
            }
            println!("every stored secret is sealed under the first key; older keys can be removed");
            Ok(())
        }
        Command::Staff { action } => staff(action).await,
        Command::Manifests { root, check, trust_domain, namespace } => {
            let scope = complianceiq_kit::mesh::TrustScope { trust_domain, namespace };
            let files = complianceiq::manifests::render(&complianceiq::modules(), &complianceiq::mesh_policy(), &scope);
            let differing = complianceiq::manifests::write_or_check(&root, &files, check)?;
            match (check, differing.is_empty()) {
                (true, false) => Err(format!("out of date: {}; run `complianceiq manifests`", differing.join(", "))),
                (true, true) => Ok(()),
                (false, _) => {
                    for path in differing {
                        println!("wrote {path}");
                    }
                    Ok(())
                }
            }
        }
        Command::SnowSim(args) => snow_sim(args).await,
        Command::Modules => {
            println!("{:<14} {:>5}  {:<9} calls", "module", "port", "database");
            for module in complianceiq::modules() {
                let database = module.database.map(|group| group.name()).unwrap_or("-");
                println!("{:<14} {:>5}  {:<9} {}", module.name, module.port, database, module.calls.join(", "));
            }
            Ok(())
        }
    }
}

async fn staff(action: StaffAction) -> Result<(), String> {
    let config = match &action {
        StaffAction::Add { config, .. } | StaffAction::List { config } | StaffAction::Remove { config, .. } => config,
    };
    let (database, secrets) =
        runtime::operator_access(config, &complianceiq_auth::module()).await.map_err(|e| e.to_string())?;
    let result = async {
        match &action {
            StaffAction::Add { email, name, .. } => {
                let added = complianceiq_auth::staff::add(&database, &secrets, email, name).await?;
                let verb = if added.replaced { "replaced the credentials of" } else { "created" };
                println!("{verb} staff account {} ({})", added.email, added.user_id);
                println!("hand these to them over a secure channel; they are not shown again:");
                println!("  password:      {}", added.password);
                println!("  authenticator: {}", added.provisioning_uri);
                println!("  recovery codes:");
                for code in &added.recovery_codes {
                    println!("    {code}");
                }
            }
            StaffAction::List { .. } => {
                for (email, name, active) in complianceiq_auth::staff::list(&database).await? {
                    println!("{email:<40} {:<8} {name}", if active { "active" } else { "disabled" });
                }
            }
            StaffAction::Remove { email, .. } => {
                if !complianceiq_auth::staff::remove(&database, email).await? {
                    return Err(complianceiq_kit::ApiError::not_found("StaffAccount", email.clone()));
                }
                println!("disabled staff account {email}; its sessions ended");
            }
        }
        Ok(())
    }
    .await;
    database.close().await;
    result.map_err(|error| error.to_string())
}

/// `serve` runs modules as separate processes, which only works with shared servers: an
/// in-process bus or cache would silently split the platform.
fn require_servers(config: &PlatformConfig, target: &[String]) -> Result<(), String> {
    let modules = complianceiq::modules();
    let targets = runtime::resolve_targets(&modules, target).map_err(|e| e.to_string())?;
    let mut missing = Vec::new();
    for group in targets.iter().filter_map(|module| module.database).collect::<std::collections::BTreeSet<_>>() {
        let url = config.database.url_for(group, &config.data_dir);
        if !url.starts_with("postgres") {
            missing.push(format!("CIQ_DATABASE_URL or CIQ_{}_DATABASE_URL (PostgreSQL)", group.name().to_uppercase()));
        }
    }
    if config.cache.redis_url.is_none() {
        missing.push("CIQ_REDIS_URL".into());
    }
    if config.events.nats_url.is_none() {
        missing.push("CIQ_NATS_URL".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("serve needs {}; use `complianceiq dev` to run on embedded defaults", missing.join(", ")))
    }
}

fn print_banner(platform: &RunningPlatform, data_dir: Option<&std::path::Path>) {
    println!();
    println!("ComplianceIQ is running (ready in {} ms)", platform.startup_time.as_millis());
    if let Some(dir) = data_dir {
        println!("  data directory   {}", dir.display());
    }
    println!("  event bus        {}", platform.bus.kind());
    println!("  cache            {}", platform.cache.kind());
    println!();
    println!("  {:<14} gRPC over mutual TLS, with health and reflection (v1, v1alpha)", "module");
    for module in complianceiq::modules() {
        if let Some(address) = platform.addresses.get(module.name.0) {
            println!("  {:<14} {address}", module.name);
        }
    }
    println!("  {:<14} {} (gRPC health, /metrics, /healthz; plain HTTP)", "operations", platform.ops_address);
    if let Some(gateway) = platform.addresses.get("gateway") {
        println!();
        println!("  REST, grpc-web and gRPC at http://{gateway} (OpenAPI: http://{gateway}/openapi.json)");
    }
    if let (Some(organization), Some(dir)) = (platform.addresses.get("organization"), data_dir) {
        let mesh = dir.join("mesh");
        println!();
        println!(
            "  try: curl -s http://{}/openapi.json | head",
            platform.addresses.get("gateway").map(|a| a.to_string()).unwrap_or_default()
        );
        println!(
            "       grpcurl -cacert {m}/ca/ca.crt -cert {m}/gateway/tls.crt -key {m}/gateway/tls.key \\\n             -servername organization-service {organization} list",
            m = mesh.display()
        );
    }
    println!("  stop with Ctrl-C");
    println!();
}

async fn run_until_stopped(mut platform: RunningPlatform) -> Result<(), String> {
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        failed = platform.wait() => failed.and(Err("every task ended unexpectedly".to_string())),
    };
    platform.shutdown().await;
    outcome
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    /// Clap checks its definitions only when a command is parsed in a debug build: a flag
    /// name two configuration sections share would stop `dev` and `serve` from starting.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
