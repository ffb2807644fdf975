//! `LoopCore`: the Rust base class of the asyncio loops (asyncio-flavoured, sync API).
//!
//! The Python loop classes inherit from it first (`class L(LoopCore, <asyncio loop>)`), so
//! its methods override asyncio's by MRO and `loop.call_soon(...)` from Python or from C
//! (asyncio's C `Task`/`Future`) is one vectorcall into Rust. The loop's *driver* (a Trio
//! task, or a test's `select` loop) calls [`LoopCore::_run_ready`] and the sleep protocol;
//! the sync loop before it has a Trio run calls `_run_ready(budget, wait=True)`, which
//! blocks in the poller itself. See `design/scheduler.md`.
//!
//! State and threads:
//! - `state` ([`GilCell`]): ready FIFO, timer heap, reactor, clock; touched only with
//!   the GIL held and never across a Python call.
//! - `threadsafe`: handles queued from threads other than the owner thread, behind a
//!   `Mutex`, with `threadsafe_len` as the lock-free "anything there?" check; moved to the
//!   ready FIFO (or the timer heap) at the start of each iteration.
//! - `waker` + atomics: the sleep/wake handshake (`scheduler/waker.rs`).
//!
//! Producers on the owner thread push straight into the ready FIFO (asyncio's
//! `self._ready.append`), so `call_soon` and `call_soon_threadsafe` from the loop's own
//! thread keep their relative FIFO order, exactly as in asyncio.
//!
//! ============================= section map =============================
//! 1. struct and state          4. registration API (call_*, readers, writers)
//! 2. internal helpers          5. the driver (_run_ready, sleep protocol, close)
//! 3. construction, clock       6. introspection, GC

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use pyo3::exceptions::{PyAttributeError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyTuple};
use pyo3::PyTraverseError;

use super::asyncio_refs;
use super::gil_cell::GilCell;
use super::handle::{cancel_handle, run_handle, Handle, HandleData};
use crate::scheduler::clock;
use crate::scheduler::error::SchedulerError;
use crate::scheduler::poller::Poller;
use crate::scheduler::reactor::{Direction, Reactor};
use crate::scheduler::ready::ReadyQueue;
use crate::scheduler::timers::TimerHeap;
use crate::scheduler::waker::Waker;

/// `_run_ready` results, exported to Python as `_engine.RUN_IDLE`, `RUN_STOP`, `RUN_YIELD`
/// (the one definition).
pub(crate) const IDLE: i32 = 0;
pub(crate) const STOP: i32 = 1;
pub(crate) const YIELD: i32 = 2;

/// A blocking wait that found work within this was "short": the next idle point of a
/// waiting batch polls (timeout 0) before it blocks (see `_run_ready`).
const SHORT_WAIT: Duration = Duration::from_micros(20);

/// Longest single blocking wait; a later deadline is reached by waiting again.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What a driver about to sleep should do.
enum Sleep {
    /// There is work (or the loop stops or is closed): do not block.
    Busy,
    /// Block until this loop-time deadline (`None`: until woken).
    Until(Option<f64>),
}

// =======================================================================================
// 1. struct and state
// =======================================================================================

struct CoreState {
    ready: ReadyQueue<Py<Handle>>,
    timers: TimerHeap<Py<Handle>>,
    /// `None` once closed.
    reactor: Option<Reactor<Py<Handle>>>,
    /// `None` once closed.
    poller: Option<Poller>,
    /// A wake-up was claimed during the last sleep and its event has not been seen by a
    /// poll yet: poll even if no fd is registered, so the poller's fd does not stay ready.
    wake_outstanding: bool,
    clock_offset: f64,
    clock_fn: Option<Py<PyAny>>,
    clock_resolution: f64,
    iterations: u64,
    callbacks: u64,
}

/// Everything a closed (or collected) loop drops, dropped after the state borrow ends.
type Leftovers = (
    VecDeque<Py<Handle>>,
    Vec<Py<Handle>>,
    Option<Reactor<Py<Handle>>>,
    Option<Poller>,
    VecDeque<Py<Handle>>,
);

/// The scheduler core of an asyncio loop: ready FIFO, timers, reactor, driver.
#[pyclass(
    module = "trio_asyncio._engine",
    name = "LoopCore",
    subclass,
    frozen,
    weakref
)]
pub struct LoopCore {
    state: GilCell<CoreState>,
    threadsafe: Mutex<VecDeque<Py<Handle>>>,
    /// Written by producers on other threads, read by the driver every iteration: on a
    /// cache line of its own.
    threadsafe_len: CachePadded<AtomicUsize>,
    waker: Waker,
    /// The poller's fd (what a Trio driver parks on); -1 once closed.
    poll_fd: AtomicI32,
    closed: AtomicBool,
    /// Between `_begin_run()` and `_end_run()` (`is_running()`).
    running: AtomicBool,
    stopping: AtomicBool,
    /// `_interrupt()` was called: a waiting `_run_ready` returns YIELD.
    interrupt: AtomicBool,
    /// The last blocking wait of a waiting batch found work at once (see `_run_ready`).
    waits_are_short: AtomicBool,
    debug: AtomicBool,
    /// `_run_ready` returned YIELD right after polling: the next call runs what that poll
    /// queued before polling again (a second poll would queue the same handles twice).
    polled_ahead: AtomicBool,
    /// `PyThread_get_thread_ident()` of the owner thread; 0 = no owner (no checks).
    owner: AtomicU64,
}

