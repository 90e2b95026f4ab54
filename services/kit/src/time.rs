//! Time as stored: microseconds since the Unix epoch, UTC, in a BIGINT column. One
//! representation for SQLite and PostgreSQL keeps one query code path and exact ordering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> Micros {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_micros() as i64).unwrap_or(0)
}

/// `micros` plus a duration.
pub fn after(micros: Micros, duration: Duration) -> Micros {
    micros.saturating_add(duration.as_micros() as i64)
}

/// A stored time as a protobuf Timestamp.
pub fn to_timestamp(micros: Micros) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// An optional stored time (nullable column) as an optional Timestamp.
pub fn to_optional_timestamp(micros: Option<Micros>) -> Option<prost_types::Timestamp> {
    micros.map(to_timestamp)
}

/// A protobuf Timestamp as stored time (sub-microsecond precision is dropped).
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Micros {
    timestamp.seconds.saturating_mul(1_000_000).saturating_add(i64::from(timestamp.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for micros in [0, 1, 1_700_000_000_123_456, -1, -1_500_000] {
            assert_eq!(from_timestamp(&to_timestamp(micros)), micros);
            let timestamp = to_timestamp(micros);
            assert!((0..1_000_000_000).contains(&timestamp.nanos));
        }
    }
}
