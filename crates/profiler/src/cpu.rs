//! The CPU sampler: a SIGPROF interval timer on the process's CPU time (as Go's profiler
//! uses), a handler that walks the interrupted stack once and counts it in the table of every
//! open capture window. Several captures overlap (two continuous profilers and a person at
//! once): the first window arms the timer, the last one disarms it, and each window holds the
//! samples taken while it was open. Tables are allocated up front and freed when their window
//! closes; nothing is written to the filesystem.

#![cfg(target_os = "linux")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::Error;
use crate::stacks::StackTable;
use crate::unwind::{self, Stack};

/// Distinct stacks kept per capture (about 0.5 KiB each).
const TABLE_SLOTS: usize = 2048;

/// Most windows open at once (the debug endpoints bound captures lower, by a flag).
pub const MAX_WINDOWS: usize = 16;

/// The open windows' tables, null where a window is free.
static WINDOWS: [AtomicPtr<StackTable>; MAX_WINDOWS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_WINDOWS];
/// Held by the handler while it uses WINDOWS (and waited out by `finish` after taking one).
static IN_HANDLER: AtomicBool = AtomicBool::new(false);
/// Samples that found the unwinder busy (a heap sample being walked), ever.
static LOST_UNWINDER_BUSY: AtomicU64 = AtomicU64::new(0);
/// Samples raised while another thread's handler was running, ever.
static LOST_CONCURRENT: AtomicU64 = AtomicU64::new(0);
/// Open windows, and the period the timer runs at; changed only under this lock.
static OPEN: Mutex<(usize, Duration)> = Mutex::new((0, Duration::ZERO));

/// A finished capture.
pub struct CpuProfile {
    table: StackTable,
    pub period: Duration,
    pub duration: Duration,
    /// Samples lost because the table was full.
    pub dropped: u64,
    /// Samples lost because the unwinder was busy (a heap sample being walked).
    pub busy: u64,
    /// Samples lost because another thread's sample was being walked at that moment.
    pub concurrent: u64,
}

/// An open capture window; `stop` closes it, and so does dropping it (a client that went
/// away), so the timer never outlives the last window.
pub struct CpuSampler {
    slot: usize,
    started: Instant,
    period: Duration,
    lost_at_start: (u64, u64),
    running: bool,
}

fn open() -> std::sync::MutexGuard<'static, (usize, Duration)> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

fn lost() -> (u64, u64) {
    (
        LOST_UNWINDER_BUSY.load(SeqCst),
        LOST_CONCURRENT.load(SeqCst),
    )
}

impl CpuSampler {
    /// Opens a window. The first one sets the rate (`hz`); later ones share it while any is
    /// open, so every overlapping profile has the same period.
    pub fn start(hz: u32) -> Result<Self, Error> {
        unwind::init()?;
        let mut open = open();
        let Some(slot) = WINDOWS.iter().position(|w| w.load(SeqCst).is_null()) else {
            return Err(Error::WindowsFull { max: MAX_WINDOWS });
        };
        let table = Box::into_raw(Box::new(StackTable::with_capacity(TABLE_SLOTS)));
        WINDOWS[slot].store(table, SeqCst);
        if open.0 == 0 {
            let period = Duration::from_micros(1_000_000 / u64::from(hz.max(1)));
            if let Err(e) =
                install_handler(on_sigprof as *const () as usize).and_then(|()| set_timer(period))
            {
                WINDOWS[slot].store(std::ptr::null_mut(), SeqCst);
                // SAFETY: no handler was armed, so nothing else saw the pointer.
                drop(unsafe { Box::from_raw(table) });
                return Err(e);
            }
            open.1 = period;
        }
        open.0 += 1;
        Ok(Self {
            slot,
            started: Instant::now(),
            period: open.1,
            lost_at_start: lost(),
            running: true,
        })
    }

    pub fn stop(mut self) -> CpuProfile {
        let table = self.finish();
        let (busy, concurrent) = lost();
        CpuProfile {
            dropped: table.dropped,
            busy: busy - self.lost_at_start.0,
            concurrent: concurrent - self.lost_at_start.1,
            table,
            period: self.period,
            duration: self.started.elapsed(),
        }
    }

    /// Takes the window's table back from the handler; the last window stops the timer.
    fn finish(&mut self) -> StackTable {
        self.running = false;
        let mut open = open();
        let table = WINDOWS[self.slot].swap(std::ptr::null_mut(), SeqCst);
        // Wait out a handler that loaded the old pointer before the swap (SeqCst on both
        // sides: a handler that takes IN_HANDLER after this load sees the null).
        while IN_HANDLER.load(SeqCst) {
            std::hint::spin_loop();
        }
        open.0 -= 1;
        if open.0 == 0 {
            let _ = set_timer(Duration::ZERO);
            // A signal already raised is absorbed, not fatal.
            let _ = install_handler(libc::SIG_IGN);
        }
        // SAFETY: published by `start`, now unreachable from the handler.
        *unsafe { Box::from_raw(table) }
    }
}

impl CpuProfile {
    /// Each distinct stack (instruction addresses, innermost first) with its sample count.
    pub fn samples(&self) -> impl Iterator<Item = (&[u64], u64)> {
        self.table.iter()
    }

    /// Samples kept.
    pub fn total(&self) -> u64 {
        self.table.total()
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
    if IN_HANDLER.swap(true, SeqCst) {
        LOST_CONCURRENT.fetch_add(1, SeqCst);
    } else {
        if WINDOWS.iter().any(|w| !w.load(SeqCst).is_null()) {
            let mut stack = Stack::empty();
            // SAFETY: `ucontext` comes from the kernel for this SA_SIGINFO handler.
            match unsafe { unwind::from_signal(ucontext, &mut stack) } {
                Some(()) => {
                    for w in &WINDOWS {
                        let table = w.load(SeqCst);
                        if !table.is_null() {
                            // SAFETY: a table is alive while IN_HANDLER is held (finish waits).
                            unsafe { (*table).add(&stack) };
                        }
                    }
                }
                None => {
                    LOST_UNWINDER_BUSY.fetch_add(1, SeqCst);
                }
            }
        }
        IN_HANDLER.store(false, SeqCst);
    }
    // The interrupted code must see its errno unchanged (the probe pipe may set it).
    // SAFETY: errno is thread-local; __errno_location has no preconditions.
    unsafe { *libc::__errno_location() = errno };
}

fn install_handler(handler: usize) -> Result<(), Error> {
    // SAFETY: a zeroed sigaction with the handler and flags set is valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGPROF, &action, std::ptr::null_mut()) != 0 {
            return Err(Error::last_os("sigaction(SIGPROF)"));
        }
    }
    Ok(())
}

fn set_timer(period: Duration) -> Result<(), Error> {
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
        return Err(Error::last_os("setitimer(ITIMER_PROF)"));
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
        // A second capture starts cleanly after the first.
        CpuSampler::start(100).unwrap().stop();
    }

    #[test]
    fn overlapping_windows_each_get_their_own_samples() {
        let long = CpuSampler::start(250).unwrap();
        spin_for(Duration::from_millis(300));
        let short = CpuSampler::start(250).unwrap();
        spin_for(Duration::from_millis(300));
        let short = short.stop();
        spin_for(Duration::from_millis(300));
        let long = long.stop();
        let (s, l) = (short.table.total(), long.table.total());
        assert!(s >= 20, "{s} samples in the short window");
        // Open three times as long: clearly more, whatever else the test process runs.
        assert!(l > s * 3 / 2, "long window {l} samples, short {s}");
        assert_eq!(short.period, long.period);
    }
}
