//! The loop's run state, all on this side of the language seam: running (between
//! `_begin_run` and `_end_run`), stopping (`stop()` was called), closed, the driver's
//! interrupt request, the debug flag and the owner thread.
//!
//! Every flag is an atomic: producers on other threads read `closed` and the owner, and
//! `stop()` may come from a signal handler running on the owner thread in the middle of a
//! batch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::super::binding::Binding;
use super::super::error::SchedulerError;
use super::Core;

pub(crate) struct RunState {
    closed: AtomicBool,
    /// Between `begin_run()` and `end_run()` (`is_running()`).
    running: AtomicBool,
    stopping: AtomicBool,
    /// `interrupt()` was called: a waiting batch returns YIELD.
    interrupt: AtomicBool,
    debug: AtomicBool,
    /// The binding's identifier of the owner thread; 0 = no owner (no checks).
    owner: AtomicU64,
}

impl RunState {
    pub(super) fn new(owner: u64) -> RunState {
        RunState {
            closed: AtomicBool::new(false),
            running: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            interrupt: AtomicBool::new(false),
            debug: AtomicBool::new(false),
            owner: AtomicU64::new(owner),
        }
    }

    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(super) fn set_closed(&self, closed: bool) {
        self.closed.store(closed, Ordering::SeqCst);
    }

    #[inline]
    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Take a pending interrupt request.
    #[inline]
    pub(super) fn take_interrupt(&self) -> bool {
        self.interrupt.swap(false, Ordering::SeqCst)
    }

    pub(super) fn clear_interrupt(&self) {
        self.interrupt.store(false, Ordering::Relaxed);
    }
}

impl<B: Binding> Core<B> {
    /// asyncio's `_check_closed`.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), SchedulerError> {
        if self.run.is_closed() {
            Err(SchedulerError::Closed)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.run.is_closed()
    }

    /// asyncio's `self._closed = value` (the Python close() sets it before closing the core).
    pub(crate) fn set_closed(&self, closed: bool) {
        self.run.closed.store(closed, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn debug(&self) -> bool {
        self.run.debug.load(Ordering::Relaxed)
    }

    pub(crate) fn set_debug(&self, enabled: bool) {
        self.run.debug.store(enabled, Ordering::Relaxed);
    }

    /// Mark the loop running; with `set_owner`, the calling thread owns it. Fails if it is
    /// already running.
    pub(crate) fn begin_run(&self, set_owner: bool) -> Result<(), SchedulerError> {
        if self.run.running.swap(true, Ordering::SeqCst) {
            return Err(SchedulerError::AlreadyRunning);
        }
        if set_owner {
            self.run.owner.store(B::thread_ident(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Mark the loop stopped: not running, not stopping; with `clear_owner`, no owner thread.
    pub(crate) fn end_run(&self, clear_owner: bool) {
        self.run.running.store(false, Ordering::SeqCst);
        self.run.stopping.store(false, Ordering::SeqCst);
        self.run.interrupt.store(false, Ordering::SeqCst);
        if clear_owner {
            self.run.owner.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.run.running.load(Ordering::SeqCst)
    }

    /// Stop after the current iteration: the batch runner returns STOP.
    pub(crate) fn stop(&self) {
        self.run.stopping.store(true, Ordering::SeqCst);
        self.waker.notify();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.run.is_stopping()
    }

    pub(crate) fn clear_stopping(&self) {
        self.run.stopping.store(false, Ordering::SeqCst);
    }

    /// Make a waiting batch return YIELD after the current iteration (waking it if it is
    /// blocked): the driver has work of its own.
    pub(crate) fn interrupt(&self) {
        self.run.interrupt.store(true, Ordering::SeqCst);
        self.waker.notify();
    }

    /// Make thread `ident` (default: the calling thread) the owner.
    pub(crate) fn set_owner(&self, ident: Option<u64>) {
        let ident = ident.unwrap_or_else(B::thread_ident);
        self.run.owner.store(ident, Ordering::Relaxed);
    }

    /// No owner thread: no debug-mode thread check, every thread pushes directly.
    pub(crate) fn clear_owner(&self) {
        self.run.owner.store(0, Ordering::Relaxed);
    }

    pub(crate) fn owner(&self) -> Option<u64> {
        match self.run.owner.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    #[inline]
    pub(super) fn on_owner_thread(&self) -> bool {
        let owner = self.run.owner.load(Ordering::Relaxed);
        owner == 0 || owner == B::thread_ident()
    }

    /// asyncio's `_check_thread` (the binding calls it in debug mode only).
    pub(crate) fn check_thread(&self) -> Result<(), SchedulerError> {
        if self.on_owner_thread() {
            Ok(())
        } else {
            Err(SchedulerError::WrongThread)
        }
    }
}
