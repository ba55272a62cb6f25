//! The per-thread "inside the profiler" flag. The heap sampler is the global allocator, so
//! anything the profiler itself allocates (its bookkeeping, the unwinder's one-time setup)
//! would be sampled again and recurse; code run under `unsampled` is not sampled. Its own
//! module so that the unwinder and the heap sampler both use it without using each other.

#![cfg(target_os = "linux")]

use std::cell::Cell;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's allocations unsampled.
pub(crate) fn unsampled<T>(f: impl FnOnce() -> T) -> T {
    let was = INSIDE.replace(true);
    let out = f();
    INSIDE.set(was);
    out
}

/// True while this thread runs profiler code (its allocations are not to be sampled).
#[inline]
pub(crate) fn inside() -> bool {
    INSIDE.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_restore_the_outer_state() {
        assert!(!inside());
        unsampled(|| {
            assert!(inside());
            unsampled(|| assert!(inside()));
            assert!(inside(), "the inner section must not clear the outer one");
        });
        assert!(!inside());
    }
}
