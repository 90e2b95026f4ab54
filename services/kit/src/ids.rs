//! Strongly typed identifiers. Every id in the platform is a UUID (v7 for new ids, so
//! they sort by creation time) written in its canonical hyphenated lowercase form.

use std::fmt;

use crate::error::{ApiError, FieldViolations};

/// Declares a UUID-backed id type that parses with a field violation on bad input.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self($crate::uuid::Uuid::now_v7())
            }

            /// Parses a request field; names the field in the error.
            pub fn parse_field(field: &str, value: &str) -> Result<Self, $crate::error::ApiError> {
                $crate::ids::parse_uuid(field, value).map(Self)
            }

            /// Wraps an id read back from storage, which was written by this platform.
            pub fn from_stored(value: &str) -> Result<Self, $crate::error::ApiError> {
                $crate::uuid::Uuid::parse_str(value).map(Self).map_err(|error| {
                    $crate::error::ApiError::internal(format!(
                        "stored {} is not a UUID: {error}",
                        stringify!($name)
                    ))
                })
            }

            /// From a UUID already validated.
            pub fn from_uuid(uuid: $crate::uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub fn uuid(&self) -> $crate::uuid::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

typed_id!(
    /// The tenant: every tenant-owned row carries one.
    OrganizationId
);
impl OrganizationId {
    /// No tenant: the platform's own audit trail (mesh refusals, which come before any
    /// identity is known), kept apart from every organization's. No one is its member, so no
    /// tenant token reaches it.
    pub const PLATFORM: Self = Self(uuid::Uuid::nil());
}

typed_id!(
    /// A person, shared by the auth and user services.
    UserId
);
typed_id!(
    /// An event in the outbox and on the bus.
    EventId
);

/// Parses a UUID request field. Accepts the canonical form only (36 characters), so one
/// resource never has two spellings.
pub fn parse_uuid(field: &str, value: &str) -> Result<uuid::Uuid, ApiError> {
    let mut violations = FieldViolations::default();
    if value.is_empty() {
        violations.add(field, "REQUIRED", format!("{field} is required"));
    } else if value.len() != 36 {
        violations.add(
            field,
            "INVALID_FORMAT",
            format!("{field} must be a UUID like 0190a6e4-7b6c-7cc1-9e4a-1f5b8a2d3c4e"),
        );
    } else if let Ok(uuid) = uuid::Uuid::parse_str(value) {
        return Ok(uuid);
    } else {
        violations.add(
            field,
            "INVALID_FORMAT",
            format!("{field} must be a UUID like 0190a6e4-7b6c-7cc1-9e4a-1f5b8a2d3c4e"),
        );
    }
    Err(violations.into_error())
}

/// A module's name as it appears in configuration, ports and identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleName(pub &'static str);

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_through_their_text_form() {
        let id = OrganizationId::generate();
        let parsed = OrganizationId::parse_field("org_id", &id.to_string()).unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn malformed_ids_name_the_field() {
        for bad in ["", "nope", "0190a6e47b6c7cc19e4a1f5b8a2d3c4e", "0190a6e4-7b6c-7cc1-9e4a-1f5b8a2d3c4g"] {
            let error = OrganizationId::parse_field("org_id", bad).unwrap_err();
            let violations = error.field_violations();
            assert_eq!(violations.len(), 1, "{bad:?}");
            assert_eq!(violations[0].field, "org_id");
        }
    }
}
