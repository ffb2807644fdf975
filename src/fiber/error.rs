//! The fiber layer's errors: [`FiberError`] (a `thiserror` enum, turned into Python
//! exceptions only in `py/errors.rs`) and [`FiberExit`], the exception that kills a fiber.

use pyo3::exceptions::PyBaseException;
use pyo3::PyErr;

pyo3::create_exception!(
    trio_asyncio._engine,
    FiberExit,
    PyBaseException,
    "Raised inside a fiber to kill it; leaving the fiber's function it counts as a normal \
     finish returning None."
);

/// Errors of the fiber layer (`crate::fiber`).
///
/// A Python exception raised by the fiber's own code travels as [`FiberError::Raised`] so that
/// nothing is ever left pending in the interpreter's error indicator across a switch.
#[derive(Debug, thiserror::Error)]
pub enum FiberError {
    /// `switch()`/`throw()` on a fiber that has finished.
    #[error("cannot switch to a dead fiber")]
    Dead,
    /// `switch()`/`throw()` on a fiber that is running or is on the current resume chain.
    #[error(
        "cannot switch to a fiber that is already running (it is on the current resume chain)"
    )]
    Running,
    /// `suspend()` called while no fiber is running on this thread.
    #[error("suspend() called outside a fiber")]
    NotInFiber,
    /// A fiber used from a thread other than the one that created it.
    #[error("fiber used from a thread other than the one that created it")]
    WrongThread,
    /// The fiber's Python callable was cleared by the garbage collector before it started.
    #[error("fiber was cleared by the garbage collector before it started")]
    Cleared,
    /// mmap/mprotect failed while allocating a fiber stack.
    #[error("cannot allocate a fiber stack of {size} bytes: {source}")]
    Stack {
        size: usize,
        #[source]
        source: std::io::Error,
    },
    /// An exception raised by the fiber's code (or thrown into an unstarted fiber).
    #[error("{0}")]
    Raised(PyErr),
}
