//! Stack walking with framehop over our executable's DWARF CFI (.eh_frame): works in the
//! release build, which has no frame pointers, and is safe inside a signal handler (no
//! allocation, no lock wait, every stack read validated). The CPU sampler walks from a signal's
//! saved registers, the heap sampler from its own frame.

#![cfg(target_os = "linux")]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use framehop::{
    CacheNative, ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind,
    UnwindRegsNative, Unwinder, UnwinderNative,
};

use crate::Error;
use crate::exe::Executable;
use crate::reentry::unsampled;

/// Deepest stack recorded; deeper ones keep their innermost frames.
pub(crate) const MAX_DEPTH: usize = 64;

/// Instruction addresses, innermost first. Return addresses are stored minus one, so every
/// address lies inside its call instruction (symbolizers then name the right line).
#[derive(Clone, Copy)]
pub(crate) struct Stack {
    pub(crate) frames: [u64; MAX_DEPTH],
    pub(crate) len: usize,
}

impl Stack {
    pub(crate) const fn empty() -> Self {
        Self {
            frames: [0; MAX_DEPTH],
            len: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.frames[..self.len]
    }
}

struct Walker {
    unwinder: UnwinderNative<&'static [u8], MustNotAllocateDuringUnwind>,
    /// The rule cache; `WALKING` guards it (a signal may interrupt a walk on the same thread).
    cache: std::cell::UnsafeCell<CacheNative<MustNotAllocateDuringUnwind>>,
}

// SAFETY: `cache` is only touched while holding `WALKING`.
unsafe impl Sync for Walker {}

static WALKER: OnceLock<Result<Walker, Error>> = OnceLock::new();
/// Held while a walk uses the walker's cache.
static WALKING: AtomicBool = AtomicBool::new(false);

/// Builds the unwinder (reads our executable's section headers once). Call at startup, before
/// any sampler runs: the signal handler must never be the one to initialise it.
pub(crate) fn init() -> Result<&'static Executable, Error> {
    if let (Some(Ok(exe)), Some(Ok(_))) = (EXE.get(), WALKER.get()) {
        return Ok(exe);
    }
    unsampled(init_once)
}

static EXE: OnceLock<Result<Executable, Error>> = OnceLock::new();

fn init_once() -> Result<&'static Executable, Error> {
    let exe = EXE
        .get_or_init(Executable::load)
        .as_ref()
        .map_err(Clone::clone)?;
    WALKER
        .get_or_init(|| {
            let s = &exe.sections;
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: Some(s.text.0.clone()),
                text: Some(s.text.1),
                got_svma: s.got.clone(),
                eh_frame_svma: s.eh_frame.as_ref().map(|e| e.0.clone()),
                eh_frame: s.eh_frame.as_ref().map(|e| e.1),
                eh_frame_hdr_svma: s.eh_frame_hdr.as_ref().map(|e| e.0.clone()),
                eh_frame_hdr: s.eh_frame_hdr.as_ref().map(|e| e.1),
                ..Default::default()
            };
            let main = exe
                .main_mapping()
                .ok_or_else(|| Error::Executable("no mapping of the executable".into()))?;
            let mut unwinder = UnwinderNative::new();
            unwinder.add_module(Module::new(
                main.path.clone(),
                main.start..main.limit,
                exe.bias,
                info,
            ));
            open_probe_pipe()?;
            Ok(Walker {
                unwinder,
                cache: std::cell::UnsafeCell::new(CacheNative::new_in()),
            })
        })
        .as_ref()
        .map_err(Clone::clone)?;
    Ok(exe)
}

/// Walks the stack that a signal interrupted. Async-signal-safe. `None` when the unwinder is
/// busy on this or another thread (the caller counts a dropped sample).
///
/// # Safety
/// `ucontext` must be the third argument of an `SA_SIGINFO` handler.
pub(crate) unsafe fn from_signal(ucontext: *mut libc::c_void, out: &mut Stack) -> Option<()> {
    // SAFETY: forwarded from the caller.
    let (pc, regs) = unsafe { regs_from_ucontext(ucontext)? };
    walk(pc, regs, 0, false, out)
}

