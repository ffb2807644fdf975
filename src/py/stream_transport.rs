//! `StreamTransportCore`: the Rust half of the native stream socket transport.
//!
//! The Python class `trio_asyncio._stream_transport.NativeSocketTransport` is what protocols
//! and asyncio see (it subclasses asyncio's `_FlowControlMixin`, which
//! `loop.sendfile`'s fallback checks for); every method with state behind it comes here.
//! The pure parts (write buffer, water marks, socket calls) are in `crate::transport`.
//!
//! Rules this file keeps:
//! - state lives in a [`GilCell`]; Python code (protocol callbacks, loop calls, dropping a
//!   `Py`) runs only outside `with` closures, so a protocol may call back into the transport
//!   from `data_received`, `pause_writing`, `connection_lost`;
//! - the fd is registered with the loop's `_add_reader`/`_add_writer`, passing bound methods
//!   of this object, so the loop's reactor and handles are used unchanged;
//! - the core holds the Python transport (to pass it to the protocol and the exception
//!   handler) until the connection is lost; the cycle is visible to the GC
//!   (`__traverse__`), so an abandoned transport still gets its `ResourceWarning`.
//!
//! See `design/transports.md` for the contract and what stays on asyncio's transport.

use std::cell::RefCell;
use std::os::fd::RawFd;

use pyo3::exceptions::{
    PyConnectionError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PySystemExit, PyTypeError,
};
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};
use pyo3::PyTraverseError;

use super::asyncio_refs;
use super::errors::os_error;
use super::gil_cell::GilCell;
use crate::transport::buffer::WriteBuffer;
use crate::transport::flow::FlowControl;
use crate::transport::sys::{self, Outcome};

/// Largest single read, as asyncio's `_SelectorTransport.max_size`.
const MAX_READ: usize = 256 * 1024;
/// asyncio's `constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES`.
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

