//! The saved per-context interpreter state: Rust's view of `csrc/shim.c`.
//!
//! # Accessor contract
//!
//! Every supported CPython version's section of `csrc/shim.c` provides exactly these
//! functions (documented in full at the top of the C file):
//!
//! | C function | meaning |
//! |---|---|
//! | `fs_state_size()` | `sizeof(fs_state)`; must fit [`FS_STATE_CAPACITY`] |
//! | `fs_built_version()` | `PY_VERSION_HEX` the shim was compiled against |
//! | `fs_c_recursion_limit()` | the fixed C-recursion budget (`Py_C_RECURSION_LIMIT`), 0 on 3.11 |
//! | `fs_state_init(s, py, c)` | empty state of a never-run fiber at recursion depths `py` / `c` |
//! | `fs_state_set_context(s, ctx)` | give the state a contextvars context (steals) |
//! | `fs_save(s) -> carry` | move the thread state's per-context fields into `s` |
//! | `fs_restore(s, carry)` | move `s` into the thread state |
//! | `fs_run_bottom(body, arg) -> carry` | on the fiber stack: bottom C frame, `body(arg)` |
//! | `fs_state_clear(s)` | free a finished fiber's leftovers (refs, data-stack chunks) |
//! | `fs_state_drop_refs(s)` | drop only the object refs (tp_clear) |
//! | `fs_state_refs(s, out, n)` | borrowed refs for tp_traverse |
//! | `fs_state_take_chunk(s)` | detach a finished state's empty root data-stack chunk |
//! | `fs_state_give_chunk(s, c)` | give a never-run state a recycled root chunk |
//! | `fs_free_chunk(c)` | free a detached chunk |
//! | `fs_is_finalizing()` | interpreter finalization has started |
//!
//! The fields moved by save/restore (per version in `design/fibers.md`): the top of the
//! frame chain (`cframe` on 3.11/3.12, `current_frame` on 3.13), recursion depths (Python;
//! C as well from 3.12), the trashcan state, `datastack_{chunk,top,limit}`, `exc_info` +
//! `exc_state`, `context` (+ `context_ver++`). The 3.11 per-C-frame tracing flag is the
//! "carry" value (always 0 later).
//! Deliberately *not* moved (shared by all fibers of a thread): tracing/profiling functions,
//! `dict` (threading.local), async-gen hooks, the error indicator.
//!
//! Rust never looks inside [`SavedState`]: the C compiler computes every offset from the
//! interpreter's own headers.

use std::cell::RefCell;
use std::ffi::{c_int, c_ulong, c_void};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use pyo3::ffi::{PyObject, PyThreadState};

/// Bytes reserved for one saved state (x86-64: the 3.11 shim needs 72, 3.12 88, 3.13 96).
pub(crate) const FS_STATE_CAPACITY: usize = 128;

/// Opaque, inline storage for the shim's `fs_state`.
#[repr(C, align(16))]
pub(crate) struct SavedState {
    bytes: [MaybeUninit<u8>; FS_STATE_CAPACITY],
}

mod ffi {
    use super::*;
    extern "C" {
        pub(super) fn fs_state_size() -> usize;
        pub(super) fn fs_built_version() -> c_ulong;
        pub(super) fn fs_c_recursion_limit() -> c_int;
        pub(super) fn fs_state_init(s: *mut SavedState, py_depth: c_int, c_depth: c_int);
        pub(super) fn fs_state_set_context(s: *mut SavedState, ctx: *mut PyObject);
        pub(super) fn fs_save(ts: *mut PyThreadState, s: *mut SavedState) -> c_int;
        pub(super) fn fs_restore(ts: *mut PyThreadState, s: *mut SavedState, carry: c_int);
        pub(super) fn fs_run_bottom(body: extern "C" fn(*mut c_void), arg: *mut c_void) -> c_int;
        pub(super) fn fs_state_clear(s: *mut SavedState);
        pub(super) fn fs_state_drop_refs(s: *mut SavedState);
        pub(super) fn fs_state_refs(
            s: *const SavedState,
            out: *mut *mut PyObject,
            n: usize,
        ) -> usize;
        pub(super) fn fs_state_take_chunk(s: *mut SavedState) -> *mut c_void;
        pub(super) fn fs_state_give_chunk(s: *mut SavedState, chunk: *mut c_void);
        pub(super) fn fs_free_chunk(chunk: *mut c_void);
        pub(super) fn fs_is_finalizing() -> c_int;
    }
}

