//! The Python binding of the scheduler core (`scheduler/binding.rs`): its callbacks are
//! `Py<Handle>`, its clock a Python callable, its errors Python exceptions, its lock the
//! GIL; and [`LoopRef`], how a handle reaches its loop.
//!
//! A handle reaches its loop through a [`LoopRef`] (the loop object and its scheduler core);
//! the loop class makes one with [`LoopRef::new`] and converts Python loop arguments into
//! one (`FromPyObject`, implemented next to the class in `loop_core.rs`). The handle type
//! and the core type name each other (a handle points at its core), so neither module
//! names `LoopCore`.

use std::ptr::NonNull;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::True;
use pyo3::PyClass;

use super::handle::Handle;
use crate::scheduler::binding::Binding;
use crate::scheduler::core::Core;

/// The scheduler core as the Python binding instantiates it.
pub(crate) type PyCore = Core<PyBinding>;

/// The Python binding of the scheduler core: callbacks are `Py<Handle>`, the clock is a
/// Python callable, errors are Python exceptions, the lock is the GIL.
pub(crate) struct PyBinding;

impl Binding for PyBinding {
    type Item = Py<Handle>;
    type Clock = Py<PyAny>;
    type Error = PyErr;
    type Token<'a> = Python<'a>;

    #[inline]
    fn clone_item(py: Python<'_>, item: &Py<Handle>) -> Py<Handle> {
        item.clone_ref(py)
    }

    #[inline]
    fn clone_clock(py: Python<'_>, clock: &Py<PyAny>) -> Py<PyAny> {
        clock.clone_ref(py)
    }

    fn read_clock(py: Python<'_>, clock: Py<PyAny>) -> PyResult<f64> {
        clock.call0(py)?.extract(py)
    }

    fn unlocked<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> R {
        py.detach(f)
    }

    fn check_signals(py: Python<'_>) -> PyResult<()> {
        py.check_signals()
    }

    #[inline]
    fn thread_ident() -> u64 {
        // SAFETY: PyThread_get_thread_ident has no preconditions (it wraps pthread_self).
        unsafe { ffi::PyThread_get_thread_ident() as u64 }
    }
}

/// A handle's loop: the loop object, and the scheduler core inside it.
pub(crate) struct LoopRef {
    pub(super) obj: Py<PyAny>,
    /// Points into `obj`'s memory (a frozen pyclass never moves), so it is valid while
    /// `obj` is alive, i.e. for as long as this `LoopRef` exists.
    core: NonNull<PyCore>,
}

// SAFETY: `core` is only dereferenced as `&PyCore`, and `PyCore` is `Sync` (its mutable
// state is atomics, a `Mutex` and a `LockCell` used under the GIL); `obj` is `Send`.
unsafe impl Send for LoopRef {}

impl LoopRef {
    /// The loop `obj`, whose scheduler core is `core(obj)`.
    pub(crate) fn new<T>(obj: &Bound<'_, T>, core: for<'a> fn(&'a T) -> &'a PyCore) -> LoopRef
    where
        T: PyClass<Frozen = True> + Sync,
    {
        LoopRef {
            core: NonNull::from(core(obj.get())),
            obj: obj.clone().into_any().unbind(),
        }
    }

    #[inline]
    pub(crate) fn core(&self) -> &PyCore {
        // SAFETY: `core` points into the object `self.obj` keeps alive (see the field).
        unsafe { self.core.as_ref() }
    }

    /// Drop with the GIL token in hand (no attach-count lookup, unlike a plain drop).
    pub(super) fn release(self, py: Python<'_>) {
        self.obj.drop_ref(py);
    }

    pub(super) fn clone_ref(&self, py: Python<'_>) -> LoopRef {
        LoopRef {
            obj: self.obj.clone_ref(py),
            core: self.core,
        }
    }
}
