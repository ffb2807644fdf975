//! The one place engine errors become Python exceptions, and the engine's exception types.

use pyo3::exceptions::{PyBaseException, PyMemoryError, PyRuntimeError};
use pyo3::PyErr;

use crate::errors::FiberError;

pyo3::create_exception!(
    trio_asyncio._engine,
    FiberExit,
    PyBaseException,
    "Raised inside a fiber to kill it; leaving the fiber's function it counts as a normal \
     finish returning None."
);

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
