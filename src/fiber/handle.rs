//! The safe `Fiber`: state machine, thread checks, start, kill-on-drop.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pyo3::exceptions::{PyRuntimeError, PyRuntimeWarning};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyTypeInfo;

use super::error::{FiberError, FiberExit};
use super::stack::{self, DEFAULT_STACK_SIZE};
use super::state::{self, SavedState, StartDepth};
use super::stats;
use super::switch::{self, Co, Entry, Outcome, Resume, Shared};

/// C stack budgeted per unit of Python recursion depth. Measured on 3.11 (release, x86-64):
/// `list(map(f, ...))` recursion uses ~1.06 KiB per unit, `sorted(key=f)` ~1.75 KiB.
pub(crate) const BYTES_PER_LEVEL: usize = 2048;
/// C stack budgeted per unit of C recursion depth (3.12+, where Python-to-Python calls no
/// longer use the C stack and `c_recursion_remaining` counts the C-mediated levels).
/// Measured (release, x86-64; design/fibers.md): `sorted(key=f)` recursion needs ~1.63 KiB
/// per level on 3.12 and ~1.26 KiB on 3.13, more than CPython's own main thread provides
/// (3.13's 10,000 levels would need 12.6 MiB), so fibers reserve the whole budget.
pub(crate) const BYTES_PER_C_LEVEL: usize = 2048;
/// C stack kept free below the recursion budget for the fiber's bottom frames, the
/// RecursionError path (3.11 allows 50 units of headroom) and C code that does not count.
pub(crate) const RESERVE: usize = 128 * 1024;

/// Lifecycle of a fiber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FiberState {
    /// Created, never switched to.
    NotStarted,
    /// On this thread's resume chain (executing, or resuming a nested fiber).
    Running,
    /// Started and suspended in `suspend()`.
    Suspended,
    /// Finished (returned, raised, killed, or thrown into before starting).
    Dead,
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);
thread_local! {
    static THREAD_ID: u64 = NEXT_THREAD.fetch_add(1, Relaxed);
}

/// Identity of the OS thread + thread state a fiber belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Owner {
    /// Never reused, unlike OS thread ids and thread-state addresses.
    thread: u64,
    tstate: usize,
}

impl Owner {
    fn here(_py: Python<'_>) -> Option<Owner> {
        let thread = THREAD_ID.try_with(|t| *t).ok()?;
        // SAFETY: the GIL is held (we have a `Python` token), so the thread state exists.
        let tstate = unsafe { pyo3::ffi::PyThreadState_Get() } as usize;
        Some(Owner { thread, tstate })
    }
}

/// Choose the stack size and the starting recursion depths of a fiber.
///
/// The stack must hold every recursion level the interpreter will allow before it raises
/// RecursionError. The default size is a large reservation ([`DEFAULT_STACK_SIZE`], only
/// address space until touched) that holds any budget up to ~500,000 levels on 3.11, so a
/// recursion limit raised later, even while the fiber runs, still finds room; a larger
/// budget grows it. An explicit small size makes the fiber start deeper instead (see
/// [`start_depth`]). On 3.11 (`c_limit` is `None`) the budget is the Python recursion
/// limit, which counts C-mediated recursion too. From 3.12 the C stack is guarded by the
/// fixed C-recursion budget alone, and Python recursion starts at 0 as on a new thread.
pub(crate) fn stack_plan(
    requested: Option<usize>,
    limit: i32,
    c_limit: Option<i32>,
) -> (usize, StartDepth) {
    let size = requested.unwrap_or_else(|| DEFAULT_STACK_SIZE.max(needed_size(limit, c_limit)));
    (size, start_depth(size, limit, c_limit))
}

/// Recursion levels the interpreter allows and the C stack budgeted for each.
fn budget(limit: i32, c_limit: Option<i32>) -> (usize, usize) {
    let (levels, per_level) = match c_limit {
        None => (limit, BYTES_PER_LEVEL),
        Some(c) => (c, BYTES_PER_C_LEVEL),
    };
    (usize::try_from(levels.max(1)).unwrap_or(1), per_level)
}

/// The smallest stack on which the whole recursion budget fits, with the frame credit.
pub(crate) fn needed_size(limit: i32, c_limit: Option<i32>) -> usize {
    let (levels, per_level) = budget(limit, c_limit);
    levels
        .saturating_add(FRAME_CREDIT as usize)
        .saturating_mul(per_level)
        .saturating_add(RESERVE)
}

