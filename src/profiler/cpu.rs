//! The CPU sampler: a SIGPROF interval timer on the process's CPU time (as Go's profiler
//! uses), a handler that walks the interrupted stack and counts it in a table allocated up
//! front. Nothing is written to the filesystem and nothing outlives the capture: the table is
//! freed when it ends, so repeated captures do not grow the process.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use super::stacks::StackTable;
use super::unwind::{self, Stack};

/// Distinct stacks kept per capture (about 0.5 KiB each).
const TABLE_SLOTS: usize = 2048;

/// The table the handler fills, null when no capture runs.
static TABLE: AtomicPtr<StackTable> = AtomicPtr::new(std::ptr::null_mut());
/// Held by the handler while it uses TABLE (and by `stop` to take it away).
static IN_HANDLER: AtomicBool = AtomicBool::new(false);
/// Signals that found the unwinder busy.
static BUSY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A finished capture.
pub struct CpuProfile {
    pub table: StackTable,
    pub period: Duration,
    pub duration: Duration,
    /// Samples lost because the table was full.
    pub dropped: u64,
    /// Samples lost because the unwinder was busy (a heap sample being walked).
    pub busy: u64,
}

/// A running capture; `stop` ends it, and so does dropping it (a client that went away), so
/// the timer never outlives the capture. Only one runs at a time (the caller serialises).
pub struct CpuSampler {
    started: Instant,
    period: Duration,
    running: bool,
}

impl CpuSampler {
    pub fn start(hz: u32) -> Result<Self, String> {
        unwind::init()?;
        let table = Box::into_raw(Box::new(StackTable::with_capacity(TABLE_SLOTS)));
        if TABLE
            .compare_exchange(
                std::ptr::null_mut(),
                table,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: never published.
            drop(unsafe { Box::from_raw(table) });
            return Err("a CPU capture is already running".into());
        }
        BUSY.store(0, Ordering::Relaxed);
        install_handler(on_sigprof as *const () as usize)?;
        let period = Duration::from_micros(1_000_000 / u64::from(hz.max(1)));
        set_timer(period)?;
        Ok(Self {
            started: Instant::now(),
            period,
            running: true,
        })
    }

    pub fn stop(mut self) -> CpuProfile {
        let table = self.finish();
        CpuProfile {
            dropped: table.dropped,
            busy: BUSY.load(Ordering::Relaxed),
            table,
            period: self.period,
            duration: self.started.elapsed(),
        }
    }

    /// Stops the timer and takes the table back from the handler.
    fn finish(&mut self) -> StackTable {
        self.running = false;
        let _ = set_timer(Duration::ZERO);
        // A signal already raised is absorbed, not fatal.
        let _ = install_handler(libc::SIG_IGN);
        let table = TABLE.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // Wait out a handler that loaded the old pointer before the swap.
        while IN_HANDLER.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        // SAFETY: published by `start`, now unreachable from the handler.
        *unsafe { Box::from_raw(table) }
    }
}

impl Drop for CpuSampler {
    fn drop(&mut self) {
        if self.running {
            drop(self.finish());
        }
    }
}

extern "C" fn on_sigprof(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    ucontext: *mut libc::c_void,
) {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if !IN_HANDLER.swap(true, Ordering::Acquire) {
        let table = TABLE.load(Ordering::Acquire);
        if !table.is_null() {
            let mut stack = Stack::empty();
            // SAFETY: `ucontext` comes from the kernel for this SA_SIGINFO handler; `table` is
            // alive while IN_HANDLER is held (stop waits for it).
            unsafe {
                match unwind::from_signal(ucontext, &mut stack) {
                    Some(()) => (*table).add(&stack),
                    None => {
                        BUSY.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        IN_HANDLER.store(false, Ordering::Release);
    }
    // The interrupted code must see its errno unchanged (the probe pipe may set it).
    // SAFETY: errno is thread-local; __errno_location has no preconditions.
    unsafe { *libc::__errno_location() = errno };
}

fn install_handler(handler: usize) -> Result<(), String> {
    // SAFETY: a zeroed sigaction with the handler and flags set is valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGPROF, &action, std::ptr::null_mut()) != 0 {
            return Err(format!(
                "sigaction(SIGPROF): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn set_timer(period: Duration) -> Result<(), String> {
    // SAFETY: all-zero is a valid timeval; the fields are set below with their own types
    // (whose width differs between libcs).
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    tv.tv_sec = period.as_secs() as _;
    tv.tv_usec = period.subsec_micros() as _;
    let timer = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) } != 0 {
        return Err(format!("setitimer: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn spin_for(d: Duration) -> u64 {
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < d {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        x
    }

    #[test]
    fn samples_a_busy_loop_and_frees_the_table() {
        let sampler = CpuSampler::start(250).unwrap();
        spin_for(Duration::from_millis(400));
        let p = sampler.stop();
        assert!(p.table.total() >= 40, "{} samples", p.table.total());
        assert!(TABLE.load(Ordering::Acquire).is_null());
        // A second capture starts cleanly after the first.
        CpuSampler::start(100).unwrap().stop();
    }
}
