//! Fiber stacks: one mmap'd region per stack, reserved lazily committed, with a large guard,
//! recycled through a per-thread free list.
//!
//! Layout of one stack (addresses grow upwards; the stack grows downwards from `base`):
//!
//! ```text
//!   limit = map                 map + guard                          base = map + len
//!   |  guard (PROT_NONE, 64 KiB) |  usable (PROT_READ|WRITE, NORESERVE) ... <- sp starts here |
//! ```
//!
//! Why not corosensei's `DefaultStack`: its guard is a single page, which one large C frame
//! (CPython has some) can jump over, and it maps/unmaps on every coroutine. A pool saves the
//! three syscalls per fiber and keeps the number of mappings (two per stack; Linux allows
//! 65,530 by default) proportional to live fibers, not to fibers ever created.
//!
//! Why so large by default ([`DEFAULT_STACK_SIZE`], 1 GiB of address space): on CPython 3.11
//! the recursion limit is the only thing between deep C-mediated recursion (every `await`
//! level is a nested C call of the eval loop) and the end of the stack, and a program may
//! raise it at any time, also while the fiber runs. A thread's 8 MiB would hold ~30,000
//! `await` levels; 1 GiB holds any limit up to ~500,000 at the 2 KiB per level we budget
//! (design/fibers.md, "Stacks"). Like a thread stack it is only address space: pages are
//! committed by the kernel on first touch (`MAP_NORESERVE`), so a fiber costs the few pages
//! CPython actually uses. Where the kernel refuses such a reservation (`ulimit -v`, strict
//! overcommit) a smaller one is used and the fiber starts deeper instead (`handle.rs`).
//!
//! A stack returned to the pool keeps its top [`KEEP_HOT`] committed; deeper pages are
//! given back ([`FiberStack::trim`]), so one deep recursion does not pin its memory for the
//! life of the thread. The pool is capped at [`POOL_CAP`] stacks per thread.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use corosensei::stack::{Stack, StackPointer};

/// Default usable size of a fiber stack (address space reserved, committed on first touch).
pub(crate) const DEFAULT_STACK_SIZE: usize = 1 << 30;
/// Usable size tried when the kernel refuses [`DEFAULT_STACK_SIZE`] (a thread's default).
pub(crate) const FALLBACK_STACK_SIZE: usize = 8 << 20;
/// Top part of a pooled stack left committed (what a typical fiber touches, and more).
pub(crate) const KEEP_HOT: usize = 256 * 1024;
/// Pattern written below the hot top of a stack to see whether a fiber went deeper.
const MARK: u64 = 0x5afe_57ac_c0de_f1b3;
/// Marks per stack and their spacing: one 4 KiB window (one committed page per stack).
const MARK_WORDS: usize = 16;
const MARK_STRIDE: usize = 256;
/// Size of the inaccessible region below each stack.
pub(crate) const GUARD_SIZE: usize = 64 * 1024;
/// Smallest usable size accepted (corosensei needs 4 KiB; CPython needs much more).
pub(crate) const MIN_STACK_SIZE: usize = 128 * 1024;
/// Stacks kept per thread for reuse.
pub(crate) const POOL_CAP: usize = 128;

/// Stacks currently sitting in some thread's pool (for statistics).
pub(crate) static POOLED: AtomicUsize = AtomicUsize::new(0);
/// Stacks currently mapped (in use or pooled).
pub(crate) static MAPPED: AtomicUsize = AtomicUsize::new(0);

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// Round `n` up to a multiple of `to` (a power of two).
fn round_up(n: usize, to: usize) -> usize {
    (n + to - 1) & !(to - 1)
}

/// One mmap'd fiber stack with a guard region. Owns the mapping.
#[derive(Debug)]
pub(crate) struct FiberStack {
    map: NonNull<u8>,
    len: usize,
    size: usize,
}

