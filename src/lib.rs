//! httpserver: health and readiness endpoints, Go's /debug/pprof surface, graceful shutdown.
//! The binary (main.rs) parses the command line, sets up telemetry and binds; `run` does the
//! rest, so tests can start a server in-process and use the same types (e.g. the pprof format).
//!
//! Where things are: `config` (flags and environment), `server` (`run`), `accept` (accept
//! loops and the connection limit), `connection` (one connection's lifecycle and deadlines),
//! `routes` (routing), `debug` (each /debug/pprof endpoint; the samplers and pprof encoding are
//! the `profiler` crate, crates/profiler), `lifecycle` (readiness, drain), `shutdown` (signals and the drain
//! sequence), `tasks` (the registry /debug/pprof/goroutine reads), `fd_limit` (open files), `telemetry` (logs, traces).

// What the binary and the tests use is `pub`; the rest is the crate's own, so the compiler
// finds what nothing uses. On macOS and Windows the /debug/pprof endpoints answer 501 (the
// profiler crate is Linux only), so the helpers only they use are unused there.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

mod accept;
pub mod config;
mod connection;
mod debug;
mod error;
pub mod fd_limit;
pub mod healthcheck;
mod lifecycle;
pub mod listener;
mod request_body;
mod responses;
mod routes;
mod server;
mod shutdown;
mod tasks;
pub mod telemetry;

pub use error::Error;
pub use server::{Config, Listeners, run};
pub use shutdown::{Outcome, Signals, StopRequests};

/// In this crate's own unit tests, the heap sampler is the global allocator (as in the binary).
#[cfg(all(test, target_os = "linux"))]
#[global_allocator]
static ALLOC: profiler::heap::Sampling<std::alloc::System> =
    profiler::heap::Sampling(std::alloc::System);