/// The value carried from the outgoing context into the incoming one on a switch (3.11: the
/// C frame's tracing flag).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Carry(c_int);

/// `PY_VERSION_HEX` of the headers the shim was built against.
pub(crate) fn built_version() -> u64 {
    // SAFETY: returns a compile-time constant; touches no interpreter state.
    unsafe { ffi::fs_built_version() }
}

/// Whether interpreter finalization has started (fibers are then leaked, not killed).
///
/// # Safety
/// GIL held.
pub(crate) unsafe fn is_finalizing() -> bool {
    // SAFETY: forwarded caller contract; reads one runtime flag.
    unsafe { ffi::fs_is_finalizing() != 0 }
}

/// The interpreter's fixed C-recursion budget, or `None` where the Python recursion limit
/// also guards the C stack (3.11).
pub(crate) fn c_recursion_limit() -> Option<i32> {
    // SAFETY: returns a compile-time constant; touches no interpreter state.
    let limit = unsafe { ffi::fs_c_recursion_limit() };
    (limit > 0).then_some(limit)
}

/// Recursion depths a new fiber starts at (see `handle::stack_plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StartDepth {
    /// Python recursion depth (`recursion_limit - remaining`).
    pub(crate) py: i32,
    /// C recursion depth (`Py_C_RECURSION_LIMIT - c_recursion_remaining`); unused on 3.11.
    pub(crate) c: i32,
}

/// Check that the shim's state fits [`SavedState`] (called once at module init).
pub(crate) fn layout_ok() -> bool {
    // SAFETY: returns a compile-time constant; touches no interpreter state.
    unsafe { ffi::fs_state_size() <= FS_STATE_CAPACITY }
}

impl SavedState {
    /// State of a fiber that has never run, starting at recursion depths `depth`, with
    /// a recycled data-stack chunk when this thread has one.
    pub(crate) fn new_fiber(depth: StartDepth) -> Self {
        let mut s = Self::blank(depth);
        if let Some(chunk) = CHUNKS.try_with(|c| c.borrow_mut().0.pop()).ok().flatten() {
            // SAFETY: `s` is a never-run state; `chunk` came from `fs_state_take_chunk` and is
            // owned by the cache, which gives it up here.
            unsafe { ffi::fs_state_give_chunk(&mut s, chunk.as_ptr()) };
        }
        s
    }

    /// A valid state that owns nothing (placeholder until a fiber starts).
    pub(crate) fn blank(depth: StartDepth) -> Self {
        let mut s = SavedState {
            bytes: [MaybeUninit::uninit(); FS_STATE_CAPACITY],
        };
        // SAFETY: `s` is properly aligned storage of at least fs_state_size() bytes
        // (checked by `layout_ok` at module init); init writes every field and reads none.
        unsafe { ffi::fs_state_init(&mut s, depth.py, depth.c) };
        s
    }

    /// Storage for a state that `save` will fill (`fs_save` writes every field, so the
    /// bytes are left uninitialised: this is on the switch path).
    pub(crate) fn empty() -> Self {
        SavedState {
            bytes: [MaybeUninit::uninit(); FS_STATE_CAPACITY],
        }
    }

    /// Give the state its contextvars context (reference stolen).
    ///
    /// # Safety
    /// GIL held; `ctx` is an owned reference to a `contextvars.Context`; the state is not
    /// currently restored into the thread state.
    pub(crate) unsafe fn set_context(&mut self, ctx: *mut PyObject) {
        // SAFETY: forwarded caller contract; a replaced context is decref'd, which may run
        // Python code, and the state is consistent at that point.
        unsafe { ffi::fs_state_set_context(self, ctx) }
    }

