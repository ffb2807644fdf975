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
//! Pages are committed by the kernel on first touch (`MAP_NORESERVE`), so a 2 MiB stack costs
//! the few pages CPython actually uses. A stack returned to the pool keeps its touched pages;
//! the pool is capped at [`POOL_CAP`] stacks per thread.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use corosensei::stack::{Stack, StackPointer};

/// Default usable size of a fiber stack (reserved, not committed).
pub(crate) const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;
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
        Ok(stack)
    }

    /// Usable bytes (excluding the guard).
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
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
