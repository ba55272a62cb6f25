//! Sampling profilers behind /debug/pprof, built for where the service runs: a static binary
//! in a read-only image as any uid. Nothing touches the filesystem but reads of /proc/self.
//!
//! Why not pprof-rs: its sampler keeps samples in a named temporary file (no /tmp in the
//! image: the CPU profile failed there), writes profiles without addresses or a mapping (so
//! no tool could symbolize them against the debug file), takes the aarch64 leaf frame from the
//! link register, and has no heap profiler. These modules replace its sampler with one on the
//! same unwinder (framehop) and write the pprof format themselves.

pub mod cpu;
pub mod exe;
pub mod heap;
pub mod pprof;
pub mod stacks;
pub mod unwind;
