//! Logging: readable in a terminal, one JSON object per line in production.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetryConfig};

/// Installs the global subscriber. A second call (tests booting several platforms in one
/// process) keeps the first.
pub fn init(config: &TelemetryConfig, default_format: LogFormat) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|error| {
        eprintln!("invalid log filter {:?} ({error}); using \"info\"", config.filter);
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let _ = match config.format.unwrap_or(default_format) {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
