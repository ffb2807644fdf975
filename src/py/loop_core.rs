//! `LoopCore`: the Rust base class of the asyncio loops, a thin `#[pymethods]` face over
//! the scheduler core (`scheduler/core/`).
//!
//! The Python loop classes inherit from it first (`class L(LoopCore, <asyncio loop>)`), so
//! its methods override asyncio's by MRO and `loop.call_soon(...)` from Python or from C
//! (asyncio's C `Task`/`Future`) is one vectorcall into Rust. Each method converts its
//! arguments (with stock asyncio's exceptions, `args.rs`), calls the core and lets `?` turn
//! engine errors into exceptions (`errors.rs`). What the core cannot do without Python
//! lives here too: making handles (`handle.rs`), running them (`handle_run.rs`, from the
//! batch runner's `run` closure, with debug mode's slow-callback log), the running-loop
//! state around a batch (`running_loop.rs`) and cancelling replaced registrations.
//! See `design/scheduler.md`.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyTuple};
use pyo3::{Borrowed, PyTraverseError};

use super::args::{check_callback, fd_of, reject_keywords};
use super::asyncio_refs;
use super::binding::{LoopRef, PyCore};
use super::handle::{cancel_handle, Handle, HandleData};
use super::handle_pool::HandlePool;
use super::handle_run::run_handle;
use super::running_loop::RunningLoop;
use super::statistics::CoreStatistics;
use crate::scheduler::reactor::{Direction, Trigger};

/// The scheduler core of an asyncio loop: ready FIFO, timers, reactor, driver.
#[pyclass(
    module = "trio_asyncio._engine",
    name = "LoopCore",
    subclass,
    frozen,
    weakref
)]
pub struct LoopCore {
    core: PyCore,
    /// Spent `call_soon` handles for the next `call_soon` (handle_pool.rs).
    pool: HandlePool,
    /// The running-loop state its batches and runs install (running_loop.rs).
    running: RunningLoop,
}

/// Seconds of continuous work after which a batch run by `_run_batch` returns, so that
/// the driver yields to Trio (`DRIVER_BUDGET` in Python).
pub(crate) const DRIVER_BUDGET: f64 = 0.005;

/// A Python loop argument (`Handle(..., loop)`) as the handle layer holds it.
impl<'a, 'py> FromPyObject<'a, 'py> for LoopRef {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<LoopRef> {
        let lp = obj.cast::<LoopCore>()?;
        Ok(LoopCore::loop_ref(&lp))
    }
}

impl LoopCore {
    fn core_of(lp: &LoopCore) -> &PyCore {
        &lp.core
    }

    #[inline]
    fn loop_ref(slf: &Bound<'_, Self>) -> LoopRef {
        LoopRef::new(slf, LoopCore::core_of)
    }

    /// The one creation path of `call_soon`, `call_soon_threadsafe`, `call_at` and
    /// `call_later`: asyncio's checks (closed; in debug mode the thread, except for the
    /// thread-safe method, and the callback), a new handle (a timer if `when` is given),
    /// queued through the core's one enqueue path.
    #[inline]
    pub(super) fn enqueue(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        when: Option<f64>,
        method: &str,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let core = &slf.get().core;
        core.check_open()?;
        if core.debug() {
            if method != "call_soon_threadsafe" {
                core.check_thread()?;
            }
            check_callback(&callback, method)?;
        }
        let data = HandleData::new(py, LoopCore::loop_ref(slf), callback, args, context)?;
        let h = match when {
            None => slf.get().pool.handle(py, data)?,
            Some(_) => Handle::create(py, data, when)?,
        };
        core.schedule(py, h.clone_ref(py));
        Ok(h)
    }

    fn register(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        dir: Direction,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        slf.get().core.check_open()?;
        let fd = fd_of(fd)?;
        LoopCore::register_fd(slf, fd, dir, callback, args, Trigger::Level)
    }

