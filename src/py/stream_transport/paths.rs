//! The read, write and error paths of `StreamTransportCore` (the helpers its `#[pymethods]`
//! face calls), and the Python-buffer view they read and write through.

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PySystemExit};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::{
    Refs, State, StreamTransportCore, LOG_THRESHOLD_FOR_CONNLOST_WRITES, MAX_READ, READ_BUF,
};
use crate::py::asyncio_refs;
use crate::py::errors::os_error;
use crate::py::loop_core::LoopCore;
use crate::scheduler::reactor::Direction;
use crate::transport::sys::{self, Outcome};
/// A contiguous byte view of a Python buffer, released on drop.
pub(super) struct RawBuffer(pub(super) ffi::Py_buffer);

impl RawBuffer {
    pub(super) fn get(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<RawBuffer> {
        let flags = if writable {
            ffi::PyBUF_WRITABLE
        } else {
            ffi::PyBUF_SIMPLE
        };
        let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
        // SAFETY: `obj` is a live object (the GIL is held through `obj.py()`), and `view`
        // points to writable storage for one `Py_buffer`, which the call fills on success.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) } < 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        // SAFETY: `PyObject_GetBuffer` returned 0, so it initialised the whole struct.
        Ok(RawBuffer(unsafe { view.assume_init() }))
    }

    pub(super) fn len(&self) -> usize {
        usize::try_from(self.0.len).unwrap_or(0)
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        // SAFETY: PyBUF_SIMPLE/PyBUF_WRITABLE views are contiguous bytes: `buf` is valid for
        // `len` bytes until `PyBuffer_Release` (in `drop`), and the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.0.buf as *const u8, self.len()) }
    }
}

impl Drop for RawBuffer {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful `PyObject_GetBuffer` and is released
        // exactly once; every `RawBuffer` is dropped with the GIL held (it never leaves a
        // pymethod's scope).
        unsafe { ffi::PyBuffer_Release(&mut self.0) }
    }
}

/// `SystemExit` and `KeyboardInterrupt` go up to the loop; anything else a protocol raises
/// is the transport's fatal error.
pub(super) fn escapes(py: Python<'_>, e: &PyErr) -> bool {
    e.is_instance_of::<PySystemExit>(py) || e.is_instance_of::<PyKeyboardInterrupt>(py)
}

pub(super) fn clone_opt(py: Python<'_>, o: &Option<Py<PyAny>>) -> Option<Py<PyAny>> {
    o.as_ref().map(|p| p.clone_ref(py))
}

