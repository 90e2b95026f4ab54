//! The ComplianceIQ contracts: every service's messages, tonic clients and servers, the
//! event envelope, and the FileDescriptorSet they were generated from.
//!
//! RPCs that no service implements yet answer `UNIMPLEMENTED` with a message naming the
//! RPC (see build.rs), rather than a silent default.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

include!(concat!(env!("OUT_DIR"), "/_includes.rs"));

/// The encoded `google.protobuf.FileDescriptorSet` of every contract and its imports,
/// custom options (`google.api.http`, `google.api.field_behavior`) preserved. Server
/// reflection and the REST gateway are built from it.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

mod events_ext;
pub use events_ext::{EventPayloadExt, EventType};

mod access;
pub use access::{PERMISSIONS, RPC_ACCESS, RpcAccess, rpc_access};

#[cfg(test)]
mod contract_tests;
