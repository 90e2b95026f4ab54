//! The ComplianceIQ kit: everything a module needs that is not about any one service —
//! configuration, logging, databases with tenant scoping and migrations, the outbox and
//! event bus, the cache, errors as `tonic::Status`, and the module runtime. It knows no
//! service; services know it.

pub mod address;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod document;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod mesh;
pub mod metrics;
pub mod module;
pub mod objects;
pub mod ops;
pub mod outbox;
pub mod paging;
pub mod retention;
pub mod roles;
pub mod runtime;
pub mod secrets;
mod server;
pub mod subscription;
pub mod telemetry;
pub mod time;
pub mod validate;

pub use error::{ApiError, FieldViolations};
pub use ids::{ModuleName, OrganizationId, UserId};
pub use module::{Module, ModuleContext, ModuleParts};

#[doc(hidden)]
pub use uuid;
