//! `trio_asyncio._engine.Fiber` and the module-level `suspend`, `current`,
//! `fiber_statistics`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::fiber::{self, FiberState};

/// A stackful coroutine: ``Fiber(fn, *args, stack_size=None, **kwargs)``.
///
/// ``switch(value)`` starts the fiber (calling ``fn(*args, **kwargs)``; the first value is
/// ignored) or resumes it; it returns what the fiber passes to :func:`suspend`, or ``fn``'s
/// return value when it finishes. The fiber starts in a copy of the current context.
#[pyclass(module = "trio_asyncio._engine", name = "Fiber", frozen)]
pub struct PyFiber {
    inner: fiber::Fiber,
}

#[pymethods]
impl PyFiber {
    #[new]
    #[pyo3(signature = (r#fn, /, *args, stack_size = None, **kwargs))]
    fn new(
        py: Python<'_>,
        r#fn: Py<PyAny>,
        args: Py<PyTuple>,
        stack_size: Option<usize>,
        kwargs: Option<Py<PyDict>>,
    ) -> PyResult<Self> {
        Ok(PyFiber {
            inner: fiber::Fiber::new(py, r#fn, args, kwargs, stack_size)?,
        })
    }

    /// Start or resume the fiber; return what it suspends with or returns.
    ///
    /// :raises RuntimeError: if the fiber is dead, running, or belongs to another thread.
    #[pyo3(signature = (value = None))]
    fn switch(slf: &Bound<'_, Self>, value: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let value = value.unwrap_or_else(|| py.None());
        Ok(slf.get().inner.switch(py, value, slf.as_any())?)
    }

    /// Raise ``exc`` at the fiber's suspension point; return what it suspends with or
    /// returns. Into an unstarted fiber: mark it dead and raise ``exc`` here.
    fn throw(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let err = PyErr::from_value(exc);
        Ok(slf.get().inner.throw(py, err, slf.as_any())?)
    }

    /// Whether the calling thread created this fiber (only that thread may resume it).
    fn owned_by_current_thread(&self, py: Python<'_>) -> bool {
        self.inner.owned_by_current_thread(py)
    }

    /// Whether the fiber has finished.
    #[getter]
    fn dead(&self) -> bool {
        self.inner.state() == FiberState::Dead
    }

    /// Whether the fiber's function has started running.
    #[getter]
    fn started(&self) -> bool {
        // A fiber thrown into before starting is dead but never started.
        self.inner.started()
    }

    fn __repr__(&self) -> String {
        format!("<Fiber {:?}>", self.inner.state())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        let mut res = Ok(());
        self.inner.visit_refs(|p| {
            if res.is_ok() && !p.is_null() {
                // SAFETY: tp_traverse runs with the thread attached (GC holds the GIL); the
                // token is used only to view `p`, a borrowed reference the fiber owns, as a
                // `&Py` for the visitor. No Python API is called.
                let py = unsafe { Python::assume_attached() };
                // SAFETY: `p` is a valid object pointer kept alive by the fiber.
                let b = unsafe { Bound::<PyAny>::ref_from_ptr(py, &p) };
                res = visit.call(b.as_unbound());
            }
        });
        res
    }

    fn __clear__(&self) {
        self.inner.clear_refs();
    }
}

/// Return ``value`` to whoever switched to the running fiber; evaluate to the value of the
/// next ``switch()``.
///
/// :raises RuntimeError: outside a fiber.
#[pyfunction]
#[pyo3(signature = (value = None))]
pub fn suspend(py: Python<'_>, value: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let value = value.unwrap_or_else(|| py.None());
    Ok(fiber::suspend(py, value)?)
}

/// The running :class:`Fiber`, or ``None`` outside fibers.
#[pyfunction]
pub fn current(py: Python<'_>) -> Option<Bound<'_, PyAny>> {
    fiber::current(py)
}

/// Fiber counters: live, created, finished, killed, leaked, switches, pooled_stacks,
/// mapped_stacks.
#[pyfunction]
pub fn fiber_statistics(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let s = fiber::statistics();
    let d = PyDict::new(py);
    d.set_item("live", s.live)?;
    d.set_item("created", s.created)?;
    d.set_item("finished", s.finished)?;
    d.set_item("killed", s.killed)?;
    d.set_item("leaked", s.leaked)?;
    d.set_item("switches", s.switches)?;
    d.set_item("pooled_stacks", s.pooled_stacks)?;
    d.set_item("mapped_stacks", s.mapped_stacks)?;
    Ok(d)
}

/// Refuse to load if the interpreter is not the one the shim was built for.
pub(crate) fn check_runtime(py: Python<'_>) -> PyResult<()> {
    let built = fiber::built_version() >> 16;
    let running: u64 = py.import("sys")?.getattr("hexversion")?.extract::<u64>()? >> 16;
    if built != running || !fiber::layout_ok() {
        return Err(pyo3::exceptions::PyImportError::new_err(format!(
            "trio_asyncio._engine was built for CPython {}.{} but this is {}.{}; rebuild or reinstall trio-asyncio-rs for this interpreter",
            built >> 8,
            built & 0xff,
            running >> 8,
            running & 0xff
        )));
    }
    Ok(())
}
