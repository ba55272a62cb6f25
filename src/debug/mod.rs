//! `/debug/pprof/*`: Go's net/http/pprof surface. This file routes; each endpoint family has
//! its own module. Every endpoint works with no writable filesystem (profiles are built in
//! memory), and at most one capture (CPU profile, flame graph, trace) runs at a time.
//!
//! Helpers here return `Result<T, Response>`: the error is the HTTP answer itself, built once
//! per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod cpu;
mod heap;
mod index;
mod params;
mod process;
mod symbol;
mod tasks;
mod trace;
pub mod trace_recorder;

use std::sync::Arc;

use crate::request_body::RequestBody;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::responses::{self, Body};
use trace_recorder::TraceRecorder;

/// Settings of the debug endpoints, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest capture a client may ask for.
    pub max_seconds: u64,
    /// Largest trace capture, in bytes of JSON.
    pub max_trace_bytes: usize,
}

pub struct Debug {
    limits: Limits,
    capture: Arc<Mutex<()>>,
    recorder: TraceRecorder,
}

/// The one capture slot (CPU profile, flame graph or trace), held for the capture's length.
type CaptureSlot = OwnedMutexGuard<()>;

impl Debug {
    pub fn new(limits: Limits, recorder: TraceRecorder) -> Self {
        Self {
            limits,
            capture: Arc::new(Mutex::new(())),
            recorder,
        }
    }

    /// Routes a request whose path is `/debug/pprof` or starts with `/debug/pprof/`.
    pub async fn handle(&self, req: Request<RequestBody>) -> Response<Body> {
        let name = req
            .uri()
            .path()
            .trim_start_matches("/debug/pprof")
            .to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        match (name.as_str(), get) {
            ("", _) => responses::redirect("/debug/pprof/"),
            ("/", true) => index::page(&req),
            ("/profile", true) => cpu::profile(self, &query).await,
            ("/flamegraph", true) => cpu::flamegraph(self, &query).await,
            ("/heap", true) => heap::profile(self, heap::Kind::Heap, &query).await,
            ("/allocs", true) => heap::profile(self, heap::Kind::Allocs, &query).await,
            ("/goroutine", true) => tasks::goroutine(&query).await,
            ("/threadcreate", true) => process::threadcreate(&query).await,
            ("/cmdline", true) => process::cmdline(),
            ("/block" | "/mutex", true) => index::unavailable(&name[1..]),
            ("/trace", true) => trace::capture(self, &query).await,
            ("/symbol", _) => symbol::handle(req).await,
            (other, false) if index::is_endpoint(&other[1..]) => {
                responses::method_not_allowed("GET, HEAD")
            }
            _ => responses::not_found(),
        }
    }

    /// Takes the capture slot, or answers 409 when another capture runs.
    fn capture_slot(&self) -> Result<CaptureSlot, Response<Body>> {
        self.capture.clone().try_lock_owned().map_err(|_| {
            responses::error(
                StatusCode::CONFLICT,
                "another profile, flame graph or trace capture is running; only one runs at a time, retry when it ends",
            )
        })
    }
}

/// CPU-heavy rendering (symbolization, compression) goes to the blocking pool so it never
/// stalls the connections sharing a worker.
async fn render<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Response<Body>> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal_error("could not render the profile", &e)),
        Err(e) => Err(internal_error("the rendering task failed", &e)),
    }
}

fn internal_error(what: &str, err: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %err, "{what}");
    responses::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{what}: {err}"))
}
