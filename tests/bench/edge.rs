//! The price of the front door and of the mesh: the same read (`GetOrganization`) made as
//! direct gRPC to the organization module over mutual TLS, the same behind a sidecar (plain
//! HTTP/2, the caller named by `X-Forwarded-Client-Cert`, on a second platform in sidecar mode),
//! as native gRPC through the gateway, and as REST/JSON through the gateway, in one run. Prints latency percentiles per call made one at a
//! time, and throughput with many calls in flight, as a Markdown table for BENCHMARKS.md.
//!
//! `make bench` (release build). `CIQ_BENCH_CALLS`, `CIQ_BENCH_SECONDS` and
//! `CIQ_BENCH_CONCURRENCY` change the amounts.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../e2e/people.rs"]
mod people;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use complianceiq_kit::config::MeshMode;
use complianceiq_kit::mesh::policy::FORWARDED_CLIENT_CERT;
use complianceiq_proto::complianceiq::organization::v1::GetOrganizationRequest;
use complianceiq_proto::complianceiq::organization::v1::organization_service_client::OrganizationServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use harness::{Backend, TestPlatform};
use people::authorized;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// One way of making the call; cheap to clone into concurrent tasks.
#[derive(Clone)]
enum Path {
    Grpc(OrganizationServiceClient<Channel>),
    /// Plain HTTP/2 with the identity a sidecar would forward.
    Sidecar(OrganizationServiceClient<Channel>, MetadataValue<Ascii>),
    Rest(reqwest::Client, String),
}

#[derive(Clone)]
struct Caller {
    path: Path,
    organization: String,
    token: String,
}

impl Caller {
    async fn call(&self) {
        match &self.path {
            Path::Grpc(client) => {
                let request = GetOrganizationRequest { org_id: self.organization.clone() };
                let organization = client.clone().get_organization(authorized(request, &self.token)).await;
                assert_eq!(organization.expect("the call succeeds").into_inner().id, self.organization);
            }
            Path::Sidecar(client, forwarded_identity) => {
                let request = GetOrganizationRequest { org_id: self.organization.clone() };
                let mut request = authorized(request, &self.token);
                request.metadata_mut().insert(FORWARDED_CLIENT_CERT, forwarded_identity.clone());
                let organization = client.clone().get_organization(request).await;
                assert_eq!(organization.expect("the call succeeds").into_inner().id, self.organization);
            }
            Path::Rest(client, url) => {
                let response = client.get(url).bearer_auth(&self.token).send().await.expect("the gateway answers");
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                let body = response.bytes().await.expect("a body");
                assert!(body.len() > 2, "an organization");
            }
        }
    }
}

/// Rounds per measurement; the paths take turns so that noise on a shared machine spreads
/// over all of them instead of landing on one.
const ROUNDS: u64 = 5;

#[derive(Default)]
struct Measured {
    samples: Vec<Duration>,
    calls: u64,
    busy: Duration,
}

impl Measured {
    fn at(&self, quantile: f64) -> Duration {
        self.samples[((self.samples.len() - 1) as f64 * quantile).round() as usize]
    }

    fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / self.busy.as_secs_f64()
    }
}

/// One call at a time: latency samples.
async fn sequential(caller: &Caller, calls: u64, into: &mut Measured) {
    for _ in 0..calls {
        let start = Instant::now();
        caller.call().await;
        into.samples.push(start.elapsed());
    }
}

