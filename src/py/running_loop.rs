//! The thread state a running loop installs and puts back: asyncio's running loop, the
//! thread's async-generator hooks and sniffio's current library.
//!
//! Every batch of callbacks run inside Trio, and every `run_forever` of the sync loop,
//! swaps these: callbacks must see their loop as the running one and must have their
//! async generators finalised by it, and sniffio must say "asyncio" while they run. In
//! Python that took `sys.get_asyncgen_hooks()` (a struct sequence), two
//! `sys.set_asyncgen_hooks(...)` calls (argument parsing, two bound methods) and two
//! `_set_running_loop` calls per swap: about 8,000 instructions of a `run_forever` cycle
//! that runs one callback (benches/README.md, "Issue 13, fourth slice"). Here the hooks
//! are read and written through the fiber shim (`csrc/shim.c`, with the audit events of
//! `sys.set_asyncgen_hooks`), the loop's own hooks are bound once, and the running loop is
//! set through asyncio's C functions.
//!
//! What is swapped and when (design/loops.md, "Running-loop state"):
//! - [`RunningLoop::batch`]: around one `_run_ready` call. sniffio always; with `in_trio`,
//!   the hooks too and, if the loop's driver asked for it, the running loop.
//! - [`RunningLoop::enter_caller_run`] / [`RunningLoop::leave_caller_run`]: the caller's side
//!   of the sync loop's `run_forever`: the owning thread (`_thread_id`), the running
//!   loop and the hooks, for the whole run. The hooks the caller had are kept here until
//!   the run ends.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::{intern, PyTraverseError};

use super::asyncio_refs::{c_get_running_loop, c_set_running_loop, sniffio_thread_local};
use super::gil::GilCell;

mod shim {
    use super::*;
    extern "C" {
        pub(super) fn fs_asyncgen_hooks_get(
            firstiter: *mut *mut ffi::PyObject,
            finalizer: *mut *mut ffi::PyObject,
        );
        pub(super) fn fs_asyncgen_hooks_set(
            firstiter: *mut ffi::PyObject,
            finalizer: *mut ffi::PyObject,
        ) -> c_int;
    }
}

/// A pair of async-generator hooks (`None`: unset).
#[derive(Default)]
pub(crate) struct AsyncgenHooks {
    firstiter: Option<Py<PyAny>>,
    finalizer: Option<Py<PyAny>>,
}

impl AsyncgenHooks {
    /// The calling thread's hooks (`sys.get_asyncgen_hooks()`).
    fn current(py: Python<'_>) -> AsyncgenHooks {
        let mut firstiter = std::ptr::null_mut();
        let mut finalizer = std::ptr::null_mut();
        // SAFETY: the GIL is held (`py`); the shim stores two new references or NULLs.
        unsafe { shim::fs_asyncgen_hooks_get(&mut firstiter, &mut finalizer) };
        // SAFETY: new references (or NULL) owned by us from here on.
        unsafe {
            AsyncgenHooks {
                firstiter: Bound::from_owned_ptr_or_opt(py, firstiter).map(Bound::unbind),
                finalizer: Bound::from_owned_ptr_or_opt(py, finalizer).map(Bound::unbind),
            }
        }
    }

    /// Make these the calling thread's hooks (`sys.set_asyncgen_hooks(...)`).
    fn install(&self, py: Python<'_>) -> PyResult<()> {
        let ptr = |h: &Option<Py<PyAny>>| h.as_ref().map_or(std::ptr::null_mut(), Py::as_ptr);
        // SAFETY: the GIL is held; both pointers are borrowed references kept alive by
        // `self` for the call (or NULL); the shim takes references of its own.
        let rc = unsafe { shim::fs_asyncgen_hooks_set(ptr(&self.firstiter), ptr(&self.finalizer)) };
        if rc < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(())
    }

    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.firstiter)?;
        visit.call(&self.finalizer)
    }
}

/// One loop's share of the swapped state.
pub(crate) struct RunningLoop {
    /// The loop's own hooks (`loop._asyncgen_firstiter_hook`, `..._finalizer_hook`),
    /// bound on first use.
    own: GilCell<Option<(Py<PyAny>, Py<PyAny>)>>,
    /// The hooks the caller of the sync loop's `run_forever` had, until it returns.
    caller: GilCell<Option<AsyncgenHooks>>,
    /// A batch run inside Trio also makes this loop asyncio's running loop (the async
    /// loop: its Trio tasks must not see it as running between batches).
    batch_sets_running_loop: AtomicBool,
}

impl RunningLoop {
    pub(crate) fn new() -> RunningLoop {
        RunningLoop {
            own: GilCell::new(None),
            caller: GilCell::new(None),
            batch_sets_running_loop: AtomicBool::new(false),
        }
    }

    pub(crate) fn batch_sets_running_loop(&self) -> bool {
        self.batch_sets_running_loop.load(Ordering::Relaxed)
    }

    pub(crate) fn set_batch_sets_running_loop(&self, value: bool) {
        self.batch_sets_running_loop.store(value, Ordering::Relaxed);
    }