/// A snapshot of the core's counters (read by tests and benches).
#[pyclass(
    module = "trio_asyncio._engine",
    name = "CoreStatistics",
    frozen,
    get_all
)]
pub struct CoreStatistics {
    /// Callbacks in the ready FIFO.
    ready: usize,
    /// Timers in the heap, cancelled ones included.
    timers: usize,
    /// Cancelled timers still in the heap.
    cancelled_timers: usize,
    /// Registered readers.
    readers: usize,
    /// Registered writers.
    writers: usize,
    /// Handles queued from other threads, not yet moved to the ready FIFO.
    threadsafe: usize,
    /// Loop iterations run by `_run_ready`.
    iterations: u64,
    /// Callbacks run (cancelled ones skipped are not counted).
    callbacks: u64,
    /// Reactor polls (system calls) made by `_run_ready`.
    polls: u64,
    /// Level-triggered registrations re-armed after their event was delivered.
    rearms: u64,
    /// Wake-up writes made while the driver slept.
    wakeups: u64,
    /// Whether the driver is between `_prepare_sleep` and `_end_sleep`.
    sleeping: bool,
    /// Whether `_close_core` ran.
    closed: bool,
}

#[pymethods]
impl CoreStatistics {
    fn __repr__(&self) -> String {
        format!(
            "CoreStatistics(ready={}, timers={}, cancelled_timers={}, readers={}, writers={}, \
             threadsafe={}, iterations={}, callbacks={}, polls={}, rearms={}, wakeups={}, sleeping={}, \
             closed={})",
            self.ready,
            self.timers,
            self.cancelled_timers,
            self.readers,
            self.writers,
            self.threadsafe,
            self.iterations,
            self.callbacks,
            self.polls,
            self.rearms,
            self.wakeups,
            if self.sleeping { "True" } else { "False" },
            if self.closed { "True" } else { "False" },
        )
    }
}

// =======================================================================================
// 2. internal helpers
// =======================================================================================

fn current_thread() -> u64 {
    // SAFETY: PyThread_get_thread_ident has no preconditions (it wraps pthread_self).
    unsafe { ffi::PyThread_get_thread_ident() as u64 }
}

/// `contextvars.copy_context()`.
fn copy_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: GIL held; returns a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// `format_helpers.extract_stack(<the calling Python frame>)`: our methods have no Python
/// frame of their own, so the innermost Python frame is the caller's line.
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

