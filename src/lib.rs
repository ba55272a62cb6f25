//! httpserver: health and readiness endpoints, Go's /debug/pprof surface, graceful shutdown.
//! The binary (main.rs) parses the command line, sets up telemetry and binds; `run` does the
//! rest, so tests can start a server in-process and use the same types (e.g. the pprof format).
//!
//! Where things are: `config` (flags and environment), `server` (`run`), `accept` (accept
//! loops and the connection limit), `connection` (one connection's lifecycle and deadlines),
//! `routes` (routing), `debug` (each /debug/pprof endpoint; the samplers and pprof encoding are
//! the `profiler` crate, crates/profiler), `lifecycle` (readiness, drain), `shutdown` (signals and the drain
//! sequence), `tasks` (the registry /debug/pprof/goroutine reads), `fd_limit` (open files), `telemetry` (logs, traces).

mod accept;
pub mod config;
mod connection;
pub mod debug;
pub mod fd_limit;
pub mod healthcheck;
pub mod lifecycle;
pub mod listener;
pub mod request_body;
pub mod responses;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;

pub use server::{Config, Listeners, run};
pub use shutdown::{Outcome, StopRequests};

/// In this crate's own unit tests, the heap sampler is the global allocator (as in the binary).
#[cfg(test)]
#[global_allocator]
static ALLOC: profiler::heap::Sampling<std::alloc::System> =
    profiler::heap::Sampling(std::alloc::System);