    /// The loop's own hooks.
    fn own_hooks(&self, loop_obj: &Bound<'_, PyAny>) -> PyResult<AsyncgenHooks> {
        let py = loop_obj.py();
        if let Some((a, b)) = self.own.with(py, |o| {
            o.as_ref().map(|(a, b)| (a.clone_ref(py), b.clone_ref(py)))
        }) {
            return Ok(AsyncgenHooks {
                firstiter: Some(a),
                finalizer: Some(b),
            });
        }
        let a = loop_obj
            .getattr(intern!(py, "_asyncgen_firstiter_hook"))?
            .unbind();
        let b = loop_obj
            .getattr(intern!(py, "_asyncgen_finalizer_hook"))?
            .unbind();
        let pair = (a.clone_ref(py), b.clone_ref(py));
        let old = self.own.with(py, |o| o.replace(pair));
        drop(old);
        Ok(AsyncgenHooks {
            firstiter: Some(a),
            finalizer: Some(b),
        })
    }

    /// Run `body` (one `_run_ready` call) with sniffio saying "asyncio" and, with
    /// `in_trio`, the loop's hooks and (if asked) the loop as the running loop; everything
    /// is put back before returning, whatever `body` did.
    pub(crate) fn batch(
        &self,
        loop_obj: &Bound<'_, PyAny>,
        in_trio: bool,
        body: impl FnOnce() -> PyResult<i32>,
    ) -> PyResult<i32> {
        let py = loop_obj.py();
        let tl = sniffio_thread_local(py)?;
        let name = intern!(py, "name");
        let prev_library = tl.getattr(name)?;
        tl.setattr(name, intern!(py, "asyncio"))?;
        let result = if in_trio {
            self.batch_in_trio(loop_obj, body)
        } else {
            body()
        };
        let restored = tl.setattr(name, prev_library);
        let status = result?;
        restored?;
        Ok(status)
    }

    fn batch_in_trio(
        &self,
        loop_obj: &Bound<'_, PyAny>,
        body: impl FnOnce() -> PyResult<i32>,
    ) -> PyResult<i32> {
        let py = loop_obj.py();
        let prev_hooks = AsyncgenHooks::current(py);
        self.own_hooks(loop_obj)?.install(py)?;
        let prev_loop = if self.batch_sets_running_loop() {
            let prev = c_get_running_loop(py)?.call0();
            match prev {
                Ok(prev) => match c_set_running_loop(py)?.call1((loop_obj,)) {
                    Ok(_) => Some(prev),
                    Err(e) => {
                        prev_hooks.install(py)?;
                        return Err(e);
                    }
                },
                Err(e) => {
                    prev_hooks.install(py)?;
                    return Err(e);
                }
            }
        } else {
            None
        };
        let result = body();
        let loop_restored = match prev_loop {
            Some(prev) => c_set_running_loop(py)?.call1((prev,)).map(drop),
            None => Ok(()),
        };
        let hooks_restored = prev_hooks.install(py);
        let status = result?;
        loop_restored?;
        hooks_restored?;
        Ok(status)
    }

    /// The caller's side of the sync loop's `run_forever`, once the loop is marked
    /// running: the calling thread owns it (`_thread_id`), it is the running loop, and
    /// its hooks are the thread's; the caller's hooks are kept for
    /// [`leave_caller_run`](Self::leave_caller_run), which must be called whatever this
    /// returns.
    pub(crate) fn enter_caller_run(&self, loop_obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = loop_obj.py();
        let prev = AsyncgenHooks::current(py);
        let old = self.caller.with(py, |c| c.replace(prev));
        drop(old);
        // SAFETY: PyThread_get_thread_ident only reads the calling thread's id.
        let ident = unsafe { ffi::PyThread_get_thread_ident() };
        loop_obj.setattr(intern!(py, "_thread_id"), ident)?;
        c_set_running_loop(py)?.call1((loop_obj,))?;
        self.own_hooks(loop_obj)?.install(py)
    }

    /// End what [`enter_caller_run`](Self::enter_caller_run) began (also after it
    /// failed half-way): no owning thread, no running loop, the caller's hooks back.
    pub(crate) fn leave_caller_run(&self, loop_obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = loop_obj.py();
        let owner = loop_obj.setattr(intern!(py, "_thread_id"), py.None());
        let running = c_set_running_loop(py).and_then(|f| f.call1((py.None(),)).map(drop));
        let prev = self.caller.with(py, Option::take);
        let hooks = match prev {
            Some(prev) => prev.install(py),
            None => Ok(()),
        };
        owner?;
        running?;
        hooks
    }

    /// For the loop's `__traverse__`.
    ///
    /// # Safety
    /// As [`GilCell::peek`](crate::scheduler::cell::LockCell::peek): the GIL is held and
    /// `visit` runs no Python code.
    pub(crate) unsafe fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: forwarded from our caller.
        if let Some(Some((a, b))) = unsafe { self.own.peek() } {
            visit.call(a)?;
            visit.call(b)?;
        }
        // SAFETY: as above.
        if let Some(Some(hooks)) = unsafe { self.caller.peek() } {
            hooks.traverse(visit)?;
        }
        Ok(())
    }

    /// For the loop's `__clear__` and `close()` (never called while the loop runs): drop
    /// the bound hooks (a loop <-> bound method cycle) and any saved ones.
    pub(crate) fn clear(&self, py: Python<'_>) {
        let own = self.own.with(py, Option::take);
        let caller = self.caller.with(py, Option::take);
        drop((own, caller));
    }
}