thread_local! {
    /// Scratch space for `data_received` reads: one per thread, not one per transport.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The Python objects a transport refers to; all dropped when the connection is lost.
#[derive(Default)]
struct Refs {
    loop_: Option<Py<PyAny>>,
    sock: Option<Py<PyAny>>,
    protocol: Option<Py<PyAny>>,
    transport: Option<Py<PyAny>>,
    server: Option<Py<PyAny>>,
    empty_waiter: Option<Py<PyAny>>,
}

#[derive(Default)]
struct State {
    refs: Refs,
    buffer: WriteBuffer,
    flow: FlowControl,
    /// The protocol is a `BufferedProtocol` (reads go through `get_buffer`).
    buffered: bool,
    protocol_connected: bool,
    closing: bool,
    eof: bool,
    paused: bool,
    /// Non-zero once `connection_lost` is scheduled; counts writes after that.
    conn_lost: u32,
}

impl State {
    fn is_reading(&self) -> bool {
        !self.closing && !self.paused
    }
}

/// The state and I/O of one stream socket transport (see the module docs).
#[pyclass(module = "trio_asyncio._engine", name = "StreamTransportCore", frozen)]
pub(crate) struct StreamTransportCore {
    fd: RawFd,
    state: GilCell<State>,
}

/// A contiguous byte view of a Python buffer, released on drop.
struct RawBuffer(ffi::Py_buffer);

impl RawBuffer {
    fn get(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<RawBuffer> {
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

    fn len(&self) -> usize {
        usize::try_from(self.0.len).unwrap_or(0)
    }

    fn as_slice(&self) -> &[u8] {
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
fn escapes(py: Python<'_>, e: &PyErr) -> bool {
    e.is_instance_of::<PySystemExit>(py) || e.is_instance_of::<PyKeyboardInterrupt>(py)
}

fn clone_opt(py: Python<'_>, o: &Option<Py<PyAny>>) -> Option<Py<PyAny>> {
    o.as_ref().map(|p| p.clone_ref(py))
}

impl StreamTransportCore {
    fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut State) -> R) -> R {
        self.state.with(py, f)
    }

    fn ref_of(
        &self,
        py: Python<'_>,
        pick: impl FnOnce(&Refs) -> &Option<Py<PyAny>>,
    ) -> Option<Py<PyAny>> {
        self.with(py, |s| clone_opt(py, pick(&s.refs)))
    }

    fn loop_obj<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.ref_of(py, |r| &r.loop_).map(|l| l.into_bound(py))
    }

    fn debug(&self, py: Python<'_>) -> PyResult<bool> {
        match self.loop_obj(py) {
            Some(l) => l.call_method0(intern!(py, "get_debug"))?.is_truthy(),
            None => Ok(false),
        }
    }

    fn log_debug(&self, py: Python<'_>, fmt: &str) -> PyResult<()> {
        if self.debug(py)? {
            let t = self.ref_of(py, |r| &r.transport);
            asyncio_refs::logger(py)?.call_method1(intern!(py, "debug"), (fmt, t))?;
        }
        Ok(())
    }

    fn loop_call(&self, py: Python<'_>, method: &Bound<'_, pyo3::types::PyString>) -> PyResult<()> {
        if let Some(l) = self.loop_obj(py) {
            l.call_method1(method, (self.fd,))?;
        }
        Ok(())
    }

    fn remove_reader(&self, py: Python<'_>) -> PyResult<()> {
        self.loop_call(py, intern!(py, "_remove_reader"))
    }

    fn remove_writer(&self, py: Python<'_>) -> PyResult<()> {
        self.loop_call(py, intern!(py, "_remove_writer"))
    }

    fn register(slf: &Bound<'_, Self>, method: &str, callback: &str) -> PyResult<()> {
        let py = slf.py();
        if let Some(l) = slf.get().loop_obj(py) {
            let cb = slf.getattr(callback)?;
            l.call_method1(method, (slf.get().fd, cb))?;
        }
        Ok(())
    }

    fn add_writer(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::register(slf, "_add_writer", "_write_ready")
    }

    /// Register for reading unless paused or closing (asyncio's `_SelectorTransport._add_reader`).
    fn add_reader_if_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        if slf.get().with(slf.py(), |s| s.is_reading()) {
            Self::register(slf, "_add_reader", "_read_ready")?;
        }
        Ok(())
    }

    fn call_soon(slf: &Bound<'_, Self>, method: &str, arg: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        if let Some(l) = slf.get().loop_obj(py) {
            l.call_method1(intern!(py, "call_soon"), (slf.getattr(method)?, arg))?;
        }
        Ok(())
    }

    /// The exception-handler context asyncio's transports pass.
    fn handler_context<'py>(
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
    fn notify_flow(&self, py: Python<'_>, method: &str) -> PyResult<()> {
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

    fn maybe_pause(&self, py: Python<'_>) -> PyResult<()> {
        if self.with(py, |s| {
            let n = s.buffer.len();
            s.flow.should_pause(n)
        }) {
            self.notify_flow(py, "pause_writing")?;
        }
        Ok(())
    }

    fn maybe_resume(&self, py: Python<'_>) -> PyResult<()> {
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
    fn fatal(slf: &Bound<'_, Self>, exc: &Bound<'_, PyAny>, message: &str) -> PyResult<()> {
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
    fn fail(slf: &Bound<'_, Self>, e: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        if escapes(py, &e) {
            return Err(e);
        }
        Self::fatal(slf, e.value(py).as_any(), message)
    }

    fn force_close(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
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

    fn read_into_protocol(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
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
        if let Err(e) = protocol.call_method1(intern!(py, "data_received"), (data,)) {
            Self::fail(slf, e, "Fatal error: protocol.data_received() call failed.")?;
        }
        Ok(())
    }

    fn read_into_buffer(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
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
        let outcome = match RawBuffer::get(&buf, true) {
            // SAFETY: the view is writable, contiguous and `len` bytes long, and stays
            // acquired (so the exporter cannot resize or free it) until `view` drops after
            // the call; no Python code runs during `recv`.
            Ok(view) => unsafe { sys::recv_raw(slf.get().fd, view.0.buf.cast(), view.len()) }
                .map_err(os_error),
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
        if let Err(e) = protocol.call_method1(intern!(py, "buffer_updated"), (n,)) {
            Self::fail(
                slf,
                e,
                "Fatal error: protocol.buffer_updated() call failed.",
            )?;
        }
        Ok(())
    }

    fn on_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
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
    fn write_precheck(&self, py: Python<'_>, empty_data: bool) -> PyResult<Option<bool>> {
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

#[pymethods]
impl StreamTransportCore {
    #[new]
    #[pyo3(signature = (r#loop, sock, protocol, transport, server = None))]
    fn py_new(
        r#loop: Bound<'_, PyAny>,
        sock: Bound<'_, PyAny>,
        protocol: Bound<'_, PyAny>,
        transport: Bound<'_, PyAny>,
        server: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = sock.py();
        let fd: RawFd = sock.call_method0(intern!(py, "fileno"))?.extract()?;
        let buffered = protocol.is_instance(asyncio_refs::buffered_protocol(py)?)?;
        let state = State {
            refs: Refs {
                loop_: Some(r#loop.unbind()),
                sock: Some(sock.unbind()),
                protocol: Some(protocol.unbind()),
                transport: Some(transport.unbind()),
                server: server.filter(|s| !s.is_none()).map(Bound::unbind),
                empty_waiter: None,
            },
            buffered,
            protocol_connected: true,
            ..State::default()
        };
        Ok(StreamTransportCore {
            fd,
            state: GilCell::new(state),
        })
    }

    /// Write `data` (bytes, bytearray or memoryview): sent now as far as the socket takes
    /// it, the rest buffered.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        if !(data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>())
        {
            let name = data.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "data argument must be a bytes-like object, not {}",
                name.repr()?
            )));
        }
        let view = RawBuffer::get(data, false)?;
        let Some(buffer_empty) = me.write_precheck(py, view.len() == 0)? else {
            return Ok(());
        };
        let bytes = view.as_slice();
        let mut sent = 0;
        if buffer_empty {
            match sys::send(me.fd, bytes) {
                Ok(Outcome::Done(n)) => sent = n,
                Ok(Outcome::WouldBlock) => {}
                Err(e) => {
                    drop(view);
                    let err = os_error(e);
                    return Self::fatal(
                        slf,
                        err.value(py).as_any(),
                        "Fatal write error on socket transport",
                    );
                }
            }
            if sent == bytes.len() {
                return Ok(());
            }
            me.with(py, |s| s.buffer.extend(&bytes[sent..]));
            drop(view);
            Self::add_writer(slf)?;
        } else {
            me.with(py, |s| s.buffer.extend(bytes));
            drop(view);
        }
        me.maybe_pause(py)
    }

    /// Write the concatenation of `list_of_data`.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let joined = PyBytes::new(py, b"").call_method1(intern!(py, "join"), (list_of_data,))?;
        Self::write(slf, &joined)
    }

    fn _write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let fd = me.fd;
        let sent = me.with(py, |s| {
            if s.conn_lost > 0 {
                return None;
            }
            let r = sys::send(fd, s.buffer.as_slice());
            if let Ok(Outcome::Done(n)) = r {
                s.buffer.consume(n);
            }
            Some(r)
        });
        match sent {
            None | Some(Ok(Outcome::WouldBlock)) => Ok(()),
            Some(Err(e)) => {
                me.remove_writer(py)?;
                me.with(py, |s| s.buffer.clear());
                let err = os_error(e);
                let exc = err.value(py).as_any().clone();
                Self::fatal(slf, &exc, "Fatal write error on socket transport")?;
                if let Some(w) = me.ref_of(py, |r| &r.empty_waiter) {
                    w.bind(py)
                        .call_method1(intern!(py, "set_exception"), (exc,))?;
                }
                Ok(())
            }
            Some(Ok(Outcome::Done(_))) => {
                me.maybe_resume(py)?; // may append to the buffer
                let (empty, closing, eof, waiter) = me.with(py, |s| {
                    (
                        s.buffer.is_empty(),
                        s.closing,
                        s.eof,
                        clone_opt(py, &s.refs.empty_waiter),
                    )
                });
                if empty {
                    me.remove_writer(py)?;
                    if let Some(w) = waiter {
                        w.bind(py)
                            .call_method1(intern!(py, "set_result"), (py.None(),))?;
                    }
                    if closing {
                        Self::_call_connection_lost(slf, py.None().into_bound(py))?;
                    } else if eof {
                        sys::shutdown_write(fd).map_err(os_error)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn _read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (lost, buffered, protocol) = slf.get().with(py, |s| {
            (s.conn_lost > 0, s.buffered, clone_opt(py, &s.refs.protocol))
        });
        let Some(protocol) = protocol else {
            return Ok(());
        };
        if lost {
            return Ok(());
        }
        if buffered {
            Self::read_into_buffer(slf, protocol.bind(py))
        } else {
            Self::read_into_protocol(slf, protocol.bind(py))
        }
    }

    /// The first read registration, scheduled after `connection_made`.
    fn _start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::add_reader_if_reading(slf)
    }

    /// Close the write side once the buffer is flushed.
    fn write_eof(&self, py: Python<'_>) -> PyResult<()> {
        let now = self.with(py, |s| {
            if s.closing || s.eof {
                return false;
            }
            s.eof = true;
            s.buffer.is_empty()
        });
        if now {
            sys::shutdown_write(self.fd).map_err(os_error)?;
        }
        Ok(())
    }

    /// Stop reading; flush the buffer, then lose the connection (`connection_lost(None)`).
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let step = me.with(py, |s| {
            if s.closing {
                return None;
            }
            s.closing = true;
            let empty = s.buffer.is_empty();
            if empty {
                s.conn_lost += 1;
            }
            Some(empty)
        });
        let Some(empty) = step else {
            return Ok(());
        };
        me.remove_reader(py)?;
        if empty {
            me.remove_writer(py)?;
            Self::call_soon(slf, "_call_connection_lost", py.None())?;
        }
        Ok(())
    }

    #[pyo3(signature = (exc))]
    fn _force_close(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>) -> PyResult<()> {
        let exc = (!exc.is_none()).then(|| exc.unbind());
        Self::force_close(slf, exc)
    }

    #[pyo3(signature = (exc, message = "Fatal error on transport"))]
    fn _fatal_error(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>, message: &str) -> PyResult<()> {
        Self::fatal(slf, &exc, message)
    }

    fn _call_connection_lost(slf: &Bound<'_, Self>, exc: Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let (protocol, connected) = me.with(py, |s| {
            (clone_opt(py, &s.refs.protocol), s.protocol_connected)
        });
        let result = match protocol {
            Some(p) if connected => p
                .bind(py)
                .call_method1(intern!(py, "connection_lost"), (&exc,))
                .map(drop),
            _ => Ok(()),
        };
        // As asyncio's `finally:` block: release everything even if the protocol raised.
        // From here on the fd is never touched again (it may be reused by another socket):
        // `conn_lost` turns later writes and read/write events into no-ops. asyncio leaves
        // it at 0 when a flushing `close()` ends in `_write_ready`, and a later `write()`
        // fails on `None._sock`; ignoring the write is the safe version of that.
        let refs = me.with(py, |s| {
            s.conn_lost = s.conn_lost.max(1);
            let r = std::mem::take(&mut s.refs);
            s.refs.empty_waiter = clone_opt(py, &r.empty_waiter);
            r
        });
        let mut cleanup = Ok(());
        if let Some(sock) = &refs.sock {
            cleanup = sock.bind(py).call_method0(intern!(py, "close")).map(drop);
        }
        if let Some(server) = &refs.server {
            let detached = if py.version_info() >= (3, 13) {
                server
                    .bind(py)
                    .call_method1(intern!(py, "_detach"), (&refs.transport,))
            } else {
                server.bind(py).call_method0(intern!(py, "_detach"))
            };
            cleanup = cleanup.and(detached.map(drop));
        }
        drop(refs);
        result?;
        cleanup?;
        if let Some(w) = me.ref_of(py, |r| &r.empty_waiter) {
            let err = PyConnectionError::new_err("Connection is closed by peer");
            w.bind(py)
                .call_method1(intern!(py, "set_exception"), (err.value(py),))?;
        }
        Ok(())
    }

    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::force_close(slf, None)
    }

    fn is_closing(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.closing)
    }

    fn is_reading(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.is_reading())
    }

    fn pause_reading(&self, py: Python<'_>) -> PyResult<()> {
        let go = self.with(py, |s| {
            let go = s.is_reading();
            if go {
                s.paused = true;
            }
            go
        });
        if go {
            self.remove_reader(py)?;
            self.log_debug(py, "%r pauses reading")?;
        }
        Ok(())
    }

    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let go = me.with(py, |s| {
            if s.closing || !s.paused {
                return false;
            }
            s.paused = false;
            true
        });
        if go {
            Self::add_reader_if_reading(slf)?;
            me.log_debug(py, "%r resumes reading")?;
        }
        Ok(())
    }

    fn set_protocol(&self, py: Python<'_>, protocol: Bound<'_, PyAny>) -> PyResult<()> {
        let buffered = protocol.is_instance(asyncio_refs::buffered_protocol(py)?)?;
        let old = self.with(py, |s| {
            s.buffered = buffered;
            s.protocol_connected = true;
            s.refs.protocol.replace(protocol.unbind())
        });
        drop(old);
        Ok(())
    }

    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.ref_of(py, |r| &r.protocol)
    }

    fn get_write_buffer_size(&self, py: Python<'_>) -> usize {
        self.with(py, |s| s.buffer.len())
    }

    fn get_write_buffer_limits(&self, py: Python<'_>) -> (usize, usize) {
        self.with(py, |s| s.flow.limits())
    }

    #[pyo3(signature = (high = None, low = None))]
    fn set_write_buffer_limits(
        &self,
        py: Python<'_>,
        high: Option<i128>,
        low: Option<i128>,
    ) -> PyResult<()> {
        self.with(py, |s| s.flow.set_limits(high, low))?;
        self.maybe_pause(py)
    }

    fn _maybe_pause_protocol(&self, py: Python<'_>) -> PyResult<()> {
        self.maybe_pause(py)
    }

    fn _maybe_resume_protocol(&self, py: Python<'_>) -> PyResult<()> {
        self.maybe_resume(py)
    }

    fn _make_empty_waiter(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.with(py, |s| s.refs.empty_waiter.is_some()) {
            return Err(PyRuntimeError::new_err("Empty waiter is already set"));
        }
        let Some(l) = self.loop_obj(py) else {
            return Err(PyRuntimeError::new_err("Transport is closed"));
        };
        let waiter = l.call_method0(intern!(py, "create_future"))?;
        let empty = self.with(py, |s| {
            s.refs.empty_waiter = Some(waiter.clone().unbind());
            s.buffer.is_empty()
        });
        if empty {
            waiter.call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        Ok(waiter.unbind())
    }

    fn _reset_empty_waiter(&self, py: Python<'_>) {
        let old = self.with(py, |s| s.refs.empty_waiter.take());
        drop(old);
    }

    #[getter]
    fn _sock(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.ref_of(py, |r| &r.sock)
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.ref_of(py, |r| &r.loop_)
    }

    #[getter]
    fn _server(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.ref_of(py, |r| &r.server)
    }

    #[getter]
    fn _empty_waiter(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.ref_of(py, |r| &r.empty_waiter)
    }

    #[getter]
    fn _closing(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.closing)
    }

    #[getter]
    fn _eof(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.eof)
    }

    #[getter]
    fn _paused(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.paused)
    }

    #[getter]
    fn _conn_lost(&self, py: Python<'_>) -> u32 {
        self.with(py, |s| s.conn_lost)
    }

    #[getter]
    fn _protocol_paused(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.flow.is_paused())
    }

    #[getter]
    fn _protocol_connected(&self, py: Python<'_>) -> bool {
        self.with(py, |s| s.protocol_connected)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: tp_traverse runs with the GIL held, and the reference is only used for
        // `visit.call`, which runs no Python code.
        if let Some(s) = unsafe { self.state.peek() } {
            let r = &s.refs;
            for o in [
                &r.loop_,
                &r.sock,
                &r.protocol,
                &r.transport,
                &r.server,
                &r.empty_waiter,
            ]
            .into_iter()
            .flatten()
            {
                visit.call(o)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            let old = self.with(py, |s| std::mem::take(&mut s.refs));
            drop(old);
        });
    }
}
