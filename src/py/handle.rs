//! `Handle` and `TimerHandle`: asyncio's callback handles, as Rust pyclasses.
//!
//! Same attributes, reprs, comparisons and `cancel()` semantics as `asyncio.events.Handle`
//! / `TimerHandle` (3.11). Differences that are not observable through asyncio's API:
//! - one struct for both; a `TimerHandle` is a `Handle` with `is_timer` set (the Python
//!   subclass adds `when()`, ordering and hashing), so the ready FIFO holds one item type;
//! - `TimerHandle.cancel()` tells the loop core directly instead of calling
//!   `loop._timer_handle_cancelled(self)`.
//!
//! Running a handle is `handle_run.rs`. Layering: this module sits below `loop_core.rs` and
//! does not name `LoopCore`; a handle reaches its loop through a [`LoopRef`]
//! (`binding.rs`).
//!
//! ============================= section map =============================
//! 1. handle data and creation          3. the Python classes
//! 2. cancel, repr

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyFloat, PyString, PyTuple};
use pyo3::PyTraverseError;

use super::asyncio_refs;
use super::binding::LoopRef;
use super::gil::GilCell;
use super::handle_run::run_handle;
use crate::scheduler::binding::Callback;
use crate::scheduler::timers::Cancellable;

// =======================================================================================
// 1. handle data and creation
// =======================================================================================

/// The parts of a handle that change after creation (all cleared by `cancel()` or the GC).
#[derive(Default)]
pub(crate) struct HandleData {
    pub(crate) callback: Option<Py<PyAny>>,
    pub(crate) args: Option<Py<PyTuple>>,
    pub(crate) context: Option<Py<PyAny>>,
    pub(crate) loop_: Option<LoopRef>,
    pub(crate) source_traceback: Option<Py<PyAny>>,
    pub(crate) repr: Option<Py<PyAny>>,
}

/// Object returned by callback registration methods (asyncio-flavoured).
#[pyclass(
    module = "trio_asyncio._engine",
    name = "Handle",
    subclass,
    frozen,
    weakref
)]
pub struct Handle {
    pub(crate) data: GilCell<HandleData>,
    pub(crate) cancelled: AtomicBool,
    /// Timers only: in the loop's heap (asyncio's `_scheduled`).
    pub(crate) scheduled: AtomicBool,
    pub(crate) when: f64,
    pub(crate) is_timer: bool,
}

/// Object returned by timed callback registration methods (asyncio-flavoured).
#[pyclass(module = "trio_asyncio._engine", name = "TimerHandle", extends = Handle, frozen)]
pub struct TimerHandle;

impl Cancellable for Py<Handle> {
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.get().cancelled.load(Ordering::Relaxed)
    }
}

impl Callback for Py<Handle> {
    #[inline]
    fn is_timer(&self) -> bool {
        self.get().is_timer
    }

    #[inline]
    fn when(&self) -> f64 {
        self.get().when
    }

    #[inline]
    fn set_scheduled(&self, scheduled: bool) {
        self.get().scheduled.store(scheduled, Ordering::Relaxed);
    }

    #[inline]
    fn take_scheduled(&self) -> bool {
        self.get().scheduled.swap(false, Ordering::Relaxed)
    }
}

impl HandleData {
    /// Drop every field with the GIL token in hand: a plain drop of a `Py` looks up pyo3's
    /// thread-local attach count for each field. May run Python code (`__del__`).
    pub(crate) fn release(self, py: Python<'_>) {
        let HandleData {
            callback,
            args,
            context,
            loop_,
            source_traceback,
            repr,
        } = self;
        for obj in [callback, context, source_traceback, repr]
            .into_iter()
            .flatten()
        {
            obj.drop_ref(py);
        }
        if let Some(args) = args {
            args.drop_ref(py);
        }
        if let Some(lp) = loop_ {
            lp.release(py);
        }
    }

    /// The fields of a new handle bound to `lp`: copies the current context if none is
    /// given and, in debug mode, records where it was created.
    pub(crate) fn new(
        py: Python<'_>,
        lp: LoopRef,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<HandleData> {
        let context = match context {
            Some(c) if !c.is_none() => c.unbind(),
            _ => copy_context(py)?,
        };
        let source_traceback = if lp.core().debug() {
            Some(capture_traceback(py)?)
        } else {
            None
        };
        Ok(HandleData {
            callback: Some(callback.unbind()),
            args: Some(args.unbind()),
            context: Some(context),
            loop_: Some(lp),
            source_traceback,
            repr: None,
        })
    }
}

/// `contextvars.copy_context()`.
fn copy_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: GIL held; returns a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// `format_helpers.extract_stack(<the calling Python frame>)`: the engine's methods have no
/// Python frame of their own, so the innermost Python frame is the caller's line.
fn capture_traceback(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: GIL held; PyEval_GetFrame returns a borrowed reference or NULL.
    let f = unsafe { ffi::PyEval_GetFrame() };
    let frame = if f.is_null() {
        py.None().into_bound(py)
    } else {
        // SAFETY: `f` is a live frame object (borrowed); we take a new reference.
        unsafe { Bound::from_borrowed_ptr(py, f.cast()) }
    };
    Ok(asyncio_refs::extract_stack(py)?.call1((frame,))?.unbind())
}

impl Handle {
    pub(crate) fn new_raw(data: HandleData, when: Option<f64>) -> Handle {
        Handle {
            data: GilCell::new(data),
            cancelled: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            when: when.unwrap_or(0.0),
            is_timer: when.is_some(),
        }
    }

