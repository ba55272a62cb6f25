//! Heap profiling the way Go's runtime does it: the global allocator samples allocations, on
//! average one per `rate` bytes allocated (exponentially distributed intervals, so every byte
//! has the same chance), records the sampled allocation's stack with the same unwinder as the
//! CPU profiler, and keeps it until it is freed. A profile then reports, per stack, sampled
//! objects and bytes allocated so far and still in use, scaled back to estimates as Go does.
//!
//! Cost when not sampling: a thread-local subtraction per allocation and one relaxed atomic
//! load per free (a 64 Ki-slot counting filter of sampled addresses).

#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::reentry::{inside, unsampled};
use crate::unwind::{self, Stack};

/// Go's default: one sample per 512 KiB allocated on average.
pub const DEFAULT_RATE: usize = crate::DEFAULT_HEAP_RATE;
/// Distinct allocation stacks kept; beyond it, samples count under one "(other)" stack.
const MAX_STACKS: usize = 16 * 1024;

/// Bytes between samples on average; 0 turns sampling off.
static RATE: AtomicUsize = AtomicUsize::new(0);

pub fn set_rate(bytes: usize) {
    RATE.store(bytes, Ordering::Relaxed);
}

pub fn rate() -> usize {
    RATE.load(Ordering::Relaxed)
}

/// The global allocator: `A` with sampling.
pub struct Sampling<A>(pub A);

thread_local! {
    /// Bytes this thread may still allocate before its next sample (0: not drawn yet).
    static COUNTDOWN: Cell<isize> = const { Cell::new(0) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `A` with the same arguments; sampling only observes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Sampling<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { self.0.alloc(layout) };
        after_alloc(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        after_alloc(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        before_free(p);
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        let q = unsafe { self.0.realloc(p, layout, new_size) };
        if !q.is_null() {
            before_free(p);
            after_alloc(q, new_size);
        }
        q
    }
}

#[inline]
fn after_alloc(p: *mut u8, size: usize) {
    let rate = RATE.load(Ordering::Relaxed);
    if rate == 0 || p.is_null() {
        return;
    }
    let due = COUNTDOWN.with(|c| {
        let left = match c.get() {
            0 => next_interval(rate),
            n => n,
        } - size as isize;
        if left > 0 {
            c.set(left);
            false
        } else {
            c.set(next_interval(rate));
            true
        }
    });
    if due && !inside() {
        record(p as usize, size);
    }
}

#[inline]
fn before_free(p: *mut u8) {
    if FILTER[slot(p as usize)].load(Ordering::Relaxed) != 0 && !inside() {
        forget(p as usize);
    }
}

/// An exponentially distributed interval with mean `rate` (Go's fastexprand).
fn next_interval(rate: usize) -> isize {
    let mut x = RNG.get();
    if x == 0 {
        // Seed per thread from the thread-local's own address and the clock.
        let mut here = 0u8;
        x = ((&raw mut here) as u64 ^ clock_nanos()) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    RNG.set(x);
    let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    ((-u.ln() * rate as f64) as isize).max(1)
}

fn clock_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain syscall with a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) ^ ts.tv_nsec as u64
}

/// Counting filter of sampled addresses: a free looks here before taking the lock.
static FILTER: [AtomicU8; 1 << 16] = [const { AtomicU8::new(0) }; 1 << 16];

fn slot(addr: usize) -> usize {
    ((addr as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize
}

#[derive(Default)]
struct Sampled {
    /// Distinct stacks and their counters.
    stacks: Vec<Record>,
    index: HashMap<Box<[u64]>, u32>,
    /// Sampled allocations still live: address → (stack, size).
    live: HashMap<usize, (u32, usize)>,
}

/// Per stack: sampled objects and bytes, allocated so far and still in use.
#[derive(Clone, Default)]
pub struct Record {
    pub stack: Box<[u64]>,
    pub alloc_objects: u64,
    pub alloc_bytes: u64,
    pub inuse_objects: u64,
    pub inuse_bytes: u64,
}

static SAMPLED: Mutex<Option<Sampled>> = Mutex::new(None);

#[inline(never)]
fn record(addr: usize, size: usize) {
    unsampled(|| {
        let mut stack = Stack::empty();
        // The first sample builds the unwinder (its own allocations are not sampled: reentry).
        // The sampler's and the allocator's own frames are trimmed when a profile is built.
        if unwind::init().is_err() || unwind::here(1, &mut stack).is_none() {
            stack.len = 0;
        }
        let mut guard = SAMPLED.lock().unwrap_or_else(|p| p.into_inner());
        let sampled = guard.get_or_insert_with(Sampled::default);
        let frames = stack.as_slice();
        let id = match sampled.index.get(frames) {
            Some(&id) => id,
            None if sampled.stacks.len() < MAX_STACKS => {
                let id = sampled.stacks.len() as u32;
                sampled.stacks.push(Record {
                    stack: frames.into(),
                    ..Record::default()
                });
                sampled.index.insert(frames.into(), id);
                id
            }
            // Too many distinct stacks: count the rest under the first one recorded.
            None => 0,
        };
        let r = &mut sampled.stacks[id as usize];
        r.alloc_objects += 1;
        r.alloc_bytes += size as u64;
        r.inuse_objects += 1;
        r.inuse_bytes += size as u64;
        if let Some((old_id, old_size)) = sampled.live.insert(addr, (id, size)) {
            // The allocator reused an address whose free we missed: retire the old record.
            retire(&mut sampled.stacks, old_id, old_size);
        } else {
            let f = &FILTER[slot(addr)];
            let _ = f.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        }
    });
}

fn forget(addr: usize) {
    unsampled(|| {
        let mut guard = SAMPLED.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sampled) = guard.as_mut() else {
            return;
        };
        if let Some((id, size)) = sampled.live.remove(&addr) {
            retire(&mut sampled.stacks, id, size);
            let f = &FILTER[slot(addr)];
            // A saturated counter stays saturated (only costs extra lookups).
            let _ = f.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n != u8::MAX).then(|| n.saturating_sub(1))
            });
        }
    });
}