/// Python recursion levels a fiber with room to spare starts *below* zero: the frames a
/// fiber's host puts under the code it runs (the sync loop: `trio.run`, Trio's run loop, the
/// loop task and its driver, nine frames) are not charged to that code, so a coroutine in the
/// fiber can recurse at least as deep as on a stock loop run from a script's top level.
pub(crate) const FRAME_CREDIT: i32 = 16;

/// The recursion depths a fiber with a `size`-byte stack starts at: `-FRAME_CREDIT` when
/// the budget (plus the credit) fits, deeper by the levels that do not, so that
/// RecursionError comes before the guard.
pub(crate) fn start_depth(size: usize, limit: i32, c_limit: Option<i32>) -> StartDepth {
    let (levels, per_level) = budget(limit, c_limit);
    let fits = size.saturating_sub(RESERVE) / per_level;
    let short = |levels: usize| i64::try_from(levels).unwrap_or(i64::MAX) - fits as i64;
    let clamp = |d: i64, floor: i32| i32::try_from(d.max(i64::from(floor))).unwrap_or(i32::MAX);
    match c_limit {
        None => StartDepth {
            py: clamp(short(levels), -FRAME_CREDIT),
            c: 0,
        },
        // Python recursion no longer uses the C stack: only the C budget (with the same
        // credit for the host's frames, which count as C levels too) must fit.
        Some(_) => StartDepth {
            py: -FRAME_CREDIT,
            c: clamp(short(levels), -FRAME_CREDIT),
        },
    }
}

/// A stackful coroutine running Python code on its own C stack.
///
/// `Fiber` is bound to the thread that created it: every operation checks the calling
/// thread first and fails with [`FiberError::WrongThread`]. The two exceptions are
/// [`Fiber::visit_refs`] and [`Fiber::clear_refs`] (the GC's traverse/clear), which only read
/// or drop object references and are serialised with the owner by the GIL.
pub struct Fiber {
    owner: Owner,
    state: Cell<FiberState>,
    /// Whether the function began running (a fiber thrown into before starting never does).
    started: Cell<bool>,
    /// The function to run; taken by the first switch.
    entry: RefCell<Option<Entry>>,
    stack_size: Option<usize>,
    /// Created by the first switch; `None` before and after the fiber's life.
    co: UnsafeCell<Option<Co>>,
    /// Pinned: the fiber's stack points into it.
    shared: Box<Shared>,
}

// SAFETY: every method that touches `state`/`entry`/`co`/`shared` first checks that it runs
// on the owning thread (`check_thread`), except `visit_refs`/`clear_refs`, which run under
// the GIL while the owner is outside the switch bracket (the bracket never releases the GIL)
// and never hold a borrow across code that could release it. Drop leaks instead of touching
// the coroutine when it runs on another thread.
unsafe impl Send for Fiber {}
// SAFETY: see `Send` above; shared access is GIL-serialised.
unsafe impl Sync for Fiber {}

impl Fiber {
    /// A new fiber that will call `func(*args, **kwargs)` on its first switch.
    pub fn new(
        py: Python<'_>,
        func: Py<PyAny>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
        stack_size: Option<usize>,
    ) -> Result<Fiber, FiberError> {
        let owner = Owner::here(py).ok_or(FiberError::WrongThread)?;
        stats::created();
        Ok(Fiber {
            owner,
            state: Cell::new(FiberState::NotStarted),
            started: Cell::new(false),
            entry: RefCell::new(Some(Entry { func, args, kwargs })),
            stack_size: stack_size.map(|s| s.max(stack::MIN_STACK_SIZE)),
            co: UnsafeCell::new(None),
            shared: Box::new(Shared::new(SavedState::blank(StartDepth { py: 0, c: 0 }))),
        })
    }

    /// Current lifecycle state.
    pub fn state(&self) -> FiberState {
        self.state.get()
    }

    /// Whether the fiber's function began running.
    pub fn started(&self) -> bool {
        self.started.get()
    }

    /// Whether the calling thread is the one that created the fiber (the only one that may
    /// resume it).
    pub fn owned_by_current_thread(&self, py: Python<'_>) -> bool {
        Owner::here(py) == Some(self.owner)
    }

    fn check_thread(&self, py: Python<'_>) -> Result<(), FiberError> {
        if Owner::here(py) == Some(self.owner) {
            Ok(())
        } else {
            Err(FiberError::WrongThread)
        }
    }

