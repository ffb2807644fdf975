//! The scheduler core of an asyncio loop: its state and where each concept lives.
//!
//! [`Core`] is what the Python class `LoopCore` (`py/loop_core.rs`) holds; that class only
//! converts arguments, calls in here and maps errors. One concept per file:
//!
//! | file | concept |
//! | --- | --- |
//! | `mod.rs` | the struct, construction, close, fork renewal, statistics, GC traversal |
//! | [`run_state`] | running / stopping / closed / interrupt / debug, the owner thread |
//! | [`time`] | loop time: native clock plus offset, or an external clock |
//! | [`enqueue`] | the one enqueue path, the threadsafe queue, the one dead-timer release |
//! | [`io`] | reader/writer registrations on the reactor, the zero-timeout poll |
//! | [`sleep`] | the sleep/wake protocol and the blocking wait |
//! | [`batch`] | one iteration (asyncio's `_run_once`) and the batch runner (`_run_ready`) |
//!
//! State and threads:
//! - `state` ([`LockCell`]): ready FIFO, timer heap, reactor, poller, clock; touched only
//!   with the lock (the GIL) held and never across a call into the layer above.
//! - `threadsafe`: callbacks queued from threads other than the owner thread, behind a
//!   `Mutex`, with `threadsafe_len` as the lock-free "anything there?" check; moved to the
//!   ready FIFO (or the timer heap) at the start of each iteration.
//! - `waker` + atomics: the sleep/wake handshake (`scheduler/waker.rs`).

pub(crate) mod batch;
mod enqueue;
mod io;
pub(crate) mod run_state;
mod sleep;
mod time;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

use crossbeam_utils::CachePadded;

use self::run_state::RunState;
use super::binding::Binding;
use super::cell::LockCell;
use super::clock;
use super::error::SchedulerError;
use super::poller::Poller;
use super::reactor::Reactor;
use super::ready::ReadyQueue;
use super::timers::TimerHeap;
use super::waker::Waker;

pub(crate) use self::batch::{IDLE, STOP, YIELD};

struct CoreState<B: Binding> {
    ready: ReadyQueue<B::Item>,
    timers: TimerHeap<B::Item>,
    /// `None` once closed.
    reactor: Option<Reactor<B::Item>>,
    /// `None` once closed (or while a thread is blocked in it).
    poller: Option<Poller>,
    /// A wake-up was claimed during the last sleep and its event has not been seen by a
    /// poll yet: poll even if no fd is registered, so the poller's fd does not stay ready.
    wake_outstanding: bool,
    clock_offset: f64,
    clock_fn: Option<B::Clock>,
    clock_resolution: f64,
    iterations: u64,
    callbacks: u64,
}

/// Everything a closed (or collected) loop drops, dropped after the state borrow ends.
type Leftovers<B> = (
    VecDeque<<B as Binding>::Item>,
    Vec<<B as Binding>::Item>,
    Option<Reactor<<B as Binding>::Item>>,
    Option<Poller>,
    VecDeque<<B as Binding>::Item>,
);

/// The scheduler core: ready FIFO, timers, reactor, run state, sleep protocol, batch runner.
pub(crate) struct Core<B: Binding> {
    state: LockCell<CoreState<B>>,
    threadsafe: Mutex<VecDeque<B::Item>>,
    /// Written by producers on other threads, read by the driver every iteration: on a
    /// cache line of its own.
    threadsafe_len: CachePadded<AtomicUsize>,
    waker: Waker,
    /// The poller's fd (what a Trio driver parks on); -1 once closed.
    poll_fd: AtomicI32,
    run: RunState,
    /// The last blocking wait of a waiting batch found work at once (see `batch.rs`).
    waits_are_short: AtomicBool,
    /// `run_batch` returned YIELD right after polling: the next call runs what that poll
    /// queued before polling again (a second poll would queue the same callbacks twice).
    polled_ahead: AtomicBool,
}

/// A snapshot of the core's counters (`LoopCore.statistics()`).
pub(crate) struct Statistics {
    pub(crate) ready: usize,
    pub(crate) timers: usize,
    pub(crate) cancelled_timers: usize,
    pub(crate) readers: usize,
    pub(crate) writers: usize,
    pub(crate) threadsafe: usize,
    pub(crate) iterations: u64,
    pub(crate) callbacks: u64,
    pub(crate) polls: u64,
    pub(crate) rearms: u64,
    pub(crate) wakeups: u64,
    pub(crate) sleeping: bool,
    pub(crate) closed: bool,
}

