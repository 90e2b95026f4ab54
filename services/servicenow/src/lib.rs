//! ServiceNow for ComplianceIQ: the GRC tables it syncs ([`tables`]), encoded queries
//! ([`query`]), a Table API client ([`client`]) and a simulator of an instance ([`sim`]).
//! Nothing here knows the platform's services; the instance service drives the sync.

pub mod address;
pub mod client;
pub mod datetime;
pub mod query;
pub mod sim;
pub mod tables;

pub use address::NetworkAccess;
pub use client::{Client, ClientSettings, Credentials, Page, PageRequest, SnError, Upserted, Written};

/// Whether `value` has a sys_id's shape: 32 hexadecimal characters.
pub fn is_sys_id(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod client_tests;