    /// Start or resume the fiber with `value`; returns what it passes to `suspend()` or its
    /// function's return value. `this` is the fiber's Python object (for `current()`).
    pub fn switch(
        &self,
        py: Python<'_>,
        value: Py<PyAny>,
        this: &Bound<'_, PyAny>,
    ) -> Result<Py<PyAny>, FiberError> {
        self.check_thread(py)?;
        match self.state.get() {
            FiberState::Dead => Err(FiberError::Dead),
            FiberState::Running => Err(FiberError::Running),
            FiberState::NotStarted => {
                self.start(py)?;
                self.run(Resume::Value(value), this)
            }
            FiberState::Suspended => self.run(Resume::Value(value), this),
        }
    }

    /// Raise `err` at the fiber's suspension point. A never-started fiber is marked dead
    /// without running and `err` is returned as [`FiberError::Raised`].
    pub fn throw(
        &self,
        py: Python<'_>,
        err: PyErr,
        this: &Bound<'_, PyAny>,
    ) -> Result<Py<PyAny>, FiberError> {
        self.check_thread(py)?;
        match self.state.get() {
            FiberState::Dead => Err(FiberError::Dead),
            FiberState::Running => Err(FiberError::Running),
            FiberState::NotStarted => {
                self.state.set(FiberState::Dead);
                let entry = self.entry.borrow_mut().take();
                drop(entry);
                stats::finished();
                Err(FiberError::Raised(err))
            }
            FiberState::Suspended => self.run(Resume::Throw(err), this),
        }
    }

    /// First switch: take the entry, get a stack, build the coroutine. The fiber's context
    /// is a copy of the current one (documented decision, design/fibers.md).
    fn start(&self, py: Python<'_>) -> Result<(), FiberError> {
        let Some(entry) = self.entry.borrow_mut().take() else {
            self.state.set(FiberState::Dead);
            return Err(FiberError::Cleared);
        };
        // SAFETY: GIL held; reads the interpreter's recursion limit.
        let limit = unsafe { pyo3::ffi::Py_GetRecursionLimit() };
        let c_limit = state::c_recursion_limit();
        let (size, _) = stack_plan(self.stack_size, limit, c_limit);
        let acquired = stack::acquire(size).or_else(|e| match self.stack_size {
            // The default reservation was refused (`ulimit -v`, strict overcommit): take
            // what the budget needs, at least a thread's default.
            None if e.raw_os_error() == Some(libc::ENOMEM) => {
                stack::acquire(stack::FALLBACK_STACK_SIZE.max(needed_size(limit, c_limit)))
                    .or_else(|_| stack::acquire(stack::FALLBACK_STACK_SIZE))
            }
            _ => Err(e),
        });
        let stack = match acquired {
            Ok(s) => s,
            Err(source) => {
                *self.entry.borrow_mut() = Some(entry);
                return Err(FiberError::Stack { size, source });
            }
        };
        let depth = start_depth(stack.size(), limit, c_limit);
        // SAFETY: GIL held; returns a new reference or NULL with an exception set.
        let ctx = unsafe { pyo3::ffi::PyContext_CopyCurrent() };
        if ctx.is_null() {
            *self.entry.borrow_mut() = Some(entry);
            stack::release(stack);
            return Err(FiberError::Raised(PyErr::fetch(py)));
        }
        let mut saved = SavedState::new_fiber(depth);
        // SAFETY: GIL held; `ctx` is an owned context reference; `saved` is not restored.
        unsafe { saved.set_context(ctx) };
        // SAFETY: the fiber has never run, so nothing else refers to the saved state (the
        // previous value is an empty state that owns nothing).
        unsafe { *self.shared.saved.get() = saved };
        // SAFETY: `shared` is boxed and lives as long as `self`, which owns the coroutine;
        // when the coroutine is leaked, the stack is never resumed again.
        let co = unsafe { switch::init(&*self.shared, stack, entry) };
        // SAFETY: owner thread (checked by the caller); no reference into `co` exists yet.
        unsafe { *self.co.get() = Some(co) };
        self.started.set(true);
        Ok(())
    }

    fn run(&self, input: Resume, this: &Bound<'_, PyAny>) -> Result<Py<PyAny>, FiberError> {
        let out = self.resume_raw(input, this.as_ptr());
        match out {
            Outcome::Suspended(v) => Ok(v),
            Outcome::Finished(r) => {
                stats::finished();
                r.map_err(FiberError::Raised)
            }
        }
    }

