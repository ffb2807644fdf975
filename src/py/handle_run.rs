//! Running a handle: asyncio's `Handle._run`.
//!
//! The callback runs inside the handle's context, entered with `PyContext_Enter` and
//! vectorcalled: what `Context.run` does in C, minus the method lookup and the argument
//! tuple. An exception other than `SystemExit`/`KeyboardInterrupt` goes to the loop's
//! `call_exception_handler` with asyncio's context dict.

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::asyncio_refs;
use super::handle::Handle;

/// Call `callback(*args)` inside `context`, like `Context.run` does in C.
fn call_in_context(
    py: Python<'_>,
    ctx: &Bound<'_, PyAny>,
    cb: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<()> {
    // SAFETY: `ctx` is a live object; PyContext_CheckExact only reads its type.
    if unsafe { ffi::PyContext_CheckExact(ctx.as_ptr()) } == 0 {
        // Not a real Context (a mock, a subclass of nothing we know): use its `run`.
        let mut full: Vec<Bound<'_, PyAny>> = vec![cb.clone()];
        full.extend(args.iter());
        ctx.call_method1("run", PyTuple::new(py, full)?)?;
        return Ok(());
    }
    // SAFETY: `ctx` is an exact Context (checked above) and we hold the GIL.
    if unsafe { ffi::PyContext_Enter(ctx.as_ptr()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    let nargs = args.len();
    // SAFETY: `args` is a live tuple we hold a reference to, so its item array is valid for
    // `nargs` elements during the call; `cb` is a live object; no keyword names.
    let res = unsafe {
        let items = (*(args.as_ptr() as *mut ffi::PyTupleObject))
            .ob_item
            .as_ptr();
        ffi::PyObject_Vectorcall(cb.as_ptr(), items, nargs, std::ptr::null_mut())
    };
    // SAFETY: `res` is a new reference or NULL with an exception set.
    let res = unsafe { Bound::from_owned_ptr_or_err(py, res) };
    // SAFETY: we entered `ctx` above on this thread; exit it even if the call failed.
    let exit = unsafe { ffi::PyContext_Exit(ctx.as_ptr()) };
    if exit < 0 {
        drop(res);
        return Err(PyErr::fetch(py));
    }
    res.map(drop)
}

/// Run `h` on `loop_obj`: asyncio's `Handle._run`. Returns `Err` only for `SystemExit` /
/// `KeyboardInterrupt` and for errors raised by `loop_obj.call_exception_handler` itself.
pub(crate) fn run_handle(
    py: Python<'_>,
    h: &Bound<'_, Handle>,
    loop_obj: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (cb, args, ctx) = h.get().data.with(py, |d| {
        (
            d.callback.as_ref().map(|c| c.clone_ref(py)),
            d.args.as_ref().map(|a| a.clone_ref(py)),
            d.context.as_ref().map(|c| c.clone_ref(py)),
        )
    });
    let (Some(cb), Some(args), Some(ctx)) = (cb, args, ctx) else {
        return Ok(()); // cancelled or cleared by the GC
    };
    let (cb, args, ctx) = (cb.into_bound(py), args.into_bound(py), ctx.into_bound(py));
    match call_in_context(py, &ctx, &cb, &args) {
        Ok(()) => Ok(()),
        Err(err) => report_callback_error(py, h, loop_obj, err, &cb, &args),
    }
}

fn report_callback_error(
    py: Python<'_>,
    h: &Bound<'_, Handle>,
    loop_obj: &Bound<'_, PyAny>,
    err: PyErr,
    cb: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<()> {
    if err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py) {
        return Err(err);
    }
    let exc = err.into_value(py);
    let src = asyncio_refs::format_callback_source(py)?.call1((cb, args))?;
    let context = PyDict::new(py);
    context.set_item("message", format!("Exception in callback {}", src.str()?))?;
    context.set_item("exception", exc)?;
    context.set_item("handle", h)?;
    let tb = h
        .get()
        .data
        .with(py, |d| d.source_traceback.as_ref().map(|t| t.clone_ref(py)));
    if let Some(tb) = tb {
        if tb.bind(py).is_truthy()? {
            context.set_item("source_traceback", tb)?;
        }
    }
    loop_obj.call_method1(pyo3::intern!(py, "call_exception_handler"), (context,))?;
    Ok(())
}