    /// Allocate a `Handle` (or a `TimerHandle` if `when` is given) as a `Py<Handle>`.
    pub(crate) fn create(
        py: Python<'_>,
        data: HandleData,
        when: Option<f64>,
    ) -> PyResult<Py<Handle>> {
        let h = Handle::new_raw(data, when);
        if when.is_some() {
            let init = PyClassInitializer::from(h).add_subclass(TimerHandle);
            Ok(Bound::new(py, init)?.into_super().unbind())
        } else {
            Py::new(py, h)
        }
    }

    fn get_field(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&HandleData) -> Option<&Py<PyAny>>,
    ) -> Py<PyAny> {
        self.data
            .with(py, |d| f(d).map(|o| o.clone_ref(py)))
            .unwrap_or_else(|| py.None())
    }

    fn set_field(
        &self,
        py: Python<'_>,
        value: Option<Py<PyAny>>,
        f: impl FnOnce(&mut HandleData) -> &mut Option<Py<PyAny>>,
    ) {
        let value = value.filter(|v| !v.is_none(py));
        let old = self.data.with(py, |d| std::mem::replace(f(d), value));
        drop(old);
    }

    fn loop_debug(&self, py: Python<'_>) -> bool {
        self.data
            .with(py, |d| d.loop_.as_ref().map(|l| l.core().debug()))
            .unwrap_or(false)
    }
}

// =======================================================================================
// 2. cancel, repr
// =======================================================================================

/// Mark `h` cancelled: asyncio's `Handle.cancel` / `TimerHandle.cancel`.
pub(crate) fn cancel_handle(h: &Bound<'_, Handle>) -> PyResult<()> {
    let py = h.py();
    let hd = h.get();
    if hd.cancelled.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    if hd.is_timer && hd.scheduled.load(Ordering::Relaxed) {
        let lp = hd
            .data
            .with(py, |d| d.loop_.as_ref().map(|l| l.clone_ref(py)));
        if let Some(lp) = lp {
            lp.core().timer_cancelled(py);
        }
    }
    if hd.loop_debug(py) {
        // Keep callback and arguments in the repr (asyncio logs it for slow callbacks).
        let r = handle_repr(h)?;
        hd.set_field(py, Some(r.into_any().unbind()), |d| &mut d.repr);
    }
    let (cb, args) = hd.data.with(py, |d| (d.callback.take(), d.args.take()));
    drop((cb, args));
    Ok(())
}

/// asyncio's `Handle._repr_info()` joined into `<...>`.
fn handle_repr<'py>(h: &Bound<'py, Handle>) -> PyResult<Bound<'py, PyString>> {
    let py = h.py();
    let hd = h.get();
    if let Some(r) = hd
        .data
        .with(py, |d| d.repr.as_ref().map(|r| r.clone_ref(py)))
    {
        return r.into_bound(py).str();
    }
    let mut info: Vec<String> = vec![h.get_type().name()?.to_string()];
    let cancelled = hd.cancelled.load(Ordering::Relaxed);
    if cancelled {
        info.push("cancelled".into());
    }
    let (cb, args, tb) = hd.data.with(py, |d| {
        (
            d.callback.as_ref().map(|c| c.clone_ref(py)),
            d.args.as_ref().map(|a| a.clone_ref(py)),
            d.source_traceback.as_ref().map(|t| t.clone_ref(py)),
        )
    });
    if let Some(cb) = cb {
        let args: Py<PyAny> = args.map_or_else(|| py.None(), |a| a.into_any());
        let src = asyncio_refs::format_callback_source(py)?.call1((cb, args))?;
        info.push(src.str()?.to_string());
    }
    if let Some(tb) = tb {
        let tb = tb.into_bound(py);
        if tb.is_truthy()? {
            let frame = tb.get_item(-1)?;
            info.push(format!(
                "created at {}:{}",
                frame.get_item(0)?.str()?,
                frame.get_item(1)?.str()?
            ));
        }
    }
    if hd.is_timer {
        let pos = if cancelled { 2 } else { 1 };
        info.insert(pos, format!("when={}", PyFloat::new(py, hd.when).repr()?));
    }
    Ok(PyString::new(py, &format!("<{}>", info.join(" "))))
}

// =======================================================================================
// 3. the Python classes
// =======================================================================================

fn traverse_data(d: &HandleData, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
    visit.call(&d.callback)?;
    visit.call(&d.args)?;
    visit.call(&d.context)?;
    if let Some(l) = &d.loop_ {
        visit.call(&l.obj)?;
    }
    visit.call(&d.source_traceback)?;
    visit.call(&d.repr)?;
    Ok(())
}