impl<B: Binding> Core<B> {
    /// A new open core owned by the calling thread, with its own poller and waker.
    pub(crate) fn new() -> Result<Core<B>, SchedulerError> {
        let (poller, registry, waker) = Poller::new()?;
        let poll_fd = poller.raw_fd();
        Ok(Core {
            state: LockCell::new(CoreState {
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
            run: RunState::new(B::thread_ident()),
            waits_are_short: AtomicBool::new(false),
            polled_ahead: AtomicBool::new(false),
        })
    }

    /// The poller's fd (readable when a registered fd is ready or the loop is woken), or
    /// -1 once closed.
    pub(crate) fn poll_fd(&self) -> i32 {
        self.poll_fd.load(Ordering::Relaxed)
    }

    /// Close: drop every queued callback, timer and registration; close the poller and
    /// waker fds. Idempotent.
    pub(crate) fn close(&self, t: B::Token<'_>) {
        self.run.set_closed(true);
        let leftovers = self.take_everything(t);
        drop(leftovers);
    }

    /// The GC's `tp_clear`: close and drop the external clock too.
    pub(crate) fn clear(&self, t: B::Token<'_>) {
        let leftovers = self.take_everything(t);
        let clock_fn = self.state.with(t, |s| s.clock_fn.take());
        self.run.set_closed(true);
        drop((leftovers, clock_fn));
    }

    /// Take everything out of the state (to be dropped by the caller) and close the fds.
    fn take_everything(&self, t: B::Token<'_>) -> Leftovers<B> {
        let (ready, timers, reactor, poller) = self.state.with(t, |s| {
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

    /// In a child process after `fork()`: give the core kernel objects of its own. The
    /// poller and the wake fd are shared with the parent (an epoll instance is one kernel
    /// object whichever process holds it), so every registration change the child made
    /// through them would change the parent's loop. A new poller gets the same fd
    /// registrations; the inherited fds are only closed, never deregistered.
    pub(crate) fn renew_after_fork(&self, t: B::Token<'_>) -> Result<(), SchedulerError> {
        if self.run.is_closed() {
            return Ok(());
        }
        // A new mio::Poll (epoll fd), its registry and waker; every live registration is
        // registered into it. The old poller (also None if another thread was blocked in
        // it: that thread does not exist in the child), registry and waker are dropped,
        // which only closes the child's copies of their fds.
        let (poller, registry, waker) = Poller::new()?;
        self.poll_fd.store(poller.raw_fd(), Ordering::Relaxed);
        self.waker.renew(waker);
        self.polled_ahead.store(false, Ordering::Relaxed);
        let (old_poller, refused) = self.state.with(t, |s| {
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

    pub(crate) fn ready_len(&self, t: B::Token<'_>) -> usize {
        self.state.with(t, |s| s.ready.len())
    }

    pub(crate) fn timers_len(&self, t: B::Token<'_>) -> usize {
        self.state.with(t, |s| s.timers.len())
    }

    /// A snapshot of the counters.
    pub(crate) fn statistics(&self, t: B::Token<'_>) -> Statistics {
        let threadsafe = self.threadsafe_len.load(Ordering::SeqCst);
        self.state.with(t, |s| Statistics {
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
            closed: self.run.is_closed(),
        })
    }

    /// Visit every callback and the external clock the core holds (the GC's
    /// `tp_traverse`); stops at the first error.
    ///
    /// # Safety
    /// The caller must hold the engine's lock and `item`/`clock` must not run code of the
    /// layer above (see [`LockCell::peek`]).
    pub(crate) unsafe fn traverse<E>(
        &self,
        mut item: impl FnMut(&B::Item) -> Result<(), E>,
        clock: impl FnOnce(&B::Clock) -> Result<(), E>,
    ) -> Result<(), E> {
        // SAFETY: the caller holds the lock and runs no code of the layer above.
        if let Some(s) = unsafe { self.state.peek() } {
            for h in s.ready.iter() {
                item(h)?;
            }
            for h in s.timers.iter() {
                item(h)?;
            }
            if let Some(r) = &s.reactor {
                for (_, rd, wr) in r.iter() {
                    rd.map_or(Ok(()), &mut item)?;
                    wr.map_or(Ok(()), &mut item)?;
                }
            }
            if let Some(c) = &s.clock_fn {
                clock(c)?;
            }
        }
        if let Ok(q) = self.threadsafe.try_lock() {
            for h in q.iter() {
                item(h)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