    /// Move the running context's fields out of the thread state into `self`.
    ///
    /// # Safety
    /// GIL held on the owning thread, whose thread state is `ts`; `self` does not hold a live state (it was restored or
    /// is empty), otherwise its references leak; must be followed by a [`restore`] of another
    /// state before any Python code runs.
    ///
    /// [`restore`]: SavedState::restore
    pub(crate) unsafe fn save(&mut self, ts: *mut PyThreadState) -> Carry {
        // SAFETY: forwarded caller contract.
        Carry(unsafe { ffi::fs_save(ts, self) })
    }

    /// Move `self` into the thread state, carrying `carry` over.
    ///
    /// # Safety
    /// GIL held on the owning thread, whose thread state is `ts`; the thread state's own fields were just saved with
    /// [`save`] (no Python code ran since); if `self` was saved from a C stack, that stack
    /// is the one now executing (or about to be, via the coroutine switch that follows with
    /// nothing else in between).
    ///
    /// [`save`]: SavedState::save
    pub(crate) unsafe fn restore(&mut self, ts: *mut PyThreadState, carry: Carry) {
        // SAFETY: forwarded caller contract.
        unsafe { ffi::fs_restore(ts, self, carry.0) }
    }

    /// Release a finished fiber's leftovers: context, handled exception, data-stack chunks.
    ///
    /// # Safety
    /// GIL held; the state belongs to a fiber that finished (its interpreter frames were all
    /// popped) and is not restored. May run Python code.
    pub(crate) unsafe fn clear_finished(&mut self) {
        // SAFETY: forwarded caller contract (finished, not restored).
        let chunk = NonNull::new(unsafe { ffi::fs_state_take_chunk(self) });
        if let Some(chunk) = chunk {
            let kept = CHUNKS.try_with(|c| {
                let mut c = c.borrow_mut();
                if c.0.len() < CHUNK_CACHE_CAP {
                    c.0.push(chunk);
                    true
                } else {
                    false
                }
            });
            if kept != Ok(true) {
                // SAFETY: the chunk was detached from the state above and is owned here.
                unsafe { ffi::fs_free_chunk(chunk.as_ptr()) };
            }
        }
        // SAFETY: forwarded caller contract.
        unsafe { ffi::fs_state_clear(self) }
    }

    /// Drop the object references (context, handled exception); the state stays usable.
    ///
    /// # Safety
    /// GIL held; the state is not restored. May run Python code.
    pub(crate) unsafe fn drop_refs(&mut self) {
        // SAFETY: forwarded caller contract; the shim clears each field before decref'ing.
        unsafe { ffi::fs_state_drop_refs(self) }
    }

    /// Call `f` with each object reference the state owns (borrowed).
    ///
    /// # Safety
    /// GIL held (any thread); the state is not restored.
    pub(crate) unsafe fn for_each_ref(&self, mut f: impl FnMut(*mut PyObject)) {
        let mut out = [std::ptr::null_mut(); 4];
        // SAFETY: `out` has room for 4 pointers; the state is initialised (caller contract).
        let n = unsafe { ffi::fs_state_refs(self, out.as_mut_ptr(), out.len()) };
        for p in &out[..n.min(out.len())] {
            f(*p);
        }
    }
}

/// Empty data-stack root chunks kept per thread for the next fibers.
const CHUNK_CACHE_CAP: usize = 128;

struct ChunkCache(Vec<NonNull<c_void>>);

impl Drop for ChunkCache {
    fn drop(&mut self) {
        for chunk in self.0.drain(..) {
            // SAFETY: cached chunks are detached and owned by the cache; freeing goes through
            // the arena allocator, which needs no thread state.
            unsafe { ffi::fs_free_chunk(chunk.as_ptr()) };
        }
    }
}

thread_local! {
    static CHUNKS: RefCell<ChunkCache> = const { RefCell::new(ChunkCache(Vec::new())) };
}

/// Run `body(arg)` on the current (fiber) stack below a fresh bottom C frame; returns the
/// final carry value to hand to the resumer.
///
/// # Safety
/// GIL held; called first thing on a new fiber's own stack, right after the resumer restored
/// the fiber's never-run state (so the thread state's C frame is `root_cframe`).
pub(crate) unsafe fn run_bottom(body: extern "C" fn(*mut c_void), arg: *mut c_void) -> Carry {
    // SAFETY: forwarded caller contract.
    Carry(unsafe { ffi::fs_run_bottom(body, arg) })
}
