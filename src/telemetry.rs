//! Logging setup: glog-style `-v N` mapped onto tracing levels, text or JSON lines on stderr,
//! plus the trace recorder behind `/debug/pprof/trace`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LogFormat;
use crate::debug::trace_recorder::TraceRecorder;

/// glog's -v N onto tracing filter directives. Like glog's V-levels, -v raises this program's
/// verbosity first: 0 → info; 1–2 → debug here (access log), info for libraries;
/// 3 → trace here, debug for libraries (hyper, h2); 4+ → trace everywhere.
pub fn directives_for_verbosity(v: u8) -> &'static str {
    match v {
        0 => "info",
        1 | 2 => "info,httpserver=debug",
        3 => "debug,httpserver=trace",
        _ => "trace",
    }
}

/// Whether the log filter may want debug-level events (set once by `init`).
static DEBUG_LOGS: AtomicBool = AtomicBool::new(false);

/// Whether a request should be logged and traced: one load per request in the common case
/// (no debug log, no trace capture); the subscriber's own check only when either may want it.
pub fn access_log_enabled() -> bool {
    (DEBUG_LOGS.load(Ordering::Relaxed) || crate::debug::trace_recorder::capturing())
        && tracing::enabled!(tracing::Level::DEBUG)
}

/// Installs the global subscriber and returns the recorder used by the trace endpoint.
pub fn init(verbosity: u8, format: LogFormat) -> Result<TraceRecorder, crate::Error> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| crate::Error::LogFilter {
                directives: directives.clone(),
                reason: e.to_string(),
            })?,
        _ => EnvFilter::new(directives_for_verbosity(verbosity)),
    };
    let debug = filter
        .max_level_hint()
        .is_none_or(|max| max >= tracing::Level::DEBUG);
    DEBUG_LOGS.store(debug, Ordering::Relaxed);
    let ansi = std::io::stderr().is_terminal();
    let logs = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let recorder = TraceRecorder::default();
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(recorder.clone().with_filter(recorder.clone()))
        .try_init()
        .map_err(|e| crate::Error::LogSubscriber(e.to_string()))?;
    Ok(recorder)
}
