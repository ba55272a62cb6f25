//! `/debug/pprof/*`: Go's net/http/pprof surface. This file routes; each endpoint family has
//! its own module. Every endpoint works with no writable filesystem (profiles are built in
//! memory). CPU captures (profile, flame graph) overlap up to `--max-cpu-profiles`, each
//! with the samples of its own window; trace captures run one at a time (see `trace`).
//!
//! Helpers here return `Result<T, Response>`: the error is the HTTP answer itself, built once
//! per request, so its size does not matter.
#![allow(clippy::result_large_err)]
// The endpoints need the profiler crate, which is Linux only (the images, and the hosts the
// tests run on); elsewhere every /debug/pprof path answers 501 with the reason.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports))]

// contention, cpu, goroutine, heap, index, process and symbol are Linux only
// (`#![cfg(target_os = "linux")]` at their tops).
mod contention;
mod cpu;
mod goroutine;
mod heap;
mod index;
mod params;
mod process;
mod slots;
mod symbol;
mod trace;
pub mod trace_recorder;

use crate::request_body::RequestBody;
use hyper::{Method, Request, Response, StatusCode};

use crate::responses::{self, Body};
use trace_recorder::TraceRecorder;

/// Settings of the debug endpoints, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest capture a client may ask for.
    pub max_seconds: u64,
    /// Largest trace capture, in bytes of JSON.
    pub max_trace_bytes: usize,
    /// CPU captures (profile, flame graph) that may run at once.
    pub max_cpu_profiles: usize,
}

pub struct Debug {
    limits: Limits,
    cpu_slots: slots::Slots,
    trace_slot: slots::Slots,
    recorder: TraceRecorder,
}

impl Debug {
    pub fn new(limits: Limits, recorder: TraceRecorder) -> Self {
        Self {
            limits,
            cpu_slots: slots::Slots::new("CPU", "--max-cpu-profiles", limits.max_cpu_profiles),
            trace_slot: slots::Slots::new("trace", "one at a time", 1),
            recorder,
        }
    }

    /// Where the profilers do not build (macOS, Windows), every debug path says so.
    #[cfg(not(target_os = "linux"))]
    pub async fn handle(&self, _req: Request<RequestBody>) -> Response<Body> {
        responses::error(
            StatusCode::NOT_IMPLEMENTED,
            "/debug/pprof needs Linux (the profilers read /proc and SIGPROF's machine context); \
             run the service in its image or on a Linux host",
        )
    }

    /// Routes a request whose path is `/debug/pprof` or starts with `/debug/pprof/`.
    #[cfg(target_os = "linux")]
    pub async fn handle(&self, req: Request<RequestBody>) -> Response<Body> {
        let name = req
            .uri()
            .path()
            .trim_start_matches("/debug/pprof")
            .to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        let reply: Reply = match (name.as_str(), get) {
            ("", _) => Ok(responses::redirect("/debug/pprof/")),
            ("/", true) => Ok(index::page(self, &req)),
            ("/profile", true) => cpu::profile(self, &query).await,
            ("/flamegraph", true) => cpu::flamegraph(self, &query).await,
            ("/heap", true) => heap::profile(self, heap::Kind::Heap, &query).await,
            ("/allocs", true) => heap::profile(self, heap::Kind::Allocs, &query).await,
            ("/goroutine", true) => goroutine::goroutine(&query, self.limits.max_seconds).await,
            ("/threadcreate", true) => process::threadcreate(&query, self.limits.max_seconds).await,
            ("/cmdline", true) => Ok(process::cmdline()),
            ("/block", true) => {
                contention::profile(contention::Kind::Block, &query, self.limits.max_seconds).await
            }
            ("/mutex", true) => {
                contention::profile(contention::Kind::Mutex, &query, self.limits.max_seconds).await
            }
            ("/trace", true) => trace::capture(self, &query).await,
            ("/symbol", _) => Ok(symbol::handle(req).await),
            (other, false) if other == "/" || index::is_endpoint(&other[1..]) => {
                Ok(responses::method_not_allowed("GET, HEAD"))
            }
            _ => Ok(responses::not_found()),
        };
        reply.unwrap_or_else(|refusal| refusal)
    }
}

/// An endpoint's answer; an `Err` is itself the response to send (a 400 for a bad parameter,
/// a 503 when every capture slot is taken, a 500 when rendering failed), so endpoints use `?`
/// and `handle` turns both into the response in one place.
pub type Reply = Result<Response<Body>, Response<Body>>;

/// Profiles rendered at once; more wait their turn. Enough for two scrapers and a person,
/// and a flood of profile requests then costs at most this many threads' CPU.
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// CPU-heavy rendering (symbolization, compression) goes to the blocking pool so it never
/// stalls the connections sharing a worker.
async fn render<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Response<Body>> {
    // The semaphore is never closed, so acquiring only waits.
    let _turn = RENDERS.acquire().await;
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