impl StreamTransportCore {
    pub(super) fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut State) -> R) -> R {
        self.state.with(py, f)
    }

    pub(super) fn ref_of(
        &self,
        py: Python<'_>,
        pick: impl FnOnce(&Refs) -> &Option<Py<PyAny>>,
    ) -> Option<Py<PyAny>> {
        self.with(py, |s| clone_opt(py, pick(&s.refs)))
    }

    pub(super) fn loop_obj<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.ref_of(py, |r| &r.loop_).map(|l| l.into_bound(py))
    }

    pub(super) fn debug(&self, py: Python<'_>) -> PyResult<bool> {
        match self.loop_obj(py) {
            Some(l) => l.call_method0(intern!(py, "get_debug"))?.is_truthy(),
            None => Ok(false),
        }
    }

    pub(super) fn log_debug(&self, py: Python<'_>, fmt: &str) -> PyResult<()> {
        if self.debug(py)? {
            let t = self.ref_of(py, |r| &r.transport);
            asyncio_refs::logger(py)?.call_method1(intern!(py, "debug"), (fmt, t))?;
        }
        Ok(())
    }

    pub(super) fn loop_call(
        &self,
        py: Python<'_>,
        method: &Bound<'_, pyo3::types::PyString>,
    ) -> PyResult<()> {
        if let Some(l) = self.loop_obj(py) {
            l.call_method1(method, (self.fd,))?;
        }
        Ok(())
    }

    pub(super) fn remove_reader(&self, py: Python<'_>) -> PyResult<()> {
        self.loop_call(py, intern!(py, "_remove_reader"))
    }

    pub(super) fn remove_writer(&self, py: Python<'_>) -> PyResult<()> {
        self.loop_call(py, intern!(py, "_remove_writer"))
    }

    /// Register the socket with the loop: edge-triggered on our loops (`LoopCore`, no
    /// re-arm per event), through the loop's `method` on any other.
    pub(super) fn register(
        slf: &Bound<'_, Self>,
        dir: Direction,
        method: &str,
        callback: &str,
    ) -> PyResult<()> {
        let py = slf.py();
        if let Some(l) = slf.get().loop_obj(py) {
            let cb = slf.getattr(callback)?;
            match l.cast::<LoopCore>() {
                Ok(core) => LoopCore::register_edge(core, slf.get().fd, dir, cb)?,
                Err(_) => {
                    l.call_method1(method, (slf.get().fd, cb))?;
                }
            }
        }
        Ok(())
    }

    /// After a read or write that stopped while the socket may still be ready (a full
    /// read, data left buffered): have the loop report it again, as an edge-triggered
    /// registration would not.
    pub(super) fn rearm(&self, py: Python<'_>) {
        if let Some(l) = self.loop_obj(py) {
            if let Ok(core) = l.cast::<LoopCore>() {
                core.get().rearm_later(py, self.fd);
            }
        }
    }

    pub(super) fn add_writer(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::register(slf, Direction::Write, "_add_writer", "_write_ready")
    }

    /// Register for reading unless paused or closing (asyncio's `_SelectorTransport._add_reader`).
    pub(super) fn add_reader_if_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        if slf.get().with(slf.py(), |s| s.is_reading()) {
            Self::register(slf, Direction::Read, "_add_reader", "_read_ready")?;
        }
        Ok(())
    }

    pub(super) fn call_soon(slf: &Bound<'_, Self>, method: &str, arg: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        if let Some(l) = slf.get().loop_obj(py) {
            l.call_method1(intern!(py, "call_soon"), (slf.getattr(method)?, arg))?;
        }
        Ok(())
    }

    /// The exception-handler context asyncio's transports pass.
    pub(super) fn handler_context<'py>(
        &self,
        py: Python<'py>,
        message: &str,
        exc: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (t, p) = self.with(py, |s| {
            (
                clone_opt(py, &s.refs.transport),
                clone_opt(py, &s.refs.protocol),
            )
        });
        let ctx = PyDict::new(py);
        ctx.set_item("message", message)?;
        ctx.set_item("exception", exc)?;
        ctx.set_item("transport", t)?;
        ctx.set_item("protocol", p)?;
        Ok(ctx)
    }

    /// Call the protocol's `pause_writing`/`resume_writing`; errors go to the exception
    /// handler, as in `_FlowControlMixin`.
    pub(super) fn notify_flow(&self, py: Python<'_>, method: &str) -> PyResult<()> {
        let Some(protocol) = self.ref_of(py, |r| &r.protocol) else {
            return Ok(());
        };
        if let Err(e) = protocol.bind(py).call_method0(method) {
            if escapes(py, &e) {
                return Err(e);
            }
            if let Some(l) = self.loop_obj(py) {
                let msg = format!("protocol.{method}() failed");
                let ctx = self.handler_context(py, &msg, e.value(py).as_any())?;
                l.call_method1(intern!(py, "call_exception_handler"), (ctx,))?;
            }
        }
        Ok(())
    }

    pub(super) fn maybe_pause(&self, py: Python<'_>) -> PyResult<()> {
        if self.with(py, |s| {
            let n = s.buffer.len();
            s.flow.should_pause(n)
        }) {
            self.notify_flow(py, "pause_writing")?;
        }
        Ok(())
    }

    pub(super) fn maybe_resume(&self, py: Python<'_>) -> PyResult<()> {
        if self.with(py, |s| {
            let n = s.buffer.len();
            s.flow.should_resume(n)
        }) {
            self.notify_flow(py, "resume_writing")?;
        }
        Ok(())
    }

    /// asyncio's `_fatal_error`: log (OSError, debug mode only) or report to the exception
    /// handler, then force-close.
    pub(super) fn fatal(
        slf: &Bound<'_, Self>,
        exc: &Bound<'_, PyAny>,
        message: &str,
    ) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        if exc.is_instance_of::<PyOSError>() {
            if me.debug(py)? {
                let t = me.ref_of(py, |r| &r.transport);
                let kw = PyDict::new(py);
                kw.set_item("exc_info", exc)?;
                asyncio_refs::logger(py)?.call_method(
                    intern!(py, "debug"),
                    ("%r: %s", t, message),
                    Some(&kw),
                )?;
            }
        } else if let Some(l) = me.loop_obj(py) {
            let ctx = me.handler_context(py, message, exc)?;
            l.call_method1(intern!(py, "call_exception_handler"), (ctx,))?;
        }
        Self::force_close(slf, Some(exc.clone().unbind()))
    }

    /// Report a failed protocol callback or socket call; `SystemExit`/`KeyboardInterrupt`
    /// propagate instead.
    pub(super) fn fail(slf: &Bound<'_, Self>, e: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        if escapes(py, &e) {
            return Err(e);
        }
        Self::fatal(slf, e.value(py).as_any(), message)
    }

    pub(super) fn force_close(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let step = me.with(py, |s| {
            if s.conn_lost > 0 {
                return None;
            }
            let had_buffer = !s.buffer.is_empty();
            s.buffer.clear();
            let was_closing = std::mem::replace(&mut s.closing, true);
            s.conn_lost += 1;
            Some((had_buffer, was_closing))
        });
        let Some((had_buffer, was_closing)) = step else {
            return Ok(());
        };
        if had_buffer {
            me.remove_writer(py)?;
        }
        if !was_closing {
            me.remove_reader(py)?;
        }
        Self::call_soon(
            slf,
            "_call_connection_lost",
            exc.unwrap_or_else(|| py.None()),
        )
    }

    pub(super) fn read_into_protocol(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let fd = slf.get().fd;
        let got = READ_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.len() < MAX_READ {
                buf.resize(MAX_READ, 0);
            }
            match sys::recv(fd, &mut buf[..MAX_READ]) {
                Ok(Outcome::Done(n)) => Ok(Some(PyBytes::new(py, &buf[..n]))),
                Ok(Outcome::WouldBlock) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let data = match got {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(()),
            Err(e) => {
                let err = os_error(e);
                return Self::fatal(
                    slf,
                    err.value(py).as_any(),
                    "Fatal read error on socket transport",
                );
            }
        };
        if data.as_bytes().is_empty() {
            return Self::on_eof(slf);
        }
        if data.as_bytes().len() == MAX_READ {
            // More may be waiting, and an edge-triggered registration reports only new data.
            slf.get().rearm(py);
        }
        if let Err(e) = protocol.call_method1(intern!(py, "data_received"), (data,)) {
            Self::fail(slf, e, "Fatal error: protocol.data_received() call failed.")?;
        }
        Ok(())
    }

    pub(super) fn read_into_buffer(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let buf = match protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|b| {
                if b.len()? == 0 {
                    Err(PyRuntimeError::new_err(
                        "get_buffer() returned an empty buffer",
                    ))
                } else {
                    Ok(b)
                }
            }) {
            Ok(b) => b,
            Err(e) => return Self::fail(slf, e, "Fatal error: protocol.get_buffer() call failed."),
        };
        let mut asked = 0;
        let outcome = match RawBuffer::get(&buf, true) {
            Ok(view) => {
                asked = view.len();
                // SAFETY: the view is writable, contiguous and `len` bytes long, and stays
                // acquired (so the exporter cannot resize or free it) until `view` drops
                // after the call; no Python code runs during `recv`.
                unsafe { sys::recv_raw(slf.get().fd, view.0.buf.cast(), view.len()) }
                    .map_err(os_error)
            }
            Err(e) => Err(e),
        };
        let n = match outcome {
            Ok(Outcome::Done(n)) => n,
            Ok(Outcome::WouldBlock) => return Ok(()),
            Err(e) => return Self::fail(slf, e, "Fatal read error on socket transport"),
        };
        if n == 0 {
            return Self::on_eof(slf);
        }
        if n == asked {
            slf.get().rearm(py); // the buffer filled: more may be waiting (see above)
        }
        if let Err(e) = protocol.call_method1(intern!(py, "buffer_updated"), (n,)) {
            Self::fail(
                slf,
                e,
                "Fatal error: protocol.buffer_updated() call failed.",
            )?;
        }
        Ok(())
    }

    pub(super) fn on_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        me.log_debug(py, "%r received EOF")?;
        let Some(protocol) = me.ref_of(py, |r| &r.protocol) else {
            return Ok(());
        };
        let keep_open = match protocol.bind(py).call_method0(intern!(py, "eof_received")) {
            Ok(v) => v.is_truthy()?,
            Err(e) => {
                return Self::fail(slf, e, "Fatal error: protocol.eof_received() call failed.")
            }
        };
        if keep_open {
            me.remove_reader(py)
        } else {
            Self::close(slf)
        }
    }

    /// The checks `write()` makes before touching the socket; `Some(true)` means go ahead
    /// with an empty buffer (try `send` first).
    pub(super) fn write_precheck(
        &self,
        py: Python<'_>,
        empty_data: bool,
    ) -> PyResult<Option<bool>> {
        enum Pre {
            Eof,
            Sendfile,
            Nothing,
            Lost(u32),
            Go(bool),
        }
        let pre = self.with(py, |s| {
            if s.eof {
                Pre::Eof
            } else if s.refs.empty_waiter.is_some() {
                Pre::Sendfile
            } else if empty_data {
                Pre::Nothing
            } else if s.conn_lost > 0 {
                let n = s.conn_lost;
                s.conn_lost += 1;
                Pre::Lost(n)
            } else {
                Pre::Go(s.buffer.is_empty())
            }
        });
        match pre {
            Pre::Eof => Err(PyRuntimeError::new_err(
                "Cannot call write() after write_eof()",
            )),
            Pre::Sendfile => Err(PyRuntimeError::new_err(
                "unable to write; sendfile is in progress",
            )),
            Pre::Nothing => Ok(None),
            Pre::Lost(n) => {
                if n >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                    asyncio_refs::logger(py)?.call_method1(
                        intern!(py, "warning"),
                        ("socket.send() raised exception.",),
                    )?;
                }
                Ok(None)
            }
            Pre::Go(empty) => Ok(Some(empty)),
        }
    }
}
