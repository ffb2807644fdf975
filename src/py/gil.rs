//! The GIL as the engine's lock: `Python<'py>` proves it is held (see `scheduler/cell.rs`).
//!
//! This crate declares `gil_used = true` and refuses free-threaded builds at compile time
//! (below), which is what makes "holding a `Python<'py>` token" mean "holding the GIL".

use pyo3::Python;

use crate::scheduler::cell::{Lock, LockCell};

#[cfg(Py_GIL_DISABLED)]
compile_error!("LockCell relies on the GIL: free-threaded CPython builds are not supported");

// SAFETY: a `Python<'py>` token exists only while the thread holds the GIL (free-threaded
// builds are refused above), and every `LockCell` of the engine is used with the GIL.
unsafe impl Lock for Python<'_> {}

/// A cell whose lock is the GIL.
pub(crate) type GilCell<T> = LockCell<T>;
