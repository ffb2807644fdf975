//! The switch primitives: the only functions that move execution between stacks.
//!
//! * [`init`] builds the coroutine of a fiber that has never run;
//! * [`resume`] / [`throw`] run a fiber until it suspends or finishes — the *switch
//!   bracket*, the only place the thread state's per-context fields change hands;
//! * [`suspend`] returns from the innermost running fiber to its resumer.
//!
//! Everything else in the crate goes through the safe [`super::Fiber`].
//!
//! The resume chain: each thread keeps the fibers it is currently running, outermost first.
//! A fiber is on the chain exactly while its `resume` call is active, so the innermost entry
//! is the fiber whose stack is executing. `suspend` always returns to the resumer of that
//! innermost fiber (the asymmetric model).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::error::{FiberError, FiberExit};
use super::stack::FiberStack;
use super::state::{self, Carry, SavedState};
use super::stats;

/// What a resumer sends into a fiber.
pub(crate) enum Resume {
    /// Becomes the return value of the fiber's `suspend()` (ignored by a fiber's start).
    Value(Py<PyAny>),
    /// Raised by the fiber's `suspend()`.
    Throw(PyErr),
}

/// What a fiber's stack hands back when its function has returned.
pub(crate) struct Finished {
    result: PyResult<Py<PyAny>>,
    carry: Carry,
}

/// The result of one [`resume`].
pub(crate) enum Outcome {
    /// The fiber called `suspend(value)`.
    Suspended(Py<PyAny>),
    /// The fiber's function returned (or raised); the fiber is finished.
    Finished(PyResult<Py<PyAny>>),
}

pub(crate) type FiberYielder = Yielder<Resume, Py<PyAny>>;
pub(crate) type Co = Coroutine<Resume, Py<PyAny>, Finished, FiberStack>;

/// The function a fiber runs.
pub(crate) struct Entry {
    pub(crate) func: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
    pub(crate) kwargs: Option<Py<PyDict>>,
}

/// The heap-pinned part of a fiber that its own stack refers to. It must outlive the
/// coroutine (or the coroutine must be leaked with it).
pub(crate) struct Shared {
    /// The fiber's interpreter state while it is not running (empty while it runs).
    pub(crate) saved: UnsafeCell<SavedState>,
    /// Set by the fiber's first code on its own stack; valid while the coroutine lives.
    yielder: Cell<*const FiberYielder>,
}

impl Shared {
    pub(crate) fn new(saved: SavedState) -> Self {
        Shared {
            saved: UnsafeCell::new(saved),
            yielder: Cell::new(std::ptr::null()),
        }
    }
}

/// One entry of the resume chain.
#[derive(Clone, Copy)]
struct Link {
    shared: *const Shared,
    /// The Python `Fiber` object being resumed (borrowed; kept alive by the resumer's call),
    /// or null when the fiber is being killed by its destructor.
    pyobj: *mut pyo3::ffi::PyObject,
}

thread_local! {
    static CHAIN: RefCell<Vec<Link>> = const { RefCell::new(Vec::new()) };
}

/// The Python object of the innermost running fiber of this thread (borrowed), or `None`
/// when no fiber is running. Null when the innermost fiber is being killed by its destructor.
pub(crate) fn current_pyobj() -> Option<*mut pyo3::ffi::PyObject> {
    CHAIN.with(|c| c.borrow().last().map(|l| l.pyobj))
}

/// Build the coroutine of a fiber that has never run.
///
/// # Safety
/// `shared` points to the fiber's pinned [`Shared`], which outlives the returned coroutine
/// (or is leaked together with it).
pub(crate) unsafe fn init(shared: *const Shared, stack: FiberStack, entry: Entry) -> Co {
    let shared = shared as usize; // a plain address keeps the closure 'static
    Coroutine::with_stack(stack, move |y: &FiberYielder, first: Resume| -> Finished {
        // SAFETY: `shared` outlives the coroutine (caller contract of `init`), and `y` lives
        // on this stack for as long as the coroutine is not finished.
        unsafe { (*(shared as *const Shared)).yielder.set(y) };
        let mut start = Start {
            entry: Some(entry),
            first: Some(first),
            result: None,
        };
        // SAFETY: this is the first code on the fiber's own stack and the resumer has just
        // restored the fiber's never-run state (`resume` is the only caller of the coroutine).
        let carry = unsafe { state::run_bottom(start_body, (&raw mut start).cast::<c_void>()) };
        let result = start.result.take().unwrap_or_else(|| {
            Err(PyRuntimeError::new_err(
                "internal error: fiber body produced no result",
            ))
        });
        Finished { result, carry }
    })
}

struct Start {
    entry: Option<Entry>,
    first: Option<Resume>,
    result: Option<PyResult<Py<PyAny>>>,
}

