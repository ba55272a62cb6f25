//! `/debug/pprof/trace?seconds=N`: the tracing spans and events (every request span at least)
//! of N seconds as Chrome Trace Event JSON, for Perfetto or chrome://tracing. Go serves its
//! runtime's execution trace here; this is the closest Rust has. Bounded by
//! `--max-trace-bytes`: beyond it events are counted as dropped, not kept. One capture at a time,
//! unlike CPU profiles: every event is written once into the one recording's buffer (up to
//! 64 MiB by default), and overlapping captures would each need their own copy; a second one
//! gets 503 with Retry-After.

use std::time::Duration;

use super::{Debug, Reply, params};
use crate::responses;

pub async fn capture(debug: &Debug, query: &str) -> Reply {
    let seconds = params::capture_seconds(query, debug.limits.max_seconds)?;
    let _slot = debug.trace_slot.take(Duration::from_secs(seconds))?;
    let capture = debug.recorder.start(debug.limits.max_trace_bytes);
    tracing::info!(seconds, "trace capture started");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let done = capture.finish();
    tracing::info!(
        events = done.events,
        dropped_events = done.dropped,
        bytes = done.json.len(),
        "trace capture finished"
    );
    Ok(responses::attachment(
        done.json,
        "application/json",
        "attachment; filename=\"trace.json\"",
    ))
}
