//! `/debug/pprof/block` and `/debug/pprof/mutex`: valid profiles with Go's sample types and
//! no samples. Rust has no runtime that records where threads block or which locks contend;
//! Go's own answer is the same empty profile until a program sets its block or mutex rate, so
//! continuous profilers (Parca, Grafana Alloy) that scrape these by default get a 200 with a
//! body they can read instead of a failed scrape on every round.

#![cfg(target_os = "linux")]

use std::time::Duration;

use hyper::StatusCode;

use super::{Reply, params};
use crate::responses;
use profiler::pprof::Builder;

/// Why the profiles are empty, in the profile itself and on the index.
pub const WHY_EMPTY: &str = "always empty: Rust has no runtime that records blocking or lock contention (Go's is empty too until a program sets its rate)";

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Block,
    Mutex,
}

pub async fn profile(kind: Kind, query: &str, max_seconds: u64) -> Reply {
    let (level, seconds) = params::snapshot(query, 1, max_seconds)?;
    if level > 0 {
        // Go's legacy text header for contention profiles, with nothing under it.
        let mut text = String::from("--- contention:\ncycles/second=1000000000\n");
        if matches!(kind, Kind::Mutex) {
            text.push_str("sampling period=1\n");
        }
        text.push_str(&format!("# {WHY_EMPTY}\n"));
        return Ok(responses::text(StatusCode::OK, text));
    }
    // A delta over N seconds of an empty profile is empty, but it still takes N seconds, as
    // the client asked (and as Go's does).
    if let Some(s) = seconds {
        tokio::time::sleep(Duration::from_secs(s)).await;
    }
    let mut b = Builder::new(
        &[("contentions", "count"), ("delay", "nanoseconds")],
        ("contentions", "count", 1),
    );
    b.comment(WHY_EMPTY);
    if let Some(s) = seconds {
        b.duration(Duration::from_secs(s));
    }
    let name = match kind {
        Kind::Block => "block",
        Kind::Mutex => "mutex",
    };
    Ok(params::protobuf(name, b.build().to_gzip()))
}