/// Runs below the fiber's bottom C frame: call the entry, turn `FiberExit` into `None`.
/// Panics are caught here: they must never unwind through `fs_run_bottom` (a C frame).
extern "C" fn start_body(arg: *mut c_void) {
    // SAFETY: `arg` is the `Start` on the fiber stack passed by `init`'s closure, which
    // outlives this call.
    let start = unsafe { &mut *arg.cast::<Start>() };
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the thread holds the GIL: the resumer held it and a stack switch does
        // not release it.
        let py = unsafe { Python::assume_attached() };
        drop(start.first.take()); // the first switch's value is ignored
        let Some(entry) = start.entry.take() else {
            return Err(PyRuntimeError::new_err(
                "internal error: fiber started twice",
            ));
        };
        let r = entry.func.bind(py).call(
            entry.args.bind(py),
            entry.kwargs.as_ref().map(|k| k.bind(py)),
        );
        drop(entry);
        match r {
            Ok(v) => Ok(v.unbind()),
            Err(e) if e.is_instance_of::<FiberExit>(py) => Ok(py.None()),
            Err(e) => Err(e),
        }
    }));
    start.result = Some(r.unwrap_or_else(|_| {
        Err(PyRuntimeError::new_err(
            "internal error: Rust panic inside a fiber",
        ))
    }));
}

/// Run the fiber until it suspends or finishes: the switch bracket.
///
/// ```text
///   resumer stack                        fiber stack
///   parent.save(); fiber.restore()  -->  (runs; thread state = fiber's fields)
///   fiber.save(); parent.restore()  <--  suspend() / return
/// ```
///
/// # Safety
/// * GIL held, on the thread that created the fiber (the thread state is the one whose
///   fields the fiber's saved state came from);
/// * the fiber is started-and-suspended or never-run with `co` fresh from [`init`] and
///   `shared` the pointer given to it; it is not on this thread's resume chain;
/// * `pyobj` is null or a borrowed pointer to the fiber's Python object that stays alive
///   for the whole call.
pub(crate) unsafe fn resume(
    co: &mut Co,
    shared: &Shared,
    input: Resume,
    pyobj: *mut pyo3::ffi::PyObject,
) -> Outcome {
    let mut parent = SavedState::empty();
    // SAFETY: GIL held (caller contract), so the thread has a current thread state.
    let ts = unsafe { pyo3::ffi::PyThreadState_Get() };
    CHAIN.with(|c| c.borrow_mut().push(Link { shared, pyobj }));
    stats::switched();
    let saved = shared.saved.get();
    // ---- bracket: from here to the matching restore no Python code runs (no decref, no
    // allocation that could collect, no GIL release). `input` and the results only move.
    // SAFETY: GIL held on the owning thread; `parent` is empty; `saved` holds the fiber's
    // state (not restored: the fiber is not running), and the coroutine switch follows
    // immediately.
    let r = unsafe {
        let carry = parent.save(ts);
        (*saved).restore(ts, carry);
        co.resume(input)
    };
    let out = match r {
        CoroutineResult::Yield(v) => {
            // SAFETY: back on the resumer's stack with the fiber's fields live; `parent`
            // was saved on this very stack by the code above.
            unsafe {
                let carry = (*saved).save(ts);
                parent.restore(ts, carry);
            }
            Outcome::Suspended(v)
        }
        CoroutineResult::Return(fin) => {
            // SAFETY: as above; the fiber's bottom C frame is gone, so its final tracing
            // flag comes from `fin.carry` instead of the thread state.
            unsafe {
                (*saved).save(ts);
                parent.restore(ts, fin.carry);
            }
            Outcome::Finished(fin.result)
        }
    };
    // ---- end of bracket.
    CHAIN.with(|c| c.borrow_mut().pop());
    if matches!(out, Outcome::Finished(_)) {
        // SAFETY: the fiber finished: its interpreter frames are popped and its state is
        // saved, not restored. Decrefs here run in the resumer's context, which is live.
        unsafe { (*saved).clear_finished() };
    }
    out
}

/// Raise `err` at the fiber's suspension point and run it until it suspends or finishes.
///
/// # Safety
/// As for [`resume`]; the fiber must have started (a never-run fiber is not thrown into:
/// the safe layer marks it dead instead).
pub(crate) unsafe fn throw(
    co: &mut Co,
    shared: &Shared,
    err: PyErr,
    pyobj: *mut pyo3::ffi::PyObject,
) -> Outcome {
    debug_assert!(co.started());
    // SAFETY: forwarded caller contract.
    unsafe { resume(co, shared, Resume::Throw(err), pyobj) }
}

/// Return `value` to the resumer of the innermost running fiber; evaluates to what the next
/// `switch()` sends (or raises what `throw()` sends).
///
/// # Safety
/// The caller is running on the stack of the innermost fiber of this thread's resume chain.
/// This holds for any code that runs while the chain is non-empty, because nothing but the
/// bracket itself runs between a chain push/pop and the stack switch.
pub(crate) unsafe fn suspend(value: Py<PyAny>) -> Result<Py<PyAny>, FiberError> {
    let Some(link) = CHAIN.with(|c| c.borrow().last().copied()) else {
        return Err(FiberError::NotInFiber);
    };
    // SAFETY: the link's `Shared` belongs to a running fiber, which outlives its resume call.
    let y = unsafe { (*link.shared).yielder.get() };
    debug_assert!(!y.is_null());
    // SAFETY: `y` points into the running fiber's stack, which is the one executing now
    // (caller contract); the yielder stays valid until the coroutine finishes.
    match unsafe { &*y }.suspend(value) {
        Resume::Value(v) => Ok(v),
        Resume::Throw(e) => Err(FiberError::Raised(e)),
    }
}