    fn register_fd(
        slf: &Bound<'_, Self>,
        fd: i32,
        dir: Direction,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        trigger: Trigger,
    ) -> PyResult<Py<Handle>> {
        // The callers checked that the loop is open.
        let py = slf.py();
        let core = &slf.get().core;
        let data = HandleData::new(py, LoopCore::loop_ref(slf), callback, args, None)?;
        let h = Handle::create(py, data, None)?;
        if let Some(prev) = core.register(py, fd, dir, h.clone_ref(py), trigger)? {
            cancel_handle(prev.bind(py))?;
        }
        Ok(h)
    }

    /// A native transport's registration of its own socket: edge-triggered, so a delivered
    /// event costs no re-arm (design/transports.md, "Edge-triggered registration").
    pub(crate) fn register_edge(
        slf: &Bound<'_, Self>,
        fd: i32,
        dir: Direction,
        callback: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        slf.get().core.check_open()?;
        let args = PyTuple::empty(slf.py());
        LoopCore::register_fd(slf, fd, dir, callback, args, Trigger::Edge).map(drop)
    }

    /// Report `fd` again before the next wait if it is still ready (see `register_edge`).
    pub(crate) fn rearm_later(&self, py: Python<'_>, fd: i32) {
        self.core.rearm_later(py, fd);
    }

