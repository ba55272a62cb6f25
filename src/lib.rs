//! httpserver: health and readiness endpoints, Go's /debug/pprof surface, graceful shutdown.
//! The binary (main.rs) parses the command line, sets up telemetry and binds; everything else
//! lives here, so tests can use the same types (e.g. the pprof profile format).

pub mod config;
pub mod debug;
pub mod healthcheck;
pub mod listener;
pub mod profiler;
pub mod responses;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod telemetry;

/// In this crate's own unit tests, the heap sampler is the global allocator (as in the binary).
#[cfg(test)]
#[global_allocator]
static ALLOC: profiler::heap::Sampling<std::alloc::System> =
    profiler::heap::Sampling(std::alloc::System);