#[pymethods]
impl Handle {
    #[new]
    #[pyo3(signature = (callback, args, r#loop, context = None))]
    fn py_new(
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        r#loop: LoopRef,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        let data = HandleData::new(callback.py(), r#loop, callback, args, context)?;
        Ok(Handle::new_raw(data, None))
    }

    /// Cancel the callback. If the callback is already cancelled or run, do nothing.
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        cancel_handle(slf)
    }

    /// Return True if the callback was cancelled.
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Return the contextvars.Context the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.get_field(py, |d| d.context.as_ref())
    }

    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let lp = slf
            .get()
            .data
            .with(py, |d| d.loop_.as_ref().map(|l| l.clone_ref(py)));
        match lp {
            Some(lp) => run_handle(py, slf, lp.obj.bind(py)),
            None => Ok(()),
        }
    }

    fn __repr__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyString>> {
        handle_repr(slf)
    }

    fn _repr_info(slf: &Bound<'_, Self>) -> PyResult<Vec<String>> {
        let r = handle_repr(slf)?.to_string();
        let inner = r.trim_start_matches('<').trim_end_matches('>');
        Ok(inner.split(' ').map(str::to_owned).collect())
    }

    #[getter]
    fn _callback(&self, py: Python<'_>) -> Py<PyAny> {
        self.get_field(py, |d| d.callback.as_ref())
    }

    #[getter]
    fn _args(&self, py: Python<'_>) -> Py<PyAny> {
        self.data
            .with(py, |d| d.args.as_ref().map(|a| a.clone_ref(py).into_any()))
            .unwrap_or_else(|| py.None())
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.data
            .with(py, |d| d.loop_.as_ref().map(|l| l.obj.clone_ref(py)))
            .unwrap_or_else(|| py.None())
    }

    #[getter]
    fn _context(&self, py: Python<'_>) -> Py<PyAny> {
        self.get_field(py, |d| d.context.as_ref())
    }

    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Py<PyAny> {
        self.get_field(py, |d| d.source_traceback.as_ref())
    }

    #[setter(_source_traceback)]
    fn set_source_traceback(&self, py: Python<'_>, value: Option<Py<PyAny>>) {
        self.set_field(py, value, |d| &mut d.source_traceback);
    }

    #[getter]
    fn _repr(&self, py: Python<'_>) -> Py<PyAny> {
        self.get_field(py, |d| d.repr.as_ref())
    }

    #[setter(_repr)]
    fn set_repr(&self, py: Python<'_>, value: Option<Py<PyAny>>) {
        self.set_field(py, value, |d| &mut d.repr);
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: tp_traverse runs with the GIL held, and the reference is only used for
        // `visit.call`, which runs no Python code.
        if let Some(d) = unsafe { self.data.peek() } {
            traverse_data(d, &visit)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            let old = self.data.with(py, std::mem::take);
            drop(old);
        });
    }
}

#[pymethods]
impl TimerHandle {
    #[new]
    #[pyo3(signature = (when, callback, args, r#loop, context = None))]
    fn py_new(
        when: f64,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        r#loop: LoopRef,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<TimerHandle>> {
        let data = HandleData::new(callback.py(), r#loop, callback, args, context)?;
        Ok(PyClassInitializer::from(Handle::new_raw(data, Some(when))).add_subclass(TimerHandle))
    }

    /// Return the scheduled time (absolute, in the loop's `time()` reference).
    fn when(slf: &Bound<'_, Self>) -> f64 {
        slf.as_super().get().when
    }

    #[getter]
    fn _when(slf: &Bound<'_, Self>) -> f64 {
        slf.as_super().get().when
    }

    #[getter]
    fn _scheduled(slf: &Bound<'_, Self>) -> bool {
        slf.as_super().get().scheduled.load(Ordering::Relaxed)
    }

    fn __hash__(slf: &Bound<'_, Self>) -> PyResult<isize> {
        PyFloat::new(slf.py(), slf.as_super().get().when).hash()
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<TimerHandle>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (slf.as_super().get(), other.as_super().get());
        let eq = || -> PyResult<bool> {
            if a.when != b.when
                || a.cancelled.load(Ordering::Relaxed) != b.cancelled.load(Ordering::Relaxed)
            {
                return Ok(false);
            }
            let (ca, aa) = (
                a.get_field(py, |d| d.callback.as_ref()),
                Handle::_args(a, py),
            );
            let (cb, ab) = (
                b.get_field(py, |d| d.callback.as_ref()),
                Handle::_args(b, py),
            );
            Ok(ca.bind(py).eq(cb)? && aa.bind(py).eq(ab)?)
        };
        let r = match op {
            CompareOp::Lt => a.when < b.when,
            CompareOp::Gt => a.when > b.when,
            CompareOp::Le => a.when < b.when || eq()?,
            CompareOp::Ge => a.when > b.when || eq()?,
            CompareOp::Eq => eq()?,
            CompareOp::Ne => !eq()?,
        };
        Ok(r.into_pyobject(py)?.to_owned().into_any().unbind())
    }
}