impl FiberStack {
    /// Map a stack with at least `size` usable bytes below a [`GUARD_SIZE`] guard.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let size = round_up(size.max(MIN_STACK_SIZE), page_size().max(GUARD_SIZE));
        let len = size + GUARD_SIZE;
        // SAFETY: anonymous private mapping of fresh address space; no existing memory is
        // affected. The result is checked against MAP_FAILED.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(map.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        let stack = FiberStack { map, len, size };
        MAPPED.fetch_add(1, Relaxed);
        // SAFETY: [map + GUARD_SIZE, map + len) lies inside the mapping created above.
        let rc = unsafe {
            libc::mprotect(
                map.as_ptr().add(GUARD_SIZE).cast(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()); // `stack` unmaps on drop
        }
        stack.arm();
        Ok(stack)
    }

    /// Usable bytes (excluding the guard).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The [`MARK_WORDS`] words, [`MARK_STRIDE`] bytes apart, of the 4 KiB window just below
    /// the top [`KEEP_HOT`] bytes, or `None` if the stack is not larger than that.
    fn marks(&self) -> Option<impl Iterator<Item = *mut u64>> {
        if self.size < KEEP_HOT + MARK_STRIDE * MARK_WORDS {
            return None;
        }
        let window = self.map.as_ptr() as usize + self.len - KEEP_HOT - MARK_STRIDE * MARK_WORDS;
        Some((0..MARK_WORDS).map(move |i| (window + i * MARK_STRIDE) as *mut u64))
    }

    /// Write the marks that tell whether the stack was ever used below its hot top.
    fn arm(&self) {
        for p in self.marks().into_iter().flatten() {
            // SAFETY: `p` is 8-byte aligned (page-aligned window, stride a multiple of 8) and
            // inside the read/write part of the mapping; no coroutine runs on the stack.
            unsafe { p.write(MARK) };
        }
    }

    /// Whether a fiber used the stack below its hot top since [`arm`](Self::arm): any frame
    /// that passed the marks' window overwrote some of them (a miss only skips a trim).
    fn used_deep(&self) -> bool {
        self.marks().into_iter().flatten().any(|p| {
            // SAFETY: as in `arm`; reading our own mapping.
            let word = unsafe { p.read() };
            word != MARK
        })
    }

    /// Give the pages below the top [`KEEP_HOT`] bytes back to the kernel (they read as
    /// zeros when touched again) if a fiber used them. Only for a stack nothing runs on.
    ///
    /// The check costs a few loads; `madvise` over the whole reservation costs ~15 us (TLB
    /// flush), so it runs only after a deep recursion, not on every fiber finish.
    fn trim(&self) {
        if !self.used_deep() {
            return;
        }
        let Some(cold) = self.size.checked_sub(KEEP_HOT).filter(|&c| c > 0) else {
            return;
        };
        // SAFETY: [map + GUARD_SIZE, map + GUARD_SIZE + cold) is inside the read/write part
        // of this mapping, and no coroutine runs on the stack (it is being pooled), so no
        // live data is discarded. MADV_DONTNEED on private anonymous memory only drops pages.
        unsafe {
            libc::madvise(
                self.map.as_ptr().add(GUARD_SIZE).cast(),
                cold,
                libc::MADV_DONTNEED,
            );
        }
        self.arm();
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `new` with exactly this address and length and
        // nothing runs on it any more (a stack is dropped only when its coroutine is done or
        // was never started).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.len) };
        MAPPED.fetch_sub(1, Relaxed);
    }
}

// SAFETY: the region below `limit() + GUARD_SIZE` is PROT_NONE (a 64 KiB guard, more than the
// one page corosensei requires) and the usable part is at least MIN_STACK_SIZE >= 4 KiB;
// `base` and `limit` are page aligned, hence STACK_ALIGNMENT aligned.
unsafe impl Stack for FiberStack {
    fn base(&self) -> StackPointer {
        // `map + len` cannot be zero: it is the end of a successful mapping.
        NonZeroUsize::new(self.map.as_ptr() as usize + self.len).expect("stack base is null")
    }

    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.map.as_ptr() as usize).expect("stack limit is null")
    }
}