/// `concurrency` callers for `duration`: calls completed.
async fn concurrent(caller: &Caller, concurrency: u64, duration: Duration, into: &mut Measured) {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (caller, done) = (caller.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    caller.call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a caller finished");
    }
    into.calls += done.load(Ordering::Relaxed);
    into.busy += start.elapsed();
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (calls, seconds, concurrency) =
            (setting("CIQ_BENCH_CALLS", 3000), setting("CIQ_BENCH_SECONDS", 5), setting("CIQ_BENCH_CONCURRENCY", 32));
        let unlimited = |config: &mut complianceiq_kit::config::PlatformConfig| {
            config.gateway.client_per_minute = u32::MAX;
            config.gateway.tenant_per_minute = u32::MAX;
        };
        let platform = TestPlatform::start_with(Backend::Embedded, unlimited).await;
        let behind_sidecar = TestPlatform::start_with(Backend::Embedded, |config| {
            unlimited(config);
            config.mesh.mode = MeshMode::Sidecar;
        })
        .await;
        let tenant = platform.tenant("Bench").await;
        let sidecar_tenant = behind_sidecar.tenant("Bench").await;
        let connect = |module: &'static str| platform.channel(module);
        complianceiq_kit::crypto::install_tls_crypto_provider();
        let rest_url = format!("http://{}/api/v1/organizations/{}", platform.address("gateway"), tenant.id());
        let plain = Channel::from_shared(format!("http://{}", behind_sidecar.address("organization")))
            .expect("an address")
            .connect_lazy();
        let forwarded_identity = "By=spiffe://cluster.local/ns/complianceiq/sa/organization-service;\
                                  URI=spiffe://cluster.local/ns/complianceiq/sa/gateway-service"
            .parse()
            .expect("a header value");
        let on_main = |path| Caller { path, organization: tenant.id().to_string(), token: tenant.token().to_string() };
        let callers = [
            (
                "gRPC, direct to the organization module (mutual TLS)",
                on_main(Path::Grpc(OrganizationServiceClient::new(connect("organization").await))),
            ),
            (
                "gRPC, direct to the organization module (behind a sidecar: plain HTTP/2)",
                Caller {
                    path: Path::Sidecar(OrganizationServiceClient::new(plain), forwarded_identity),
                    organization: sidecar_tenant.id().to_string(),
                    token: sidecar_tenant.token().to_string(),
                },
            ),
            ("gRPC through the gateway", on_main(Path::Grpc(OrganizationServiceClient::new(connect("gateway").await)))),
            (
                "REST/JSON through the gateway (HTTP/1.1 keep-alive)",
                on_main(Path::Rest(reqwest::Client::new(), rest_url)),
            ),
        ];

        println!(
            "GetOrganization, {calls} sequential calls per path; throughput over {seconds} s with {concurrency} \
             in flight; paths take turns in {ROUNDS} rounds\n"
        );
        println!("| path | mean µs | p50 µs | p99 µs | calls/s | vs direct gRPC |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        let mut measured: Vec<Measured> = callers.iter().map(|_| Measured::default()).collect();
        for (_, caller) in &callers {
            for _ in 0..calls / 10 {
                caller.call().await; // warm connections, pools and caches
            }
        }
        for _ in 0..ROUNDS {
            for ((_, caller), into) in callers.iter().zip(&mut measured) {
                sequential(caller, calls / ROUNDS, into).await;
                concurrent(caller, concurrency, Duration::from_secs(seconds) / ROUNDS as u32, into).await;
            }
        }
        let (direct_p50, direct_rate) = {
            let direct = &mut measured[0];
            direct.samples.sort();
            (direct.at(0.5), direct.rate())
        };
        for (index, ((name, _), path)) in callers.iter().zip(&mut measured).enumerate() {
            path.samples.sort();
            let comparison = if index == 0 {
                "—".to_string()
            } else {
                format!(
                    "{:+.0} µs p50, {:.2}× throughput",
                    (path.at(0.5).as_secs_f64() - direct_p50.as_secs_f64()) * 1e6,
                    path.rate() / direct_rate
                )
            };
            println!(
                "| {name} | {} | {} | {} | {:.0} | {comparison} |",
                micros(path.mean()),
                micros(path.at(0.5)),
                micros(path.at(0.99)),
                path.rate()
            );
        }
        platform.stop().await;
        behind_sidecar.stop().await;
    });
}