/// Walks the caller's stack, skipping `skip` innermost frames. Not for signal handlers: it
/// waits while another thread's walk finishes (a signal handler never waits).
#[inline(never)]
pub(crate) fn here(skip: usize, out: &mut Stack) -> Option<()> {
    let (pc, regs) = current_regs();
    walk(pc, regs, skip, true, out)
}

fn walk(pc: u64, regs: UnwindRegsNative, skip: usize, wait: bool, out: &mut Stack) -> Option<()> {
    let Some(Ok(walker)) = WALKER.get() else {
        return None;
    };
    while WALKING.swap(true, Ordering::Acquire) {
        if !wait {
            return None;
        }
        std::hint::spin_loop();
    }
    // SAFETY: WALKING is held, so this is the only reference to the cache.
    let cache = unsafe { &mut *walker.cache.get() };
    out.len = 0;
    let complete = walk_frames(walker, cache, pc, regs, skip, out);
    // A leaf without unwind info (musl's syscall wrappers are hand-written assembly, and most
    // CPU samples of a busy server land in a syscall) stops the walk at once. Such a leaf has
    // no frame of its own: retry from its return address and keep the longer stack.
    if !complete
        && out.len < 4
        && skip == 0
        && let Some((ra, caller_regs)) = frameless_caller(regs)
    {
        let mut retry = Stack::empty();
        retry.frames[0] = pc;
        retry.len = 1;
        walk_frames(walker, cache, ra, caller_regs, 0, &mut retry);
        if retry.len > out.len + 1 {
            // The first caller's address was a return address: step back into the call.
            retry.frames[1] = retry.frames[1].saturating_sub(1);
            *out = retry;
        }
    }
    WALKING.store(false, Ordering::Release);
    Some(())
}

/// Appends the frames from (`pc`, `regs`) to `out`; true when the walk reached the stack's
/// end, false when it stopped on an error (no unwind rule, unreadable stack).
fn walk_frames(
    walker: &Walker,
    cache: &mut CacheNative<MustNotAllocateDuringUnwind>,
    pc: u64,
    regs: UnwindRegsNative,
    skip: usize,
    out: &mut Stack,
) -> bool {
    let mut read = |addr: u64| read_word(addr);
    let mut frames = walker.unwinder.iter_frames(pc, regs, cache, &mut read);
    let mut skipped = 0;
    loop {
        let frame = match frames.next() {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(_) => return false,
        };
        if skipped < skip {
            skipped += 1;
            continue;
        }
        if out.len == MAX_DEPTH {
            return true;
        }
        out.frames[out.len] = match frame {
            FrameAddress::InstructionPointer(a) => a,
            FrameAddress::ReturnAddress(_) => frame.address_for_lookup(),
        };
        out.len += 1;
    }
}

/// The caller of a frameless leaf: its return address sits on top of the stack (x86_64) or
/// in the link register (aarch64).
#[cfg(target_arch = "x86_64")]
fn frameless_caller(regs: UnwindRegsNative) -> Option<(u64, UnwindRegsNative)> {
    let ra = read_word(regs.sp()).ok()?;
    Some((ra, UnwindRegsNative::new(ra, regs.sp() + 8, regs.bp())))
}

#[cfg(target_arch = "aarch64")]
fn frameless_caller(regs: UnwindRegsNative) -> Option<(u64, UnwindRegsNative)> {
    let ra = regs.lr();
    Some((ra, UnwindRegsNative::new(ra, regs.sp(), regs.fp())))
}

/// Probe pipe: writing a word from `addr` into it fails with EFAULT when `addr` is not
/// readable, so a corrupt frame never makes the unwinder fault.
static PROBE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