/// Per-thread free list of stacks, matched by exact usable size.
#[derive(Default)]
struct Pool {
    free: Vec<FiberStack>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        POOLED.fetch_sub(self.free.len(), Relaxed);
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// Take a stack of exactly `size` usable bytes (after rounding) from this thread's pool, or
/// map a new one.
pub(crate) fn acquire(size: usize) -> io::Result<FiberStack> {
    let want = round_up(size.max(MIN_STACK_SIZE), page_size().max(GUARD_SIZE));
    let hit = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let i = p.free.iter().rposition(|s| s.size == want)?;
            POOLED.fetch_sub(1, Relaxed);
            Some(p.free.swap_remove(i))
        })
        .ok()
        .flatten();
    match hit {
        Some(s) => Ok(s),
        None => FiberStack::new(want),
    }
}

/// Give a stack whose coroutine is done (or never started) back to this thread's pool.
pub(crate) fn release(stack: FiberStack) {
    let _ = POOL.try_with(move |p| {
        let mut p = p.borrow_mut();
        if p.free.len() < POOL_CAP {
            stack.trim();
            POOLED.fetch_add(1, Relaxed);
            p.free.push(stack);
        }
        // else: `stack` is dropped here and unmapped
    });
    // If the thread-local is already gone (thread exit), the closure was not run and the
    // stack was dropped with it.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_writable_and_aligned() {
        let s = FiberStack::new(100_000).unwrap();
        assert!(s.size() >= 100_000);
        assert_eq!(s.base().get() % 16, 0);
        assert_eq!(s.base().get() - s.limit().get(), s.size() + GUARD_SIZE);
        // Touch the lowest and highest usable bytes.
        let lo = (s.limit().get() + GUARD_SIZE) as *mut u8;
        let hi = (s.base().get() - 1) as *mut u8;
        // SAFETY: both addresses are inside the PROT_READ|WRITE part of the mapping.
        unsafe {
            lo.write(1);
            hi.write(2);
            assert_eq!(lo.read() + hi.read(), 3);
        }
    }

    #[test]
    fn pool_reuses_stacks_of_the_same_size() {
        let a = acquire(DEFAULT_STACK_SIZE).unwrap();
        let addr = a.limit();
        release(a);
        let b = acquire(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(b.limit(), addr);
        let c = acquire(DEFAULT_STACK_SIZE * 2).unwrap();
        assert_ne!(c.limit(), addr);
        assert_eq!(c.size(), DEFAULT_STACK_SIZE * 2);
        release(b);
        release(c);
    }

    #[test]
    fn pooled_stack_keeps_only_its_top_committed() {
        let s = FiberStack::new(4 * KEEP_HOT).unwrap();
        let lo = (s.limit().get() + GUARD_SIZE) as *mut u8;
        let hi = (s.base().get() - 1) as *mut u8;
        // SAFETY: both addresses are inside the PROT_READ|WRITE part of the mapping.
        unsafe {
            lo.write(1);
            hi.write(2);
        }
        s.trim();
        // SAFETY: as above. The marks were not touched: nothing was given back.
        unsafe { assert_eq!(lo.read(), 1) };
        let mid = (s.base().get() - KEEP_HOT - MARK_STRIDE) as *mut u8;
        // SAFETY: inside the read/write part (below the hot top, in the marks' window).
        unsafe { mid.write(3) };
        assert!(s.used_deep());
        s.trim();
        // SAFETY: as above; trimmed pages read back as zeros, the hot top is kept.
        unsafe {
            assert_eq!(lo.read(), 0);
            assert_eq!(hi.read(), 2);
        }
        assert!(!s.used_deep());
    }

    #[test]
    fn coroutine_runs_on_fiber_stack() {
        use corosensei::{Coroutine, CoroutineResult};
        let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        let (lo, hi) = (stack.limit().get(), stack.base().get());
        let mut co = Coroutine::with_stack(stack, |y: &corosensei::Yielder<(), usize>, ()| {
            let local = 0u8;
            y.suspend(&local as *const u8 as usize);
            7u32
        });
        let CoroutineResult::Yield(sp) = co.resume(()) else {
            panic!("expected a yield")
        };
        assert!(sp > lo && sp < hi);
        assert!(matches!(co.resume(()), CoroutineResult::Return(7)));
        release(co.into_stack());
    }
}