fn retire(stacks: &mut [Record], id: u32, size: usize) {
    let r = &mut stacks[id as usize];
    r.inuse_objects = r.inuse_objects.saturating_sub(1);
    r.inuse_bytes = r.inuse_bytes.saturating_sub(size as u64);
}

/// A copy of every record (taken under the lock, rendered outside it).
pub fn snapshot() -> Vec<Record> {
    unsampled(|| {
        let guard = SAMPLED.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|s| s.stacks.clone()).unwrap_or_default()
    })
}

/// Sampled allocations still live (the count the index page shows).
pub fn live_samples() -> usize {
    unsampled(|| {
        let guard = SAMPLED.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |s| s.live.len())
    })
}

/// Distinct allocation stacks sampled so far (the count the index shows for allocs).
pub fn stack_count() -> usize {
    unsampled(|| {
        let guard = SAMPLED.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |s| s.stacks.len())
    })
}

/// The stack from the allocating code outwards: without the sampler's and the global
/// allocator's own frames (Go's heap profiles likewise start above malloc).
pub fn caller_stack(stack: &[u64]) -> &[u64] {
    const OURS: &str = concat!(env!("CARGO_CRATE_NAME"), "::");
    const SAMPLING: &str = concat!("<", env!("CARGO_CRATE_NAME"), "::heap::Sampling");
    let internal = |name: &str| {
        name.starts_with(OURS)
            || name.starts_with(SAMPLING)
            || name.starts_with("__rust_")
            || name.starts_with("__rustc::")
            || name.starts_with("__rdl_")
            || name.starts_with("__rg_")
    };
    &stack[crate::pprof::leading_frames(stack, internal)..]
}

/// Go's scaleHeapSample: turns sampled (objects, bytes) into estimates of the real totals.
pub fn scale(objects: u64, bytes: u64, rate: usize) -> (u64, u64) {
    if objects == 0 || bytes == 0 || rate <= 1 {
        return (objects, bytes);
    }
    let avg = bytes as f64 / objects as f64;
    let s = 1.0 / (1.0 - (-avg / rate as f64).exp());
    ((objects as f64 * s) as u64, (bytes as f64 * s) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_go() {
        // One sampled 512 KiB object at rate 512 KiB: Go reports 1/(1-e^-1) ≈ 1.58 objects.
        let (o, b) = scale(1, 512 * 1024, 512 * 1024);
        assert_eq!(o, 1);
        assert_eq!(b, (512.0 * 1024.0 / (1.0 - (-1.0f64).exp())) as u64);
        assert_eq!(scale(0, 0, 512 * 1024), (0, 0));
        assert_eq!(scale(3, 30, 1), (3, 30));
    }

    #[test]
    fn intervals_average_the_rate() {
        let n = 20_000;
        let sum: f64 = (0..n).map(|_| next_interval(4096) as f64).sum();
        let mean = sum / n as f64;
        assert!((3500.0..4700.0).contains(&mean), "mean {mean}");
    }
}