    /// Resume (state must be NotStarted-with-coroutine or Suspended; checked by callers).
    fn resume_raw(&self, input: Resume, pyobj: *mut pyo3::ffi::PyObject) -> Outcome {
        // SAFETY: owner thread (callers check); the only other access to `co` is `Drop`
        // (impossible while a method runs) and re-entrant calls, which stop at the
        // `Running` state check before touching `co`.
        let co = unsafe { (*self.co.get()).as_mut() }.expect("fiber has no coroutine");
        self.state.set(FiberState::Running);
        let out = match input {
            // SAFETY: GIL held on the owning thread; the fiber is started and suspended
            // (state was Suspended), so not on the chain; `pyobj` is null or the fiber's
            // object, kept alive by the caller.
            Resume::Throw(e) if co.started() => unsafe {
                switch::throw(co, &self.shared, e, pyobj)
            },
            // SAFETY: as above, or the coroutine is fresh from `init` with this `shared`.
            input => unsafe { switch::resume(co, &self.shared, input, pyobj) },
        };
        match out {
            Outcome::Suspended(_) => self.state.set(FiberState::Suspended),
            Outcome::Finished(_) => {
                self.state.set(FiberState::Dead);
                // SAFETY: owner thread; the `co` borrow above has ended.
                if let Some(co) = unsafe { (*self.co.get()).take() } {
                    stack::release(co.into_stack());
                }
            }
        }
        out
    }

    /// Call `f` with every object reference the fiber owns (borrowed), for the GC.
    pub fn visit_refs(&self, mut f: impl FnMut(*mut pyo3::ffi::PyObject)) {
        if let Ok(entry) = self.entry.try_borrow() {
            if let Some(e) = entry.as_ref() {
                f(e.func.as_ptr());
                f(e.args.as_ptr());
                if let Some(k) = &e.kwargs {
                    f(k.as_ptr());
                }
            }
        }
        if self.state.get() == FiberState::Suspended {
            // SAFETY: GIL held; a suspended fiber's state is saved (not restored) and the
            // owner is not inside a bracket.
            unsafe { (*self.shared.saved.get()).for_each_ref(f) };
        }
    }

    /// Drop the object references the GC may need to break a cycle. A suspended fiber stays
    /// resumable (with an empty context and no handled exception).
    pub fn clear_refs(&self) {
        let entry = self.entry.try_borrow_mut().ok().and_then(|mut e| e.take());
        drop(entry);
        if self.state.get() == FiberState::Suspended {
            // SAFETY: GIL held; the state is saved, not restored; the shim nulls each field
            // before decref'ing it, so code run by a decref sees a consistent state.
            unsafe { (*self.shared.saved.get()).drop_refs() };
        }
    }

    /// Leak the coroutine (and its stack): never unwind over interpreter frames.
    fn leak(co: Co, py: Python<'_>, why: Option<&str>) {
        std::mem::forget(co);
        stats::leaked();
        if let Some(why) = why {
            let msg = std::ffi::CString::new(format!("fiber leaked: {why}")).unwrap_or_default();
            if let Err(e) = PyErr::warn(py, &PyRuntimeWarning::type_object(py), &msg, 1) {
                e.write_unraisable(py, None);
            }
        }
    }

    /// Destructor path for a started, unfinished fiber.
    fn kill_or_leak(&mut self, co: Co) {
        Python::attach(|py| {
            if Owner::here(py) != Some(self.owner) {
                return Self::leak(
                    co,
                    py,
                    Some(
                        "destroyed in a thread other than its own; its finally blocks did not run",
                    ),
                );
            }
            // SAFETY: GIL held.
            if unsafe { state::is_finalizing() } {
                return Self::leak(co, py, None);
            }
            let pending = PyErr::take(py);
            // SAFETY: owner thread; `co` was taken out of `self.co` only to be dropped here.
            unsafe { *self.co.get() = Some(co) };
            let out = self.resume_raw(Resume::Throw(FiberExit::new_err(())), std::ptr::null_mut());
            match out {
                Outcome::Suspended(v) => {
                    drop(v);
                    // SAFETY: owner thread; the resume above has returned.
                    let co = unsafe { (*self.co.get()).take() }
                        .expect("suspended fiber has a coroutine");
                    Self::leak(
                        co,
                        py,
                        Some("it caught FiberExit and suspended again instead of dying"),
                    );
                }
                Outcome::Finished(r) => {
                    stats::killed();
                    if let Err(e) = r {
                        e.write_unraisable(py, None);
                    }
                }
            }
            if let Some(e) = pending {
                e.restore(py);
            }
        });
    }
}

