//! Engine error types, one `thiserror` enum per layer.
//!
//! They become Python exceptions only in `py/errors.rs`.

use pyo3::PyErr;

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

// ---------------------------------------------------------------------------------------
// Scheduler errors (branch `sched`)
// ---------------------------------------------------------------------------------------

/// Errors of the scheduler layer; `py/errors.rs` maps each to the exception asyncio raises.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchedulerError {
    /// Any operation on a closed loop (asyncio: `RuntimeError('Event loop is closed')`).
    #[error("Event loop is closed")]
    Closed,
    /// A negative fd (asyncio's selectors: `ValueError("Invalid file descriptor: -1")`).
    #[error("Invalid file descriptor: {0}")]
    InvalidFd(String),
    /// An fd that does not fit a C int (the selectors: `OverflowError`).
    #[error("Python int too large to convert to C int")]
    FdTooLarge,
    /// `debug` mode and a non-thread-safe call from a thread that does not own the loop.
    #[error("Non-thread-safe operation invoked on an event loop other than the current one")]
    WrongThread,
    /// The kernel refused a registration (closed fd: EBADF, regular file: EPERM, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
