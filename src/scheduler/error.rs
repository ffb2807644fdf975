//! The scheduler layer's errors, turned into Python exceptions only in `py/errors.rs`.

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
    /// Running a loop that is running (asyncio's message), or a second thread entering the
    /// wait of a loop another thread is blocked in.
    #[error("This event loop is already running")]
    AlreadyRunning,
    /// `debug` mode and a non-thread-safe call from a thread that does not own the loop.
    #[error("Non-thread-safe operation invoked on an event loop other than the current one")]
    WrongThread,
    /// The kernel refused a registration (closed fd: EBADF, regular file: EPERM, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
