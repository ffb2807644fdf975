//! `LockCell`: mutable state inside a shared object, with one outer lock (the GIL) as its lock.
//!
//! pyo3 requires pyclasses to be `Sync`, and the loop's state is touched from Python
//! callbacks that re-enter the loop (a callback calls `loop.call_soon` while `_run_ready`
//! is running) and, in rare cases, from other threads (`call_soon_threadsafe`, `cancel()`).
//! A `Mutex` would be re-entrancy-hostile and cost an atomic RMW per access; pyo3's own
//! `PyRefMut` borrow flag costs the same and fails on re-entry. The GIL already serialises
//! every thread that holds a `Python<'py>` token, so the only hazard left is re-entrancy
//! on the same thread, which the closure API rules out by construction:
//!
//! - access is `cell.with(lock, |state| ...)`: the closure gets `&mut T` and must not run
//!   Python code: no calls into Python, no Python allocation (which could start the GC),
//!   no dropping of `Py<...>` (which could run `__del__`). Items removed from the state
//!   are returned from the closure and dropped after it;
//! - a `borrowed` flag turns any violation of that rule into a panic (pyo3 converts it into
//!   `PanicException` at the method boundary) instead of two live `&mut`s;
//! - the GC's `tp_traverse` reads the state with [`LockCell::peek`], which returns `None`
//!   while the cell is borrowed: under-reporting references to the GC is safe (objects
//!   just look externally referenced for that collection).
//!
//! The scheduler layer does not know about Python: the proof that the lock is held is any
//! value of a type implementing the unsafe marker trait [`Lock`]. The binding layer
//! implements it for `pyo3::Python` (`py/gil.rs`), and refuses free-threaded builds there.

use std::cell::{Cell, UnsafeCell};

/// Proof that the calling thread holds the one lock that serialises every access to the
/// engine's state (for the Python binding: the GIL).
///
/// # Safety
/// A value of an implementing type may exist only on a thread that holds that lock, for no
/// longer than it holds it; all threads that touch a [`LockCell`] use the same lock.
pub(crate) unsafe trait Lock: Copy {}

pub(crate) struct LockCell<T> {
    value: UnsafeCell<T>,
    borrowed: Cell<bool>,
}

// SAFETY: every access to `value` and `borrowed` goes through `with` (which takes a `Lock`
// value, i.e. the caller holds the one lock) or `peek` (whose contract requires the lock).
// That lock serialises all threads, so no two threads touch the cell at once; `T: Send`
// because the value may be accessed from, and dropped on, any thread that holds the lock.
unsafe impl<T: Send> Sync for LockCell<T> {}

struct ResetOnDrop<'a>(&'a Cell<bool>);
impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<T> LockCell<T> {
    pub(crate) fn new(value: T) -> LockCell<T> {
        LockCell {
            value: UnsafeCell::new(value),
            borrowed: Cell::new(false),
        }
    }

    /// Run `f` with exclusive access to the value. `f` must not run Python code (see the
    /// module docs); re-entering the same cell panics.
    #[inline]
    pub(crate) fn with<R>(&self, _lock: impl Lock, f: impl FnOnce(&mut T) -> R) -> R {
        if self.borrowed.replace(true) {
            panic!("LockCell re-entered: Python code ran inside a state borrow (engine bug)");
        }
        let _reset = ResetOnDrop(&self.borrowed);
        // SAFETY: the lock is held (`_lock`), so no other thread is in this cell, and the
        // flag just checked proves no borrow is live on this thread: this is the only
        // reference.
        f(unsafe { &mut *self.value.get() })
    }

    /// Shared access for `tp_traverse`; `None` while the value is borrowed.
    ///
    /// # Safety
    /// The caller must hold the lock (the GIL is held inside `tp_traverse`) and must not
    /// keep the reference across anything that can run Python code.
    pub(crate) unsafe fn peek(&self) -> Option<&T> {
        if self.borrowed.get() {
            None
        } else {
            // SAFETY: lock held (caller contract) and no live `&mut` (flag just checked);
            // the caller does not run Python code while holding the reference.
            Some(unsafe { &*self.value.get() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct TestLock;
    // SAFETY: these tests touch each cell from one thread only.
    unsafe impl Lock for TestLock {}

    #[test]
    fn with_gives_exclusive_access() {
        let c = LockCell::new(1);
        c.with(TestLock, |v| *v += 1);
        assert_eq!(c.with(TestLock, |v| *v), 2);
    }

    #[test]
    fn peek_is_none_while_borrowed() {
        let c = LockCell::new(0);
        // SAFETY: single thread, nothing runs while the reference is held.
        c.with(TestLock, |_| assert!(unsafe { c.peek() }.is_none()));
        // SAFETY: as above.
        assert_eq!(unsafe { c.peek() }, Some(&0));
    }

    #[test]
    #[should_panic(expected = "re-entered")]
    fn reentry_panics() {
        let c = LockCell::new(0);
        c.with(TestLock, |_| c.with(TestLock, |_| ()));
    }
}
