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
//!
//! Linux only: it reads /proc/self and the machine context SIGPROF delivers. Elsewhere (a
//! contributor's Mac or Windows machine; the images are always Linux) the crate holds only
//! [`SUPPORTED`] and [`DEFAULT_HEAP_RATE`], so a service that uses it builds there and can say
//! why it has no profiles.

/// Whether this target has the profilers.
pub const SUPPORTED: bool = cfg!(target_os = "linux");

/// Go's heap sampling rate: on average one sample per this many bytes allocated.
pub const DEFAULT_HEAP_RATE: usize = 512 * 1024;

// Every module below is Linux only (`#![cfg(target_os = "linux")]` at its top).
pub mod cpu;
mod error;
mod exe;
pub mod heap;
pub mod pprof;
mod reentry;
mod stacks;
mod unwind;

#[cfg(target_os = "linux")]
pub use error::Error;

/// In this crate's own tests, the heap sampler is the global allocator (as in a service).
#[cfg(all(test, target_os = "linux"))]
#[global_allocator]
static ALLOC: heap::Sampling<std::alloc::System> = heap::Sampling(std::alloc::System);