    fn unregister(&self, py: Python<'_>, fd: &Bound<'_, PyAny>, dir: Direction) -> PyResult<bool> {
        if self.core.is_closed() {
            return Ok(false);
        }
        // As the selectors' get_key: an invalid fd (negative, not a file object) raises; one
        // too large for a C int is simply not registered.
        let fd = match fd_of(fd) {
            Ok(fd) => fd,
            Err(e) if e.is_instance_of::<PyOverflowError>(py) => return Ok(false),
            Err(e) => return Err(e),
        };
        match self.core.unregister(py, fd, dir) {
            Some(h) => {
                cancel_handle(h.bind(py))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Debug mode: time the callback and log it if slow, like `_run_once`.
    fn run_debug(
        &self,
        py: Python<'_>,
        h: &Bound<'_, Handle>,
        loop_obj: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let current = pyo3::intern!(py, "_current_handle");
        // A bare LoopCore has no __dict__ for this attribute: nothing reads it then.
        let _ = loop_obj.setattr(current, h);
        let t0 = self.core.now(py);
        let r = run_handle(py, h, loop_obj);
        let _ = loop_obj.setattr(current, py.None());
        r?;
        let dt = self.core.now(py)? - t0?;
        let slow: f64 = match loop_obj.getattr(pyo3::intern!(py, "slow_callback_duration")) {
            Ok(v) => v.extract()?,
            Err(_) => 0.1,
        };
        if dt >= slow {
            let what = asyncio_refs::format_handle(py)?.call1((h,))?;
            // Looked up each time (debug mode only): asyncio's own tests patch
            // `asyncio.base_events.logger`.
            let logger = py
                .import("asyncio.base_events")?
                .getattr(pyo3::intern!(py, "logger"))?;
            logger.call_method1("warning", ("Executing %s took %.3f seconds", what, dt))?;
        }
        Ok(())
    }
}

#[pymethods]
impl LoopCore {
    // ===================================================================================
    // construction, clock, flags
    // ===================================================================================

    /// Accepts and ignores any arguments: the Python `__init__`s of subclasses run after.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LoopCore> {
        Ok(LoopCore {
            core: PyCore::new()?,
            pool: HandlePool::new(),
            running: RunningLoop::new(),
        })
    }

    /// Return the loop's time: the native monotonic clock plus an offset, or the clock
    /// callable set by `_set_clock_callable`.
    fn time(&self, py: Python<'_>) -> PyResult<f64> {
        self.core.now(py)
    }

    /// Use the native monotonic clock plus `offset` (Trio's `SystemClock`).
    fn _set_clock_offset(&self, py: Python<'_>, offset: f64) {
        self.core.set_clock_offset(py, offset);
    }

    /// Use `fn()` as the clock (e.g. Trio's `MockClock.current_time`).
    fn _set_clock_callable(&self, py: Python<'_>, r#fn: Py<PyAny>) {
        self.core.set_clock(py, r#fn);
    }

    #[getter]
    fn _clock_resolution(&self, py: Python<'_>) -> f64 {
        self.core.clock_resolution(py)
    }

    #[setter(_clock_resolution)]
    fn set_clock_resolution(&self, py: Python<'_>, value: f64) {
        self.core.set_clock_resolution(py, value);
    }

    fn _set_debug(&self, enabled: bool) {
        self.core.set_debug(enabled);
    }

    /// Return the debug mode of the loop (asyncio's `get_debug`). asyncio's C `Future` and
    /// `Task` ask it each time one is created.
    fn get_debug(&self) -> bool {
        self.core.debug()
    }

    /// asyncio's `self._debug`, kept in the core (BaseEventLoop's `set_debug` writes it).
    #[getter(_debug)]
    fn get_debug_flag(&self) -> bool {
        self.core.debug()
    }

    #[setter(_debug)]
    fn set_debug_flag(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.core.set_debug(value.is_truthy()?);
        Ok(())
    }

    /// Make the calling thread (or thread `ident`) the owner: debug-mode thread checks
    /// compare against it, and other threads' `call_soon` goes through the threadsafe queue.
    #[pyo3(signature = (ident = None))]
    fn _set_owner_thread(&self, ident: Option<u64>) {
        self.core.set_owner(ident);
    }

    /// No owner thread: no debug-mode thread check, every thread pushes directly.
    fn _clear_owner_thread(&self) {
        self.core.clear_owner();
    }

    fn _owner_thread(&self) -> Option<u64> {
        self.core.owner()
    }

    /// Stop after the current iteration: `_run_ready` returns STOP (1).
    fn stop(&self) {
        self.core.stop();
    }

    fn _is_stopping(&self) -> bool {
        self.core.is_stopping()
    }

    fn _clear_stopping(&self) {
        self.core.clear_stopping();
    }

    /// asyncio's `self._stopping`, kept in the core.
    #[getter(_stopping)]
    fn get_stopping(&self) -> bool {
        self.core.is_stopping()
    }

    #[setter(_stopping)]
    fn set_stopping(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        if value.is_truthy()? {
            self.core.stop();
        } else {
            self.core.clear_stopping();
        }
        Ok(())
    }

    /// Returns True if the event loop was closed.
    fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// asyncio's `self._closed`, kept in the core (`_close_core` sets it).
    #[getter(_closed)]
    fn get_closed(&self) -> bool {
        self.core.is_closed()
    }

    #[setter(_closed)]
    fn set_closed(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.core.set_closed(value.is_truthy()?);
        Ok(())
    }

    // ===================================================================================
    // registration API
    // ===================================================================================

    // call_soon and call_soon_threadsafe: see fastcall.rs (vectorcall entry points).

    /// Arrange for `callback(*args)` to be called `delay` seconds from now.
    #[pyo3(signature = (delay, callback, *args, context = None, **kwargs))]
    fn call_later(
        slf: &Bound<'_, Self>,
        delay: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<Handle>> {
        reject_keywords("call_later", kwargs)?;
        if delay.is_none() {
            return Err(PyTypeError::new_err("delay must not be None"));
        }
        let now = slf.get().core.now(slf.py())?;
        let when =
            if delay.is_exact_instance_of::<PyFloat>() || delay.is_exact_instance_of::<PyInt>() {
                now + delay.extract::<f64>()?
            } else {
                // Stock asyncio computes `self.time() + delay`: the same operation gives the same
                // result and error for every other type (Fraction works, Decimal and objects
                // that only define __float__ raise TypeError).
                PyFloat::new(slf.py(), now).add(&delay)?.extract::<f64>()?
            };
        LoopCore::enqueue(slf, callback, args, context, Some(when), "call_at")
    }

    /// Like `call_later()`, but uses an absolute time (in `time()`'s reference).
    #[pyo3(signature = (when, callback, *args, context = None, **kwargs))]
    fn call_at(
        slf: &Bound<'_, Self>,
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<Handle>> {
        reject_keywords("call_at", kwargs)?;
        if when.is_none() {
            return Err(PyTypeError::new_err("when cannot be None"));
        }
        let when: f64 = when.extract()?;
        LoopCore::enqueue(slf, callback, args, context, Some(when), "call_at")
    }

    #[pyo3(signature = (fd, callback, *args))]
    fn _add_reader(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        LoopCore::register(slf, fd, Direction::Read, callback, args)
    }

    #[pyo3(signature = (fd, callback, *args))]
    fn _add_writer(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        LoopCore::register(slf, fd, Direction::Write, callback, args)
    }

    fn _remove_reader(&self, py: Python<'_>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.unregister(py, fd, Direction::Read)
    }

    fn _remove_writer(&self, py: Python<'_>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.unregister(py, fd, Direction::Write)
    }

    fn _reader_handle(
        &self,
        py: Python<'_>,
        fd: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Handle>>> {
        Ok(self.core.registered(py, fd_of(fd)?, Direction::Read))
    }

    fn _writer_handle(
        &self,
        py: Python<'_>,
        fd: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Handle>>> {
        Ok(self.core.registered(py, fd_of(fd)?, Direction::Write))
    }

    /// `{fd: (reader_handle_or_None, writer_handle_or_None)}` for every registered fd.
    fn _fd_registrations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (fd, rd, wr) in self.core.registrations(py) {
            d.set_item(fd, (rd, wr))?;
        }
        Ok(d)
    }

    // ===================================================================================
    // the driver
    // ===================================================================================

    /// The poller's fd (readable when a registered fd is ready or the loop is woken), or
    /// -1 once the core is closed.
    fn _poll_fd(&self) -> i32 {
        self.core.poll_fd()
    }

    /// Run loop iterations back to back; return 1 (STOP: `stop()` was called; the flag is
    /// left set), 0 (IDLE: nothing ready), or 2 (YIELD: `budget` seconds have passed).
    ///
    /// With `wait`, the loop blocks in the poller itself when it has nothing to do (the GIL
    /// released, until an fd event, a wake-up or the earliest timer: one system call per
    /// wake-up, as stock asyncio's `select`) instead of returning IDLE, and the budget is
    /// ignored: it returns STOP, or YIELD once `_interrupt()` was called.
    #[pyo3(signature = (budget, wait = false))]
    fn _run_ready(slf: &Bound<'_, Self>, budget: f64, wait: bool) -> PyResult<i32> {
        let py = slf.py();
        let this = slf.get();
        let loop_obj = slf.as_any();
        this.core.run_batch(py, budget, wait, &mut |h, debug| {
            let h = h.into_bound(py);
            if debug {
                this.run_debug(py, &h, loop_obj)
            } else {
                let result = run_handle(py, &h, loop_obj);
                this.pool.give(py, h);
                result
            }
        })
    }

    /// Run ready callbacks (`_run_ready` with `DRIVER_BUDGET`) with the running-loop
    /// state installed around them; return its status. The only place callbacks are run
    /// from, for every driver. sniffio says "asyncio" during the batch; with `in_trio`
    /// (the batch runs inside a Trio run) the thread's async-generator hooks are the
    /// loop's own and, if `_batch_sets_running_loop`, asyncio's running loop is this
    /// loop, all put back before any Trio code runs (running_loop.rs).
    #[pyo3(signature = (in_trio, wait = false))]
    fn _run_batch(slf: &Bound<'_, Self>, in_trio: bool, wait: bool) -> PyResult<i32> {
        slf.get().running.batch(slf.as_any(), in_trio, || {
            Self::_run_ready(slf, DRIVER_BUDGET, wait)
        })
    }

    /// Whether a batch run inside Trio also makes this loop asyncio's running loop.
    #[getter]
    fn _batch_sets_running_loop(&self) -> bool {
        self.running.batch_sets_running_loop()
    }

    #[setter(_batch_sets_running_loop)]
    fn set_batch_sets_running_loop(&self, value: bool) {
        self.running.set_batch_sets_running_loop(value);
    }

    /// The caller's side of the sync loop's `run_forever`, after `_begin_run`: this
    /// thread owns the loop (`_thread_id`), it is the running loop, and its async-generator
    /// hooks are the thread's. `_leave_caller_run` must follow, whatever this raised.
    fn _enter_caller_run(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().running.enter_caller_run(slf.as_any())
    }

    /// End `_enter_caller_run`: no owning thread, no running loop, the caller's hooks.
    fn _leave_caller_run(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().running.leave_caller_run(slf.as_any())
    }

    /// Enter the sleeping state. Returns 0.0 (and stays awake) if work is already pending,
    /// else the loop-time deadline of the earliest live timer, or None if there is none.
    /// The driver then parks on `_poll_fd()` until that deadline and calls `_end_sleep()`.
    fn _prepare_sleep(&self, py: Python<'_>) -> Option<f64> {
        self.core.prepare_sleep(py)
    }

    /// Make a running `_run_ready(..., wait=True)` return YIELD after the current
    /// iteration (waking it if it is blocked): the Python driver has work of its own.
    fn _interrupt(&self) {
        self.core.interrupt();
    }

    /// Mark the loop running (`is_running()`); with `set_owner`, the calling thread owns it.
    /// Raises asyncio's RuntimeError if it is already running.
    #[pyo3(signature = (set_owner = false))]
    fn _begin_run(&self, set_owner: bool) -> PyResult<()> {
        Ok(self.core.begin_run(set_owner)?)
    }

    /// Mark the loop stopped: not running, not stopping; with `clear_owner`, no owner thread.
    #[pyo3(signature = (clear_owner = false))]
    fn _end_run(&self, clear_owner: bool) {
        self.core.end_run(clear_owner);
    }

    /// Return True if the event loop is running.
    fn is_running(&self) -> bool {
        self.core.is_running()
    }

    /// Leave the sleeping state (after waking up, or instead of parking). If a producer
    /// woke the poller, its event is consumed here (fd events found with it are queued).
    fn _end_sleep(&self, py: Python<'_>) -> PyResult<()> {
        Ok(self.core.end_sleep(py)?)
    }

    /// Make the poll fd readable now (once per sleep), so a driver parked on it wakes up.
    /// Used when work was done for the parked driver by another task (see
    /// `BaseTrioEventLoop._drive_inline`).
    fn _wake(&self) {
        self.core.wake();
    }

    /// Close: drop every queued handle, timer and registration; close the poller and
    /// waker fds. Idempotent.
    fn _close_core(&self, py: Python<'_>) {
        self.core.close(py);
        self.pool.clear(py);
        self.running.clear(py);
    }

    /// In a child process after `fork()`: give the core kernel objects of its own (a new
    /// poller with the same fd registrations; the inherited fds are only closed).
    fn _renew_after_fork(&self, py: Python<'_>) -> PyResult<()> {
        Ok(self.core.renew_after_fork(py)?)
    }

    fn _core_closed(&self) -> bool {
        self.core.is_closed()
    }

    // ===================================================================================
    // introspection, GC
    // ===================================================================================

    fn _ready_len(&self, py: Python<'_>) -> usize {
        self.core.ready_len(py)
    }

    fn _timers_len(&self, py: Python<'_>) -> usize {
        self.core.timers_len(py)
    }

    /// A frozen snapshot of the core's counters.
    fn statistics(&self, py: Python<'_>) -> CoreStatistics {
        self.core.statistics(py).into()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: tp_traverse runs with the GIL held; the references are only used for
        // `visit.call`, which runs no Python code.
        unsafe {
            self.core
                .traverse(|h| visit.call(h), |clock| visit.call(clock))?;
            self.pool.traverse(&visit)?;
            self.running.traverse(&visit)
        }
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            self.core.clear(py);
            self.pool.clear(py);
            self.running.clear(py);
        });
    }
}