fn open_probe_pipe() -> Result<(), Error> {
    let mut fds = [0; 2];
    // SAFETY: plain syscall with a valid out array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(Error::last_os("pipe2 (the unwinder's probe pipe)"));
    }
    PROBE[0].store(fds[0], Ordering::Release);
    PROBE[1].store(fds[1], Ordering::Release);
    Ok(())
}

fn read_word(addr: u64) -> Result<u64, ()> {
    if !addr.is_multiple_of(8) || addr < 4096 {
        return Err(());
    }
    let (rd, wr) = (
        PROBE[0].load(Ordering::Acquire),
        PROBE[1].load(Ordering::Acquire),
    );
    // SAFETY: write(2) reads 8 bytes at `addr` in the kernel, which reports EFAULT instead of
    // faulting; the word is drained right after, so the pipe never fills.
    unsafe {
        if libc::write(wr, addr as *const libc::c_void, 8) != 8 {
            return Err(());
        }
        let mut word = 0u64;
        libc::read(rd, (&raw mut word).cast(), 8);
        Ok(word)
    }
}

/// # Safety
/// `ucontext` must point to a `ucontext_t` given to an `SA_SIGINFO` handler.
#[cfg(target_arch = "x86_64")]
unsafe fn regs_from_ucontext(ucontext: *mut libc::c_void) -> Option<(u64, UnwindRegsNative)> {
    let uc = ucontext as *const libc::ucontext_t;
    if uc.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    let (ip, sp, bp) = (
        g[libc::REG_RIP as usize] as u64,
        g[libc::REG_RSP as usize] as u64,
        g[libc::REG_RBP as usize] as u64,
    );
    Some((ip, UnwindRegsNative::new(ip, sp, bp)))
}

/// # Safety
/// `ucontext` must point to a `ucontext_t` given to an `SA_SIGINFO` handler.
#[cfg(target_arch = "aarch64")]
unsafe fn regs_from_ucontext(ucontext: *mut libc::c_void) -> Option<(u64, UnwindRegsNative)> {
    let uc = ucontext as *const libc::ucontext_t;
    if uc.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let m = unsafe { &(*uc).uc_mcontext };
    // The interrupted instruction is `pc`; `x30` (lr) is only the caller's return address.
    Some((m.pc, UnwindRegsNative::new(m.regs[30], m.sp, m.regs[29])))
}

/// This function's own pc, sp and frame pointer, to start a walk from here.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn current_regs() -> (u64, UnwindRegsNative) {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads registers only.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip, sp = out(reg) sp, bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    (ip, UnwindRegsNative::new(ip, sp, bp))
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn current_regs() -> (u64, UnwindRegsNative) {
    let (pc, sp, fp, lr): (u64, u64, u64, u64);
    // SAFETY: reads registers only.
    unsafe {
        std::arch::asm!(
            "adr {pc}, .",
            "mov {sp}, sp",
            "mov {fp}, x29",
            "mov {lr}, x30",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, lr = out(reg) lr,
            options(nomem, nostack, preserves_flags),
        );
    }
    (pc, UnwindRegsNative::new(lr, sp, fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn walk_from_a_named_function(out: &mut Stack) {
        here(0, out).expect("walk");
        std::hint::black_box(out);
    }

    #[test]
    fn walks_through_our_own_frames() {
        init().expect("init");
        let mut stack = Stack::empty();
        walk_from_a_named_function(&mut stack);
        assert!(stack.len > 3, "only {} frames", stack.len);
        let names: Vec<String> = stack
            .as_slice()
            .iter()
            .filter_map(|&a| crate::pprof::symbolize(a).map(|s| s.name))
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("walks_through_our_own_frames")),
            "{names:?}"
        );
    }

    #[test]
    fn unreadable_words_are_refused_not_faulted() {
        init().expect("init");
        assert!(read_word(8).is_err());
        assert!(read_word(0xffff_ffff_fff0).is_err());
        let x = 0x1234_5678u64;
        assert_eq!(read_word(&raw const x as u64), Ok(0x1234_5678));
    }
}
