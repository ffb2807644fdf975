//! `LoopCore.call_soon` and `LoopCore.call_soon_threadsafe` as `METH_FASTCALL |
//! METH_KEYWORDS` methods.
//!
//! A pyo3 method whose signature has `**kwargs` gets the tuple-and-dict calling convention,
//! so every `loop.call_soon(step, context=ctx)` (the call asyncio's Task and Future make for
//! each wake-up) built an argument tuple and a keyword dict. Without `**kwargs` pyo3 would
//! use the vectorcall convention, but word the errors for a bad keyword after the Rust
//! class (`LoopCore.call_soon() ...`), where stock asyncio says
//! `BaseEventLoop.call_soon() got an unexpected keyword argument 'x'`. These entry points
//! take the vectorcall arguments as they come and give asyncio's errors; they run inside
//! pyo3's own trampoline (panics become `PanicException`, pyo3's attach count is kept).
//! [`install`] puts them on the class at import time.

use std::ffi::CStr;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::impl_::trampoline::get_trampoline_function;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::loop_core::LoopCore;

/// `(callback, *args, context=None)`, as asyncio's `call_soon` takes them.
struct CallSoonArgs<'py> {
    callback: Bound<'py, PyAny>,
    args: Bound<'py, PyTuple>,
    context: Option<Bound<'py, PyAny>>,
}

/// Parse a vectorcall of `method(callback, *args, context=None)`.
///
/// # Safety
/// `args` points to `nargs` positional arguments followed by one value per name in
/// `kwnames` (a tuple of str, or NULL), all borrowed from the caller for this call.
unsafe fn parse<'py>(
    py: Python<'py>,
    method: &str,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<CallSoonArgs<'py>> {
    let nargs = usize::try_from(nargs).unwrap_or(0);
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a non-NULL `kwnames` of a vectorcall is a tuple.
        usize::try_from(unsafe { ffi::PyTuple_GET_SIZE(kwnames) }).unwrap_or(0)
    };
    let all: &[*mut ffi::PyObject] = if nargs + nkw == 0 {
        &[]
    } else {
        // SAFETY: the vectorcall protocol: `args` holds `nargs + nkw` valid pointers.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    // SAFETY: every pointer in `all` is a live object borrowed for this call.
    let borrowed = |p: *mut ffi::PyObject| unsafe { Bound::from_borrowed_ptr(py, p) };
    let mut callback = all.first().filter(|_| nargs > 0).map(|&p| borrowed(p));
    let mut context = None;
    for (i, &value) in all[nargs..].iter().enumerate() {
        // SAFETY: `kwnames` is a tuple of `nkw` names (nkw > 0 here, so it is not NULL).
        let name = borrowed(unsafe { ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t) });
        let name = name.cast_into::<PyString>()?;
        if is_name(&name, pyo3::intern!(py, "context"), "context") {
            context = Some(borrowed(value));
        } else if is_name(&name, pyo3::intern!(py, "callback"), "callback") {
            if callback.is_some() {
                return Err(PyTypeError::new_err(format!(
                    "BaseEventLoop.{method}() got multiple values for argument 'callback'"
                )));
            }
            callback = Some(borrowed(value));
        } else {
            return Err(PyTypeError::new_err(format!(
                "BaseEventLoop.{method}() got an unexpected keyword argument '{name}'"
            )));
        }
    }
    let Some(callback) = callback else {
        return Err(PyTypeError::new_err(format!(
            "BaseEventLoop.{method}() missing 1 required positional argument: 'callback'"
        )));
    };
    let args = if nargs <= 1 {
        PyTuple::empty(py)
    } else {
        PyTuple::new(py, all[1..nargs].iter().map(|&p| borrowed(p)))?
    };
    Ok(CallSoonArgs {
        callback,
        args,
        context,
    })
}

/// A keyword name equal to `expected`: the same interned object, as the keyword names of
/// compiled calls are, or an equal string (3.11's C Task passes a `context` it built itself;
/// comparing its UTF-8 view costs a fraction of a rich comparison).
fn is_name(name: &Bound<'_, PyString>, expected: &Bound<'_, PyString>, text: &str) -> bool {
    name.is(expected) || name.to_str().is_ok_and(|s| s == text)
}

/// The body of both methods: parse, then the loop's one enqueue path.
///
/// # Safety
/// As [`parse`]; `slf` is a live object borrowed for this call.
unsafe fn call_soon_with(
    py: Python<'_>,
    method: &str,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `slf` is the live object the method was called on, and an instance of
    // `LoopCore`: CPython calls a method descriptor's function only after checking that
    // (`descr_check`, when the descriptor is called or bound), and `install` makes the only
    // descriptors for these functions, on `LoopCore`.
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<LoopCore>() };
    // SAFETY: forwarded from our caller.
    let parsed = unsafe { parse(py, method, args, nargs, kwnames) }?;
    let handle = LoopCore::enqueue(
        &slf,
        parsed.callback,
        parsed.args,
        parsed.context,
        None,
        method,
    )?;
    Ok(handle.into_ptr())
}

/// One entry point per method: pyo3's trampoline macro takes a function path, and the
/// method's name is what its errors say.
macro_rules! entry_point {
    ($name:ident) => {
        /// # Safety
        /// Called by CPython through the method descriptor [`install`] makes (vectorcall
        /// arguments).
        unsafe fn $name(
            py: Python<'_>,
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> PyResult<*mut ffi::PyObject> {
            // SAFETY: CPython's vectorcall arguments, as `call_soon_with` needs them.
            unsafe { call_soon_with(py, stringify!($name), slf, args, nargs, kwnames) }
        }
    };
}

entry_point!(call_soon);
entry_point!(call_soon_threadsafe);

/// Add `call_soon` and `call_soon_threadsafe` to `LoopCore` (once, at module import).
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    let methods: [(
        &'static CStr,
        ffi::PyCFunctionFastWithKeywords,
        &'static CStr,
    ); 2] = [
        (
            c"call_soon",
            get_trampoline_function!(fastcall_cfunction_with_keywords, call_soon),
            c"call_soon($self, callback, *args, context=None)\n--\n\n\
              Arrange for `callback(*args)` to be called soon (FIFO).",
        ),
        (
            c"call_soon_threadsafe",
            get_trampoline_function!(fastcall_cfunction_with_keywords, call_soon_threadsafe),
            c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\n\
              Like `call_soon()`, but thread-safe.",
        ),
    ];
    let ty = py.get_type::<LoopCore>();
    for (name, meth, doc) in methods {
        // A method definition must outlive its descriptor, which lives as long as the class
        // (the whole process): two small leaks, once per import of the module.
        let def: &'static mut ffi::PyMethodDef = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords: meth,
            },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr(),
        }));
        // SAFETY: `ty` is a live type object and `def` a method definition that is never
        // freed; the result is a new reference or NULL with an exception set.
        let descr = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))
        }?;
        ty.setattr(name.to_string_lossy().as_ref(), descr)?;
    }
    Ok(())
}