impl Drop for Fiber {
    fn drop(&mut self) {
        stats::dropped();
        let co = self.co.get_mut().take();
        match (self.state.get(), co) {
            (FiberState::Suspended, Some(co)) => self.kill_or_leak(co),
            (_, Some(co)) if co.done() => stack::release(co.into_stack()),
            // A started coroutine that is not done must never be dropped (corosensei would
            // force-unwind over interpreter frames). Unreachable in practice: a running fiber
            // is referenced by its resumer.
            (_, Some(co)) => {
                Python::attach(|py| Self::leak(co, py, Some("destroyed while running")))
            }
            (_, None) => {}
        }
    }
}

/// Return `value` to the resumer of the innermost running fiber of this thread; evaluates
/// to the value of the next `switch()` (or raises what `throw()` sends).
pub fn suspend(_py: Python<'_>, value: Py<PyAny>) -> Result<Py<PyAny>, FiberError> {
    // SAFETY: Python code calling this runs on the innermost chain fiber's stack whenever
    // the chain is non-empty (the chain is pushed/popped only around the bracket).
    unsafe { switch::suspend(value) }
}

/// The Python object of the running fiber, or `None` outside fibers (and inside a fiber
/// being killed by its destructor, whose object is already being destroyed).
pub fn current(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    let p = switch::current_pyobj()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null chain pointer is a borrowed reference kept alive by the active
    // `switch()`/`throw()` call on this thread.
    Some(unsafe { Bound::from_borrowed_ptr(py, p) })
}

/// Raised when a Rust-level invariant about the fiber is broken (should never be seen).
#[allow(dead_code)]
pub(crate) fn internal(msg: &str) -> PyErr {
    PyRuntimeError::new_err(format!("internal fiber error: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_stack_holds_large_limits_from_depth_zero() {
        // A thread starts at depth 0; so does a fiber, with room for a much raised limit.
        let (size, depth) = stack_plan(None, 1000, None);
        assert_eq!(size, DEFAULT_STACK_SIZE);
        assert_eq!(depth.py, -FRAME_CREDIT);
        const { assert!((DEFAULT_STACK_SIZE - RESERVE) / BYTES_PER_LEVEL >= 500_000) };
        let (size, depth) = stack_plan(None, 100_000, None);
        assert_eq!((size, depth.py), (DEFAULT_STACK_SIZE, -FRAME_CREDIT));
        // Beyond the reservation it grows with the limit.
        let (size, depth) = stack_plan(None, 1_000_000, None);
        assert!(size >= 1_000_000 * BYTES_PER_LEVEL + RESERVE);
        assert_eq!(depth.py, -FRAME_CREDIT);
    }

    #[test]
    fn a_refused_reservation_falls_back_to_a_deeper_start() {
        let size = stack::FALLBACK_STACK_SIZE;
        let fits = (size - RESERVE) / BYTES_PER_LEVEL;
        assert_eq!(start_depth(size, 100_000, None).py, 100_000 - fits as i32);
        assert_eq!(start_depth(size, 1000, None).py, -FRAME_CREDIT);
        // The credit only uses room the stack has.
        let (levels, _) = budget(1000, None);
        let snug = RESERVE + (levels + 5) * BYTES_PER_LEVEL;
        assert_eq!(start_depth(snug, 1000, None).py, -5);
    }

    #[test]
    fn small_explicit_stack_starts_deeper() {
        let (size, depth) = stack_plan(Some(RESERVE + 100 * BYTES_PER_LEVEL), 1000, None);
        assert_eq!(size, RESERVE + 100 * BYTES_PER_LEVEL);
        assert_eq!(depth.py, 900);
        let (_, depth) = stack_plan(Some(RESERVE), 1000, None);
        assert_eq!(depth.py, 1000);
    }

    #[test]
    fn c_budget_plans_the_stack_from_3_12() {
        // The default stack holds the whole C budget and the host's frames' credit.
        let (size, depth) = stack_plan(None, 1000, Some(10_000));
        assert!(size >= 10_000 * BYTES_PER_C_LEVEL + RESERVE);
        assert_eq!(
            depth,
            StartDepth {
                py: -FRAME_CREDIT,
                c: -FRAME_CREDIT
            }
        );
        // A raised Python limit changes nothing: it no longer guards the C stack.
        assert_eq!(stack_plan(None, 100_000, Some(10_000)).0, size);
        // An explicit small stack starts deeper in C recursion only.
        let (_, depth) = stack_plan(Some(RESERVE + 100 * BYTES_PER_C_LEVEL), 1000, Some(1500));
        assert_eq!(
            depth,
            StartDepth {
                py: -FRAME_CREDIT,
                c: 1400
            }
        );
    }
}
