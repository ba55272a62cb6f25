//! `/debug/pprof/trace?seconds=N`: the tracing spans and events (every request span at least)
//! of N seconds as Chrome Trace Event JSON, for Perfetto or chrome://tracing. Go serves its
//! runtime's execution trace here; this is the closest Rust has. Bounded by
//! `--max-trace-bytes`: beyond it events are counted as dropped, not kept. One capture at a time,
//! unlike CPU profiles: every event is written once into the one recording's buffer (up to
//! 64 MiB by default), and overlapping captures would each need their own copy; a second one
//! gets 503 with Retry-After.

use std::time::Duration;

use hyper::Response;

use super::{Debug, params};
use crate::responses::{self, Body};

pub async fn capture(debug: &Debug, query: &str) -> Response<Body> {
    let seconds = match params::seconds(query, debug.limits.max_seconds) {
        Ok(s) => s,
        Err(m) => return params::bad_request(&m),
    };
    let _slot = match debug.trace_slot.take(Duration::from_secs(seconds)) {
        Ok(slot) => slot,
        Err(resp) => return resp,
    };
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
    responses::attachment(
        done.json,
        "application/json",
        "attachment; filename=\"trace.json\"",
    )
}
