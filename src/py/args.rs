//! Argument checks and conversions of the loop methods, with stock asyncio's exceptions.

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};

use super::asyncio_refs;
use crate::scheduler::error::SchedulerError;

/// asyncio's `_check_callback` (debug mode only, as in asyncio).
pub(crate) fn check_callback(callback: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
    let py = callback.py();
    if asyncio_refs::iscoroutine(py)?
        .call1((callback,))?
        .is_truthy()?
        || asyncio_refs::iscoroutinefunction(py)?
            .call1((callback,))?
            .is_truthy()?
    {
        return Err(PyTypeError::new_err(format!(
            "coroutines cannot be used with {method}()"
        )));
    }
    if !callback.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "a callable object was expected by {method}(), got {}",
            callback.repr()?
        )));
    }
    Ok(())
}

/// The TypeError CPython raises for an unexpected keyword argument, naming the asyncio
/// method (`BaseEventLoop.call_soon()`) rather than this class.
#[inline]
pub(crate) fn reject_keywords(method: &str, kwargs: Option<Bound<'_, PyDict>>) -> PyResult<()> {
    match kwargs.and_then(|k| k.keys().iter().next()) {
        None => Ok(()),
        Some(key) => Err(PyTypeError::new_err(format!(
            "BaseEventLoop.{method}() got an unexpected keyword argument '{key}'"
        ))),
    }
}

/// `selectors._fileobj_to_fd`: an int, or an object with `fileno()`.
pub(crate) fn fd_of(obj: &Bound<'_, PyAny>) -> PyResult<i32> {
    let py = obj.py();
    let fd: i64 = if obj.is_instance_of::<PyInt>() {
        match obj.extract() {
            Ok(fd) => fd,
            // Beyond i64: a huge negative one is invalid, a huge positive one overflows.
            Err(_) if obj.lt(0)? => return Err(SchedulerError::InvalidFd(obj.to_string()).into()),
            Err(_) => return Err(SchedulerError::FdTooLarge.into()),
        }
    } else {
        let r = obj
            .call_method0("fileno")
            .and_then(|f| py.get_type::<PyInt>().call1((f,)))
            .and_then(|i| i.extract::<i64>());
        match r {
            Ok(fd) => fd,
            Err(e)
                if e.is_instance_of::<PyAttributeError>(py)
                    || e.is_instance_of::<PyTypeError>(py)
                    || e.is_instance_of::<PyValueError>(py) =>
            {
                return Err(PyValueError::new_err(format!(
                    "Invalid file object: {}",
                    obj.repr()?
                )));
            }
            Err(e) => return Err(e),
        }
    };
    if fd < 0 {
        return Err(SchedulerError::InvalidFd(fd.to_string()).into());
    }
    i32::try_from(fd).map_err(|_| SchedulerError::FdTooLarge.into())
}
