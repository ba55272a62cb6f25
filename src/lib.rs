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
// finds what nothing uses.
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
#[cfg(test)]
#[global_allocator]
static ALLOC: profiler::heap::Sampling<std::alloc::System> =
    profiler::heap::Sampling(std::alloc::System);
