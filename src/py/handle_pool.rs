//! Spent `call_soon` handles, kept by their loop for the next `call_soon`.
//!
//! Most handles die right after they run: asyncio's Task and Future drop the handle
//! `call_soon` returns at once, so the ready queue holds the only reference. Allocating a
//! pyclass object (pyo3's initializer, `PyType_GenericAlloc`, GC tracking) and freeing it
//! again costs about 290 instructions per handle more than keeping it: a spent handle is
//! kept in its loop's pool instead, emptied, and handed out by the next `call_soon`.
//!
//! A handle goes to the pool only when nothing else can see it: it is a plain `Handle`
//! (not a timer, not a subclass), the ready queue's reference is its only one, and no weak
//! reference points at it. Whoever held it has dropped it, so its reuse cannot be told
//! apart from a new allocation. The pool holds empty handles only (no callback, no
//! context, no loop), so it keeps nothing alive and adds no reference cycle. pyo3's own
//! `freelist` cannot serve here: it hands out untracked objects, and the garbage
//! collector then misses cycles through them.

use std::sync::atomic::Ordering;

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use super::gil::GilCell;
use super::handle::{Handle, HandleData};

/// Spent handles one loop keeps at most (a few KiB).
const CAPACITY: usize = 64;

pub(crate) struct HandlePool {
    spent: GilCell<Vec<Py<Handle>>>,
}

impl HandlePool {
    pub(crate) fn new() -> HandlePool {
        HandlePool {
            spent: GilCell::new(Vec::new()),
        }
    }

    /// A `Handle` (not a timer) with `data`: a spent one if the pool has one, else new.
    pub(crate) fn handle(&self, py: Python<'_>, data: HandleData) -> PyResult<Py<Handle>> {
        let Some(h) = self.spent.with(py, |v| v.pop()) else {
            return Handle::create(py, data, None);
        };
        let old = h.get().data.with(py, |d| std::mem::replace(d, data));
        drop(old); // empty: a spent handle's data was taken when it entered the pool
        Ok(h)
    }

    /// Keep `h`, which has just run, if nothing else can see it; else drop it.
    pub(crate) fn give(&self, py: Python<'_>, h: Bound<'_, Handle>) {
        if !Self::is_private(&h) {
            return;
        }
        let handle = h.get();
        let data = handle.data.with(py, std::mem::take);
        handle.cancelled.store(false, Ordering::Relaxed);
        handle.scheduled.store(false, Ordering::Relaxed);
        let h = h.unbind();
        let full = self.spent.with(py, |v| {
            if v.len() < CAPACITY {
                v.push(h);
                None
            } else {
                Some(h)
            }
        });
        drop(full); // an emptied handle: freeing it runs no Python code
                    // The callback, its arguments and context go after the handle is stored: dropping
                    // them can run Python code (`__del__`), which may call `call_soon` and take it.
        data.release(py);
    }

    /// Whether `h` is a plain `Handle` that only the caller references.
    fn is_private(h: &Bound<'_, Handle>) -> bool {
        let handle = h.get();
        if handle.is_timer || !h.get_type().is(h.py().get_type::<Handle>()) {
            return false;
        }
        let ptr = h.as_ptr();
        // SAFETY: `ptr` is a live object we hold a reference to; reading its reference
        // count and its type's weak-list offset only reads memory CPython owns.
        let (refcnt, weaklist_offset) =
            unsafe { (ffi::Py_REFCNT(ptr), (*ffi::Py_TYPE(ptr)).tp_weaklistoffset) };
        if refcnt != 1 || weaklist_offset <= 0 {
            return false;
        }
        // SAFETY: a positive `tp_weaklistoffset` is the offset of the object's weak-reference
        // list head (a `PyObject *`, NULL when nothing refers to it weakly) inside it.
        let weaklist = unsafe {
            ptr.cast::<u8>()
                .offset(weaklist_offset)
                .cast::<*mut ffi::PyObject>()
                .read()
        };
        weaklist.is_null()
    }

    /// Drop every spent handle (the loop is closing or being collected).
    pub(crate) fn clear(&self, py: Python<'_>) {
        let spent = self.spent.with(py, std::mem::take);
        drop(spent);
    }

    /// For the loop's `__traverse__`.
    ///
    /// # Safety
    /// As [`GilCell::peek`](crate::scheduler::cell::LockCell::peek): the GIL is held and
    /// `visit` runs no Python code.
    pub(crate) unsafe fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: forwarded from our caller.
        if let Some(spent) = unsafe { self.spent.peek() } {
            for h in spent {
                visit.call(h)?;
            }
        }
        Ok(())
    }
}
