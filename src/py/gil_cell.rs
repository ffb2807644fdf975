//! `GilCell`: mutable state inside a `frozen` pyclass, with the GIL as its lock.
//!
//! pyo3 0.30 requires pyclasses to be `Sync`, and the loop's state is touched from Python
//! callbacks that re-enter the loop (a callback calls `loop.call_soon` while `_run_ready`
//! is running) and, in rare cases, from other threads (`call_soon_threadsafe`, `cancel()`).
//! A `Mutex` would be re-entrancy-hostile and cost an atomic RMW per access; pyo3's own
//! `PyRefMut` borrow flag costs the same and fails on re-entry. The GIL already serialises
//! every thread that holds a `Python<'py>` token, so the only hazard left is re-entrancy
//! on the same thread, which the closure API rules out by construction:
//!
//! - access is `cell.with(py, |state| ...)`: the closure gets `&mut T` and must not run
//!   Python code: no calls into Python, no Python allocation (which could start the GC),
//!   no dropping of `Py<...>` (which could run `__del__`). Items removed from the state
//!   are returned from the closure and dropped after it;
//! - a `borrowed` flag turns any violation of that rule into a panic (pyo3 converts it into
//!   `PanicException` at the method boundary) instead of two live `&mut`s;
//! - the GC's `tp_traverse` reads the state with [`GilCell::peek`], which returns `None`
//!   while the cell is borrowed: under-reporting references to the GC is safe (objects
//!   just look externally referenced for that collection).
//!
//! This crate declares `gil_used = true` and refuses free-threaded builds at compile time
//! (below), which is what makes "holding a `Python<'py>` token" mean "holding the GIL".

use std::cell::{Cell, UnsafeCell};

use pyo3::Python;

#[cfg(Py_GIL_DISABLED)]
compile_error!("GilCell relies on the GIL: free-threaded CPython builds are not supported");

pub(crate) struct GilCell<T> {
    value: UnsafeCell<T>,
    borrowed: Cell<bool>,
}

// SAFETY: every access to `value` and `borrowed` goes through `with` (which takes a
// `Python<'_>` token, i.e. the caller holds the GIL, since free-threaded builds are refused
// above) or `peek` (whose contract requires the GIL). The GIL serialises all threads, so
// no two threads touch the cell at once; `T: Send` because the value may be accessed from,
// and dropped on, any thread that holds the GIL.
unsafe impl<T: Send> Sync for GilCell<T> {}

struct ResetOnDrop<'a>(&'a Cell<bool>);
impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<T> GilCell<T> {
    pub(crate) fn new(value: T) -> GilCell<T> {
        GilCell {
            value: UnsafeCell::new(value),
            borrowed: Cell::new(false),
        }
    }

    /// Run `f` with exclusive access to the value. `f` must not run Python code (see the
    /// module docs); re-entering the same cell panics.
    #[inline]
    pub(crate) fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        if self.borrowed.replace(true) {
            panic!("GilCell re-entered: Python code ran inside a state borrow (engine bug)");
        }
        let _reset = ResetOnDrop(&self.borrowed);
        // SAFETY: the GIL is held (`_py`), so no other thread is in this cell, and the flag
        // just checked proves no borrow is live on this thread: this is the only reference.
        f(unsafe { &mut *self.value.get() })
    }

    /// Shared access for `tp_traverse`; `None` while the value is borrowed.
    ///
    /// # Safety
    /// The caller must hold the GIL (true inside `tp_traverse`) and must not keep the
    /// reference across anything that can run Python code.
    pub(crate) unsafe fn peek(&self) -> Option<&T> {
        if self.borrowed.get() {
            None
        } else {
            // SAFETY: GIL held (caller contract) and no live `&mut` (flag just checked);
            // the caller does not run Python code while holding the reference.
            Some(unsafe { &*self.value.get() })
        }
    }
}
