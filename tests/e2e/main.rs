//! End-to-end tests. Each platform test runs twice:
//!
//! - `<test>::embedded`: SQLite, in-process bus and cache, always;
//! - `<test>::servers`: PostgreSQL, Redis and NATS JetStream, which must be given as
//!   `CIQ_TEST_POSTGRES_URL`, `CIQ_TEST_REDIS_URL` and `CIQ_TEST_NATS_URL`. Such a test
//!   fails, naming what is missing, when they are not set or not reachable; `make test`
//!   runs the `servers` variants only when the variables are set, `.ci/run` always sets them.

// `[x.clone()]` reads better than `std::slice::from_ref(&x)` in an assertion.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod harness;
mod identity;
pub mod identity_provider;
mod people;

mod access;
mod analysis;
mod api_keys;
mod audit;
mod conformance;
mod dashboard;
mod demo;
mod distributed;
mod events;
mod gateway;
mod hardening;
mod insights;
mod instances;
mod kit_backends;
mod latency;
mod members;
mod mesh;
mod ml;
mod notifications;
pub mod observability;
mod organization;
mod postgres;
pub mod receiver;
mod reports;
mod sso;
mod staff;
mod stripe;
mod surface;
mod sync;
mod tokens;
mod users;
pub mod webhooks;
mod widgets;
