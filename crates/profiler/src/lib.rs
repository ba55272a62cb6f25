//! In-process sampling profilers with Go's /debug/pprof output, for a service that runs as a
//! static binary in a read-only image as any uid: nothing touches the filesystem but reads
//! of /proc/self.
//!
//! - [`cpu`]: a SIGPROF sampler; several capture windows may overlap.
//! - [`heap`]: a sampling global allocator (Go's rate and scaling).
//! - [`pprof`]: profile.proto's messages and a builder that writes real addresses, a mapping
//!   with the executable's GNU build id, and function names from its symbol table.
//!
//! Why not pprof-rs: its sampler keeps samples in a named temporary file (no /tmp in the
//! image: the CPU profile failed there), writes profiles without addresses or a mapping (so
//! no tool could symbolize them against the debug file), takes the aarch64 leaf frame from the
//! link register, and has no heap profiler. This crate replaces its sampler with one on the
//! same unwinder (framehop) and writes the pprof format itself.
//!
//! Inside, one job per module: `exe` (this executable's mappings, build id, sections and
//! symbols), `unwind` (stack walks, safe in a signal handler), `stacks` (the signal-safe
//! table a CPU window fills), `reentry` (the flag that keeps the profiler's own allocations
//! unsampled). Every `unsafe` of the service lives in this crate, each with its SAFETY note.

pub mod cpu;
mod error;
mod exe;
pub mod heap;
pub mod pprof;
mod reentry;
mod stacks;
mod unwind;

pub use error::Error;

/// In this crate's own tests, the heap sampler is the global allocator (as in a service).
#[cfg(test)]
#[global_allocator]
static ALLOC: heap::Sampling<std::alloc::System> = heap::Sampling(std::alloc::System);
