//! The one place engine errors become Python exceptions.

use pyo3::exceptions::{PyMemoryError, PyRuntimeError};
use pyo3::PyErr;

use crate::fiber::FiberError;

impl From<FiberError> for PyErr {
    fn from(e: FiberError) -> PyErr {
        match e {
            FiberError::Raised(err) => err,
            e @ FiberError::Stack { .. } => PyMemoryError::new_err(e.to_string()),
            e @ (FiberError::Dead
            | FiberError::Running
            | FiberError::NotInFiber
            | FiberError::WrongThread
            | FiberError::Cleared) => PyRuntimeError::new_err(e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scheduler errors (branch `sched`): each maps to the exception stock asyncio raises.
// ---------------------------------------------------------------------------------------

use pyo3::exceptions::{PyOSError, PyOverflowError, PyValueError};

use crate::scheduler::error::SchedulerError;

impl From<SchedulerError> for PyErr {
    fn from(e: SchedulerError) -> PyErr {
        match e {
            SchedulerError::Closed
            | SchedulerError::WrongThread
            | SchedulerError::AlreadyRunning => PyRuntimeError::new_err(e.to_string()),
            SchedulerError::InvalidFd(_) => PyValueError::new_err(e.to_string()),
            SchedulerError::FdTooLarge => PyOverflowError::new_err(e.to_string()),
            // OSError(errno, strerror) picks the errno's subclass (PermissionError, ...),
            // as the selector modules do.
            SchedulerError::Io(io) => os_error(io),
        }
    }
}

/// `OSError(errno, strerror)` for an `io::Error`: CPython picks the errno's subclass
/// (`ConnectionResetError`, `BrokenPipeError`, ...), as the socket and selector modules do.
pub(crate) fn os_error(io: std::io::Error) -> PyErr {
    match io.raw_os_error() {
        Some(errno) => {
            let msg = std::io::Error::from_raw_os_error(errno).to_string();
            // Rust appends " (os error N)"; CPython's strerror does not.
            let msg = match msg.rfind(" (os error ") {
                Some(i) => msg[..i].to_owned(),
                None => msg,
            };
            PyOSError::new_err((errno, msg))
        }
        None => PyOSError::new_err(io.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Transport errors (issue 13): as `_SelectorSocketTransport` raises them.
// ---------------------------------------------------------------------------------------

use crate::transport::TransportError;

impl From<TransportError> for PyErr {
    fn from(e: TransportError) -> PyErr {
        match e {
            e @ TransportError::BadLimits { .. } => PyValueError::new_err(e.to_string()),
            TransportError::Io(io) => os_error(io),
        }
    }
}
