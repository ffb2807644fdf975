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
//! - the fd is registered edge-triggered with the loop's reactor (`LoopCore::register_edge`;
//!   `_add_reader`/`_add_writer` on another loop), passing bound methods of this object as
//!   the handles' callbacks; a read or write that stops while the socket may still be ready
//!   asks for a re-arm (design/transports.md, "Edge-triggered registration");
//! - the core holds the Python transport (to pass it to the protocol and the exception
//!   handler) until the connection is lost; the cycle is visible to the GC
//!   (`__traverse__`), so an abandoned transport still gets its `ResourceWarning`.
//!
//! See `design/transports.md` for the contract and what stays on asyncio's transport.

use std::cell::RefCell;
use std::os::fd::RawFd;

use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
use pyo3::PyTraverseError;

mod paths;

use self::paths::{clone_opt, RawBuffer};
use super::asyncio_refs;
use super::errors::os_error;
use super::gil::GilCell;
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
            // Register first, as asyncio does: if that fails nothing is left buffered
            // without a writer to send it. The view stays acquired meanwhile (a bytearray
            // cannot be resized while exported), so `bytes` is still valid after.
            Self::add_writer(slf)?;
            let bytes = view.as_slice();
            me.with(py, |s| s.buffer.extend(&bytes[sent..]));
            drop(view);
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
            None => Ok(()),
            Some(Ok(Outcome::WouldBlock)) => {
                me.rearm(py); // edge-triggered: ask again rather than trust the next edge
                Ok(())
            }
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
                if !empty {
                    me.rearm(py); // a partial send: the socket may take more later
                } else {
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