/// asyncio's `_check_callback` (debug mode only, as in asyncio).
fn check_callback(callback: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
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
fn reject_keywords(method: &str, kwargs: Option<Bound<'_, PyDict>>) -> PyResult<()> {
    match kwargs.and_then(|k| k.keys().iter().next()) {
        None => Ok(()),
        Some(key) => Err(PyTypeError::new_err(format!(
            "BaseEventLoop.{method}() got an unexpected keyword argument '{key}'"
        ))),
    }
}

/// `selectors._fileobj_to_fd`: an int, or an object with `fileno()`.
fn fd_of(obj: &Bound<'_, PyAny>) -> PyResult<i32> {
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

/// Release cancelled timers taken out of the heap: no longer scheduled, then dropped (outside
/// any state borrow: dropping may run Python code).
fn release_dead_timers(dead: Vec<Py<Handle>>) {
    for h in &dead {
        h.get().scheduled.store(false, Ordering::Relaxed);
    }
    drop(dead);
}

impl LoopCore {
    #[inline]
    pub(crate) fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    #[inline]
    fn check_closed(&self) -> Result<(), SchedulerError> {
        if self.closed.load(Ordering::Relaxed) {
            Err(SchedulerError::Closed)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn on_owner_thread(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        owner == 0 || owner == current_thread()
    }

    /// asyncio's `_check_thread` (debug mode only).
    fn check_thread(&self) -> Result<(), SchedulerError> {
        if self.on_owner_thread() {
            Ok(())
        } else {
            Err(SchedulerError::WrongThread)
        }
    }

    /// The fields of a new handle bound to `lp`: copies the current context if none is
    /// given and, in debug mode, records where it was created.
    pub(crate) fn handle_data(
        lp: &Bound<'_, LoopCore>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<HandleData> {
        let py = lp.py();
        let context = match context {
            Some(c) if !c.is_none() => c.unbind(),
            _ => copy_context(py)?,
        };
        let source_traceback = if lp.get().debug() {
            Some(capture_traceback(py)?)
        } else {
            None
        };
        Ok(HandleData {
            callback: Some(callback.unbind()),
            args: Some(args.unbind()),
            context: Some(context),
            loop_: Some(lp.clone().unbind()),
            source_traceback,
            repr: None,
        })
    }

    /// Queue `h` (ready callback, or timer if `h.is_timer`): straight into the loop state on
    /// the owner thread, through the threadsafe queue from any other thread.
    fn schedule(&self, py: Python<'_>, h: Py<Handle>) {
        let (is_timer, when) = (h.get().is_timer, h.get().when);
        if is_timer {
            h.get().scheduled.store(true, Ordering::Relaxed);
        }
        if self.on_owner_thread() {
            if is_timer {
                self.state.with(py, |s| s.timers.push(when, h));
            } else {
                // Keep asyncio's order between threads: a callback another thread queued
                // before this one (call_soon_threadsafe) must run first.
                if self.threadsafe_len.load(Ordering::SeqCst) != 0 {
                    self.drain_threadsafe(py);
                }
                self.state.with(py, |s| s.ready.push(h));
            }
        } else {
            let mut q = self.threadsafe.lock().unwrap_or_else(|e| e.into_inner());
            q.push_back(h);
            self.threadsafe_len.store(q.len(), Ordering::SeqCst);
        }
        self.waker.notify();
    }

    fn new_handle(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        when: Option<f64>,
    ) -> PyResult<Py<Handle>> {
        let data = LoopCore::handle_data(slf, callback, args, context)?;
        Handle::create(slf.py(), data, when)
    }

    /// A timer in the heap was cancelled: count it and compact the heap if it is mostly
    /// dead (asyncio's rule), so created-and-cancelled timeouts do not pile up.
    pub(crate) fn timer_cancelled(&self, py: Python<'_>) {
        let dead = self.state.with(py, |s| {
            s.timers.note_cancelled();
            let mut dead = Vec::new();
            if s.timers.needs_compaction() {
                s.timers.compact(&mut dead);
            }
            dead
        });
        release_dead_timers(dead);
        self.waker.notify();
    }

    /// Loop time: native clock plus offset, or the Python clock callable.
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        let f = self.state.with(py, |s| match &s.clock_fn {
            None => Err(s.clock_offset),
            Some(f) => Ok(f.clone_ref(py)),
        });
        match f {
            Err(offset) => Ok(clock::monotonic() + offset),
            Ok(f) => f.call0(py)?.extract(py),
        }
    }

    fn drain_threadsafe(&self, py: Python<'_>) {
        let mut batch = {
            let mut q = self.threadsafe.lock().unwrap_or_else(|e| e.into_inner());
            self.threadsafe_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *q)
        };
        self.state.with(py, |s| {
            for h in batch.drain(..) {
                let (is_timer, when) = (h.get().is_timer, h.get().when);
                if is_timer {
                    s.timers.push(when, h);
                } else {
                    s.ready.push(h);
                }
            }
        });
    }

    /// Re-arm what the last poll delivered, poll with timeout 0 and queue the handles of
    /// the ready fds.
    fn poll_io(&self, py: Python<'_>) -> PyResult<()> {
        let mut dead: Vec<Py<Handle>> = Vec::new();
        let r = self.state.with(py, |s| {
            let CoreState {
                reactor,
                poller,
                ready,
                wake_outstanding,
                ..
            } = s;
            let (Some(reactor), Some(poller)) = (reactor, poller) else {
                return Ok(());
            };
            reactor.rearm_delivered();
            let events = match poller.wait(Some(Duration::ZERO)) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
                Err(e) => return Err(e),
            };
            if reactor.dispatch(events, |h| ready.push(h.clone_ref(py)), &mut dead) {
                *wake_outstanding = false;
            }
            Ok(())
        });
        drop(dead);
        r.map_err(|e| SchedulerError::from(e).into())
    }

    /// Whether the next iteration must poll: an fd is registered, or a wake-up's event may
    /// still be queued in the poller.
    /// Enter the sleeping state, or stay awake (Busy) if there is work already.
    fn enter_sleep(&self, py: Python<'_>) -> Sleep {
        if self.closed.load(Ordering::Relaxed) {
            return Sleep::Busy;
        }
        // Level-triggered fds delivered in the last batch and still ready must make the
        // poller report them (or its fd readable) before the driver blocks.
        self.state
            .with(py, |s| s.reactor.as_mut().map(|r| r.rearm_delivered()));
        self.waker.begin_sleep();
        if self.stopping.load(Ordering::SeqCst) || !self.is_idle(py) {
            self.leave_sleep(py);
            return Sleep::Busy;
        }
        let (when, dead) = self.state.with(py, |s| {
            let mut dead = Vec::new();
            s.timers.pop_cancelled_top(&mut dead);
            (s.timers.peek_when(), dead)
        });
        // Dropping may run __del__ code that queues work: it then wakes us (we sleep).
        release_dead_timers(dead);
        Sleep::Until(when)
    }

    /// Block in the poller until an fd event, a wake-up or the earliest timer, with the GIL
    /// released; queue what it found. A signal interrupting the wait runs the Python
    /// signal handlers (which may raise, e.g. KeyboardInterrupt).
    fn block(&self, py: Python<'_>) -> PyResult<()> {
        let Sleep::Until(when) = self.enter_sleep(py) else {
            return Ok(());
        };
        let timeout = match when {
            None => None,
            Some(when) => {
                let dt = when - self.now(py)?;
                Some(if dt > 0.0 {
                    Duration::try_from_secs_f64(dt)
                        .unwrap_or(MAX_WAIT)
                        .min(MAX_WAIT)
                } else if dt.is_nan() {
                    // Never due: wait as for a far deadline (Python refuses NaN timers).
                    MAX_WAIT
                } else {
                    Duration::ZERO
                })
            }
        };
        let Some(mut poller) = self.state.with(py, |s| s.poller.take()) else {
            // Closed, or another thread is blocked in this loop's poller.
            self.leave_sleep(py);
            self.check_closed()?;
            return Err(SchedulerError::AlreadyRunning.into());
        };
        let (poller, waited) = py.detach(move || {
            let r = poller.wait(timeout).map(|_| ());
            (poller, r)
        });
        let claimed = self.waker.end_sleep();
        let mut dead: Vec<Py<Handle>> = Vec::new();
        let leftover = self.state.with(py, |s| {
            let CoreState {
                reactor,
                ready,
                wake_outstanding,
                poller: slot,
                ..
            } = s;
            let Some(reactor) = reactor else {
                return Some(poller);
            }; // closed meanwhile
            let woken = waited.is_ok()
                && reactor.dispatch(poller.events(), |h| ready.push(h.clone_ref(py)), &mut dead);
            if claimed && !woken {
                *wake_outstanding = true;
            }
            *slot = Some(poller);
            None
        });
        drop((dead, leftover));
        match waited {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => py.check_signals(),
            Err(e) => Err(SchedulerError::from(e).into()),
        }
    }

    /// End a sleep; returns whether a wake-up was claimed (then its event must be polled).
    fn leave_sleep(&self, py: Python<'_>) -> bool {
        let claimed = self.waker.end_sleep();
        if claimed {
            self.state.with(py, |s| s.wake_outstanding = true);
        }
        claimed
    }

    fn must_poll(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| {
            s.wake_outstanding || s.reactor.as_ref().is_some_and(|r| r.has_registrations())
        })
    }

    /// One loop iteration, asyncio's `_run_once` minus the blocking select (`poll`: whether
    /// to poll the reactor first).
    fn run_once(&self, py: Python<'_>, loop_obj: &Bound<'_, PyAny>, poll: bool) -> PyResult<()> {
        let mut dead: Vec<Py<Handle>> = Vec::new();
        // (a) work queued from other threads.
        if self.threadsafe_len.load(Ordering::SeqCst) != 0 {
            self.drain_threadsafe(py);
        }
        // (b) I/O: a poll with timeout 0, only if some fd is registered (and the driver did
        // not just poll before deciding whether it was idle).
        let (has_regs, has_timers) = self.state.with(py, |s| {
            (
                s.wake_outstanding || s.reactor.as_ref().is_some_and(|r| r.has_registrations()),
                !s.timers.is_empty(),
            )
        });
        if has_regs && poll {
            self.poll_io(py)?;
        }
        // (c) due timers, after the callbacks already queued, in (when, sequence) order.
        if has_timers {
            let now = self.now(py)?;
            self.state.with(py, |s| {
                let limit = now + s.clock_resolution;
                if s.timers.needs_compaction() {
                    s.timers.compact(&mut dead);
                }
                s.timers.pop_cancelled_top(&mut dead);
                // `scheduled` is cleared (and cancelled ones skipped) when they are dequeued
                // to run: touching each handle here too would double the cache misses.
                let CoreState { timers, ready, .. } = s;
                timers.drain_due(limit, |h| ready.push(h));
            });
        }
        release_dead_timers(dead);
        // (d) run the callbacks that are ready now; the ones they add run next iteration.
        let ntodo = self.state.with(py, |s| {
            s.iterations += 1;
            s.ready.begin_batch()
        });
        let debug = self.debug();
        for _ in 0..ntodo {
            let next = self.state.with(py, |s| {
                let h = s.ready.pop()?;
                let hd = h.get();
                let live = !hd.cancelled.load(Ordering::Relaxed);
                if hd.is_timer && hd.scheduled.swap(false, Ordering::Relaxed) && !live {
                    // Cancelled while queued: it was counted as a cancelled heap entry.
                    s.timers.forget_cancelled();
                }
                if live {
                    s.callbacks += 1;
                }
                Some((h, live))
            });
            let Some((h, live)) = next else { break }; // closed by a callback
            if !live {
                continue;
            }
            let h = h.into_bound(py);
            if debug {
                self.run_debug(py, &h, loop_obj)?;
            } else {
                run_handle(py, &h, loop_obj)?;
            }
        }
        Ok(())
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
        let t0 = self.now(py);
        let r = run_handle(py, h, loop_obj);
        let _ = loop_obj.setattr(current, py.None());
        r?;
        let dt = self.now(py)? - t0?;
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

    /// Whether the earliest live timer is already due: then the next iteration has work
    /// and the driver must not go through a sleep (a `call_later(0)` chain would otherwise
    /// pay a poll and a wake-fd drain per callback).
    fn timer_due(&self, py: Python<'_>) -> PyResult<bool> {
        let (top, resolution, dead) = self.state.with(py, |s| {
            let mut dead = Vec::new();
            s.timers.pop_cancelled_top(&mut dead);
            (s.timers.peek_when(), s.clock_resolution, dead)
        });
        release_dead_timers(dead);
        match top {
            None => Ok(false),
            Some(when) => Ok(when < self.now(py)? + resolution),
        }
    }

    fn is_idle(&self, py: Python<'_>) -> bool {
        self.threadsafe_len.load(Ordering::SeqCst) == 0
            && self.state.with(py, |s| s.ready.is_empty())
    }

    /// Take everything out of the state (to be dropped by the caller) and close the fds.
    fn take_everything(&self, py: Python<'_>) -> Leftovers {
        let (ready, timers, reactor, poller) = self.state.with(py, |s| {
            (
                s.ready.take_all(),
                s.timers.take_all(),
                s.reactor.take(),
                s.poller.take(),
            )
        });
        self.poll_fd.store(-1, Ordering::Relaxed);
        let ts = {
            let mut q = self.threadsafe.lock().unwrap_or_else(|e| e.into_inner());
            self.threadsafe_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *q)
        };
        self.waker.close();
        (ready, timers, reactor, poller, ts)
    }

    fn register(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        dir: Direction,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let core = slf.get();
        core.check_closed()?;
        let fd = fd_of(fd)?;
        let h = LoopCore::new_handle(slf, callback, args, None, None)?;
        let res = core.state.with(py, |s| match s.reactor.as_mut() {
            Some(r) => r
                .add(fd, dir, h.clone_ref(py))
                .map_err(|(e, item)| (SchedulerError::Io(e), Some(item))),
            None => Err((SchedulerError::Closed, None)),
        });
        core.waker.notify();
        match res {
            Ok(Some(prev)) => {
                cancel_handle(prev.bind(py))?;
                Ok(h)
            }
            Ok(None) => Ok(h),
            Err((e, item)) => {
                drop(item);
                Err(e.into())
            }
        }
    }

    fn unregister(&self, py: Python<'_>, fd: &Bound<'_, PyAny>, dir: Direction) -> PyResult<bool> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(false);
        }
        // As the selectors' get_key: an invalid fd (negative, not a file object) raises; one
        // too large for a C int is simply not registered.
        let fd = match fd_of(fd) {
            Ok(fd) => fd,
            Err(e) if e.is_instance_of::<PyOverflowError>(py) => return Ok(false),
            Err(e) => return Err(e),
        };
        let prev = self
            .state
            .with(py, |s| s.reactor.as_mut().and_then(|r| r.remove(fd, dir)));
        self.waker.notify();
        match prev {
            Some(h) => {
                cancel_handle(h.bind(py))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn registered(
        &self,
        py: Python<'_>,
        fd: &Bound<'_, PyAny>,
        dir: Direction,
    ) -> PyResult<Option<Py<Handle>>> {
        let fd = fd_of(fd)?;
        Ok(self.state.with(py, |s| {
            s.reactor
                .as_ref()
                .and_then(|r| r.get(fd, dir))
                .map(|h| h.clone_ref(py))
        }))
    }
}

#[pymethods]
impl LoopCore {
    // ===================================================================================
    // 3. construction, clock, flags
    // ===================================================================================

    /// Accepts and ignores any arguments: the Python `__init__`s of subclasses run after.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LoopCore> {
        let (poller, registry, waker) = Poller::new().map_err(SchedulerError::from)?;
        let poll_fd = poller.raw_fd();
        Ok(LoopCore {
            state: GilCell::new(CoreState {
                ready: ReadyQueue::default(),
                timers: TimerHeap::default(),
                reactor: Some(Reactor::new(registry)),
                poller: Some(poller),
                wake_outstanding: false,
                clock_offset: 0.0,
                clock_fn: None,
                clock_resolution: clock::resolution(),
                iterations: 0,
                callbacks: 0,
            }),
            threadsafe: Mutex::new(VecDeque::new()),
            threadsafe_len: CachePadded::new(AtomicUsize::new(0)),
            waker: Waker::new(waker),
            poll_fd: AtomicI32::new(poll_fd),
            closed: AtomicBool::new(false),
            running: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            interrupt: AtomicBool::new(false),
            waits_are_short: AtomicBool::new(false),
            polled_ahead: AtomicBool::new(false),
            debug: AtomicBool::new(false),
            owner: AtomicU64::new(current_thread()),
        })
    }

    /// Return the loop's time: the native monotonic clock plus an offset, or the clock
    /// callable set by `_set_clock_callable`.
    fn time(&self, py: Python<'_>) -> PyResult<f64> {
        self.now(py)
    }

    /// Use the native monotonic clock plus `offset` (Trio's `SystemClock`).
    fn _set_clock_offset(&self, py: Python<'_>, offset: f64) {
        let old = self.state.with(py, |s| {
            s.clock_offset = offset;
            s.clock_fn.take()
        });
        drop(old);
    }

    /// Use `fn()` as the clock (e.g. Trio's `MockClock.current_time`).
    fn _set_clock_callable(&self, py: Python<'_>, r#fn: Py<PyAny>) {
        let old = self.state.with(py, |s| s.clock_fn.replace(r#fn));
        drop(old);
    }

    #[getter]
    fn _clock_resolution(&self, py: Python<'_>) -> f64 {
        self.state.with(py, |s| s.clock_resolution)
    }

    #[setter(_clock_resolution)]
    fn set_clock_resolution(&self, py: Python<'_>, value: f64) {
        self.state.with(py, |s| s.clock_resolution = value);
    }

    fn _set_debug(&self, enabled: bool) {
        self.debug.store(enabled, Ordering::Relaxed);
    }

    /// asyncio's `self._debug`, kept in the core (BaseEventLoop's `set_debug` writes it).
    #[getter(_debug)]
    fn get_debug_flag(&self) -> bool {
        self.debug()
    }

    #[setter(_debug)]
    fn set_debug_flag(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.debug.store(value.is_truthy()?, Ordering::Relaxed);
        Ok(())
    }

    /// Make the calling thread (or thread `ident`) the owner: debug-mode thread checks
    /// compare against it, and other threads' `call_soon` goes through the threadsafe queue.
    #[pyo3(signature = (ident = None))]
    fn _set_owner_thread(&self, ident: Option<u64>) {
        self.owner
            .store(ident.unwrap_or_else(current_thread), Ordering::Relaxed);
    }

    /// No owner thread: no debug-mode thread check, every thread pushes directly.
    fn _clear_owner_thread(&self) {
        self.owner.store(0, Ordering::Relaxed);
    }

    fn _owner_thread(&self) -> Option<u64> {
        match self.owner.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Stop after the current iteration: `_run_ready` returns STOP (1).
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.waker.notify();
    }

    fn _is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn _clear_stopping(&self) {
        self.stopping.store(false, Ordering::SeqCst);
    }

    /// asyncio's `self._stopping`, kept in the core.
    #[getter(_stopping)]
    fn get_stopping(&self) -> bool {
        self._is_stopping()
    }

    #[setter(_stopping)]
    fn set_stopping(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        if value.is_truthy()? {
            self.stop();
        } else {
            self._clear_stopping();
        }
        Ok(())
    }

    /// Returns True if the event loop was closed.
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// asyncio's `self._closed`, kept in the core (`_close_core` sets it).
    #[getter(_closed)]
    fn get_closed(&self) -> bool {
        self.is_closed()
    }

    #[setter(_closed)]
    fn set_closed(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.closed.store(value.is_truthy()?, Ordering::Relaxed);
        Ok(())
    }

    // ===================================================================================
    // 4. registration API
    // ===================================================================================

    /// Arrange for `callback(*args)` to be called soon (FIFO).
    #[pyo3(signature = (callback, *args, context = None, **kwargs))]
    fn call_soon(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<Handle>> {
        reject_keywords("call_soon", kwargs)?;
        LoopCore::enqueue(slf, callback, args, context, None, "call_soon")
    }

    /// Like `call_soon()`, but thread-safe.
    #[pyo3(signature = (callback, *args, context = None, **kwargs))]
    fn call_soon_threadsafe(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<Handle>> {
        reject_keywords("call_soon_threadsafe", kwargs)?;
        LoopCore::enqueue(slf, callback, args, context, None, "call_soon_threadsafe")
    }

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
        let now = slf.get().now(slf.py())?;
        let when =
            if delay.is_exact_instance_of::<PyFloat>() || delay.is_exact_instance_of::<PyInt>() {
                now + delay.extract::<f64>()?
            } else {
                // Stock asyncio computes `self.time() + delay`: the same operation gives the same
                // result and error for every other type (Fraction works, Decimal and objects
                // that only define __float__ raise TypeError).
                PyFloat::new(slf.py(), now).add(&delay)?.extract::<f64>()?
            };
        LoopCore::schedule_at(slf, when, callback, args, context)
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
        LoopCore::schedule_at(slf, when, callback, args, context)
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
        self.registered(py, fd, Direction::Read)
    }

    fn _writer_handle(
        &self,
        py: Python<'_>,
        fd: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Handle>>> {
        self.registered(py, fd, Direction::Write)
    }

    /// `{fd: (reader_handle_or_None, writer_handle_or_None)}` for every registered fd.
    fn _fd_registrations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        type Regs = Vec<(i32, Option<Py<Handle>>, Option<Py<Handle>>)>;
        let regs: Regs = self.state.with(py, |s| match s.reactor.as_ref() {
            Some(r) => r
                .iter()
                .map(|(fd, rd, wr)| (fd, rd.map(|h| h.clone_ref(py)), wr.map(|h| h.clone_ref(py))))
                .collect(),
            None => Vec::new(),
        });
        let d = PyDict::new(py);
        for (fd, rd, wr) in regs {
            d.set_item(fd, (rd, wr))?;
        }
        Ok(d)
    }

    // ===================================================================================
    // 5. the driver
    // ===================================================================================

    /// The poller's fd (readable when a registered fd is ready or the loop is woken), or
    /// -1 if the backend has none (`poll(2)` fallback) or the core is closed.
    fn _poll_fd(&self) -> i32 {
        self.poll_fd.load(Ordering::Relaxed)
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
        let core = slf.get();
        core.check_closed()?;
        let loop_obj = slf.as_any();
        // The budget is coarse on purpose (see `clock::coarse`): a precise clock read per
        // iteration would cost ~15% of a one-callback iteration.
        let start = clock::coarse();
        let mut poll = !core.polled_ahead.swap(false, Ordering::Relaxed);
        if !wait {
            // Only a waiting batch needs telling: the other drivers look at their own work
            // between batches.
            core.interrupt.store(false, Ordering::Relaxed);
        }
        loop {
            core.run_once(py, loop_obj, poll)?;
            poll = true;
            if core.stopping.load(Ordering::SeqCst) {
                return Ok(STOP);
            }
            if wait {
                if core.interrupt.swap(false, Ordering::SeqCst) {
                    return Ok(YIELD);
                }
                if core.is_idle(py) && !core.timer_due(py)? {
                    // Poll ahead (timeout 0, the GIL kept) only while waits keep finding
                    // fds ready at once (a ping-pong on loopback sockets): that saves
                    // releasing and retaking the GIL. Otherwise block directly: one system
                    // call per wake-up, as stock asyncio's select.
                    if core.waits_are_short.load(Ordering::Relaxed) && core.must_poll(py) {
                        core.poll_io(py)?;
                        if !core.is_idle(py) {
                            poll = false;
                            continue;
                        }
                        core.waits_are_short.store(false, Ordering::Relaxed);
                    }
                    let started = std::time::Instant::now();
                    core.block(py)?;
                    let short = started.elapsed() < SHORT_WAIT && !core.is_idle(py);
                    core.waits_are_short.store(short, Ordering::Relaxed);
                    poll = false;
                    if core.interrupt.swap(false, Ordering::SeqCst) {
                        return Ok(YIELD);
                    }
                }
                continue;
            }
            if core.is_idle(py) && !core.timer_due(py)? {
                // Before going idle, look once more for fd events this batch caused (a
                // reply on a loopback socket, a pipe the callback wrote to): a zero-timeout
                // poll costs one system call; sleeping in Trio and being woken costs a
                // trip through Trio's scheduler.
                if !core.must_poll(py) {
                    return Ok(IDLE);
                }
                core.poll_io(py)?;
                if core.is_idle(py) {
                    return Ok(IDLE);
                }
                // Run what the poll found before polling again.
                poll = false;
                if clock::coarse() - start >= budget {
                    core.polled_ahead.store(true, Ordering::Relaxed);
                    return Ok(YIELD);
                }
                continue;
            }
            if clock::coarse() - start >= budget {
                return Ok(YIELD);
            }
        }
    }

    /// Enter the sleeping state. Returns 0.0 (and stays awake) if work is already pending,
    /// else the loop-time deadline of the earliest live timer, or None if there is none.
    /// The driver then parks on `_poll_fd()` until that deadline and calls `_end_sleep()`.
    fn _prepare_sleep(&self, py: Python<'_>) -> Option<f64> {
        match self.enter_sleep(py) {
            Sleep::Busy => Some(0.0),
            Sleep::Until(when) => when,
        }
    }

    /// Make a running `_run_ready(..., wait=True)` return YIELD after the current
    /// iteration (waking it if it is blocked): the Python driver has work of its own.
    fn _interrupt(&self) {
        self.interrupt.store(true, Ordering::SeqCst);
        self.waker.notify();
    }

    /// Mark the loop running (`is_running()`); with `set_owner`, the calling thread owns it.
    /// Raises asyncio's RuntimeError if it is already running.
    #[pyo3(signature = (set_owner = false))]
    fn _begin_run(&self, set_owner: bool) -> PyResult<()> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(SchedulerError::AlreadyRunning.into());
        }
        if set_owner {
            self.owner.store(current_thread(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Mark the loop stopped: not running, not stopping; with `clear_owner`, no owner thread.
    #[pyo3(signature = (clear_owner = false))]
    fn _end_run(&self, clear_owner: bool) {
        self.running.store(false, Ordering::SeqCst);
        self.stopping.store(false, Ordering::SeqCst);
        self.interrupt.store(false, Ordering::SeqCst);
        if clear_owner {
            self.owner.store(0, Ordering::Relaxed);
        }
    }

    /// Return True if the event loop is running.
    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Leave the sleeping state (after waking up, or instead of parking). If a producer
    /// woke the poller, its event is consumed here (fd events found with it are queued).
    fn _end_sleep(&self, py: Python<'_>) -> PyResult<()> {
        if self.leave_sleep(py) {
            self.poll_io(py)?;
        }
        Ok(())
    }

    /// Make the poll fd readable now (once per sleep), so a driver parked on it wakes up.
    /// Used when work was done for the parked driver by another task (see
    /// `BaseTrioEventLoop._drive_inline`).
    fn _wake(&self) {
        self.waker.begin_sleep();
        self.waker.notify();
    }

    /// Close: drop every queued handle, timer and registration; close the poller and
    /// waker fds. Idempotent.
    fn _close_core(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::SeqCst);
        let leftovers = self.take_everything(py);
        drop(leftovers);
    }

    /// In a child process after `fork()`: give the core kernel objects of its own. The
    /// poller and the wake fd are shared with the parent (an epoll instance is one kernel
    /// object whichever process holds it), so every registration change the child made
    /// through them would change the parent's loop. A new poller gets the same fd
    /// registrations; the inherited fds are only closed, never deregistered.
    fn _renew_after_fork(&self, py: Python<'_>) -> PyResult<()> {
        if self.is_closed() {
            return Ok(());
        }
        // A new mio::Poll (epoll fd), its registry and waker; every live registration is
        // registered into it. The old poller (also None if another thread was blocked in
        // it: that thread does not exist in the child), registry and waker are dropped,
        // which only closes the child's copies of their fds.
        let (poller, registry, waker) = Poller::new().map_err(SchedulerError::from)?;
        self.poll_fd.store(poller.raw_fd(), Ordering::Relaxed);
        self.waker.renew(waker);
        self.polled_ahead.store(false, Ordering::Relaxed);
        let (old_poller, refused) = self.state.with(py, |s| {
            s.wake_outstanding = false;
            let refused = s
                .reactor
                .as_mut()
                .map(|r| r.renew(registry))
                .unwrap_or_default();
            (s.poller.replace(poller), refused)
        });
        drop((old_poller, refused));
        Ok(())
    }

    fn _core_closed(&self) -> bool {
        self.is_closed()
    }

    // ===================================================================================
    // 6. introspection, GC
    // ===================================================================================

    fn _ready_len(&self, py: Python<'_>) -> usize {
        self.state.with(py, |s| s.ready.len())
    }

    fn _timers_len(&self, py: Python<'_>) -> usize {
        self.state.with(py, |s| s.timers.len())
    }

    /// A frozen snapshot of the core's counters.
    fn statistics(&self, py: Python<'_>) -> CoreStatistics {
        let threadsafe = self.threadsafe_len.load(Ordering::SeqCst);
        self.state.with(py, |s| CoreStatistics {
            ready: s.ready.len(),
            timers: s.timers.len(),
            cancelled_timers: s.timers.cancelled(),
            readers: s.reactor.as_ref().map_or(0, |r| r.readers()),
            writers: s.reactor.as_ref().map_or(0, |r| r.writers()),
            threadsafe,
            iterations: s.iterations,
            callbacks: s.callbacks,
            polls: s.poller.as_ref().map_or(0, |p| p.polls()),
            rearms: s.reactor.as_ref().map_or(0, |r| r.rearms()),
            wakeups: self.waker.wakes(),
            sleeping: self.waker.is_sleeping(),
            closed: self.closed.load(Ordering::Relaxed),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: tp_traverse runs with the GIL held; the reference is only used for
        // `visit.call`, which runs no Python code.
        if let Some(s) = unsafe { self.state.peek() } {
            for h in s.ready.iter() {
                visit.call(h)?;
            }
            for h in s.timers.iter() {
                visit.call(h)?;
            }
            if let Some(r) = &s.reactor {
                for (_, rd, wr) in r.iter() {
                    visit.call(rd)?;
                    visit.call(wr)?;
                }
            }
            visit.call(&s.clock_fn)?;
        }
        if let Ok(q) = self.threadsafe.try_lock() {
            for h in q.iter() {
                visit.call(h)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            let leftovers = self.take_everything(py);
            let clock_fn = self.state.with(py, |s| s.clock_fn.take());
            self.closed.store(true, Ordering::SeqCst);
            drop((leftovers, clock_fn));
        });
    }
}

impl LoopCore {
    fn schedule_at(
        slf: &Bound<'_, Self>,
        when: f64,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        LoopCore::enqueue(slf, callback, args, context, Some(when), "call_at")
    }

    /// The one enqueue path of `call_soon`, `call_soon_threadsafe`, `call_at`/`call_later`:
    /// asyncio's checks (closed; in debug mode the thread, except for the thread-safe
    /// method, and the callback), a new handle (a timer if `when` is given), queued.
    fn enqueue(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        when: Option<f64>,
        method: &str,
    ) -> PyResult<Py<Handle>> {
        let core = slf.get();
        core.check_closed()?;
        if core.debug() {
            if method != "call_soon_threadsafe" {
                core.check_thread()?;
            }
            check_callback(&callback, method)?;
        }
        let h = LoopCore::new_handle(slf, callback, args, context, when)?;
        core.schedule(slf.py(), h.clone_ref(slf.py()));
        Ok(h)
    }
}
