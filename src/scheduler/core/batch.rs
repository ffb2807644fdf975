//! The batch runner: one loop iteration (asyncio's `_run_once` minus the blocking select)
//! and [`Core::run_batch`], the one way every driver runs callbacks (`_run_ready`).
//!
//! Running a callback is the binding's job: the runner hands each live callback to the
//! `run` closure it is given, with the debug flag read once per iteration.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::super::binding::{Binding, Callback};
use super::super::clock;
use super::super::timers::Cancellable;
use super::{Core, CoreState};

/// `run_batch` results, exported to Python as `_engine.RUN_IDLE`, `RUN_STOP`, `RUN_YIELD`
/// (the one definition).
pub(crate) const IDLE: i32 = 0;
pub(crate) const STOP: i32 = 1;
pub(crate) const YIELD: i32 = 2;

/// A blocking wait that found work within this was "short": the next idle point of a
/// waiting batch polls (timeout 0) before it blocks (see `run_batch`).
const SHORT_WAIT: Duration = Duration::from_micros(20);

impl<B: Binding> Core<B> {
    /// Run loop iterations back to back; return STOP (`stop()` was called; the flag is
    /// left set), IDLE (nothing ready), or YIELD (`budget` seconds have passed).
    ///
    /// With `wait`, the loop blocks in the poller itself when it has nothing to do (the
    /// lock released, until an fd event, a wake-up or the earliest timer: one system call
    /// per wake-up, as stock asyncio's `select`) instead of returning IDLE, and the budget
    /// is ignored: it returns STOP, or YIELD once `interrupt()` was called.
    ///
    /// `run(callback, debug)` runs one live callback.
    pub(crate) fn run_batch(
        &self,
        t: B::Token<'_>,
        budget: f64,
        wait: bool,
        run: &mut impl FnMut(B::Item, bool) -> Result<(), B::Error>,
    ) -> Result<i32, B::Error> {
        self.check_open()?;
        // The budget is coarse on purpose (see `clock::coarse`): a precise clock read per
        // iteration would cost ~15% of a one-callback iteration.
        let start = clock::coarse();
        let mut poll = !self.polled_ahead.swap(false, Ordering::Relaxed);
        if !wait {
            // Only a waiting batch needs telling: the other drivers look at their own work
            // between batches.
            self.run.clear_interrupt();
        }
        loop {
            self.run_once(t, poll, run)?;
            poll = true;
            if self.run.is_stopping() {
                return Ok(STOP);
            }
            if wait {
                if self.run.take_interrupt() {
                    return Ok(YIELD);
                }
                if self.is_idle(t) && !self.timer_due(t)? {
                    // Poll ahead (timeout 0, the lock kept) only while waits keep finding
                    // fds ready at once (a ping-pong on loopback sockets): that saves
                    // releasing and retaking the GIL. Otherwise block directly: one system
                    // call per wake-up, as stock asyncio's select.
                    if self.waits_are_short.load(Ordering::Relaxed) && self.must_poll(t) {
                        self.poll_io(t)?;
                        if !self.is_idle(t) {
                            poll = false;
                            continue;
                        }
                        self.waits_are_short.store(false, Ordering::Relaxed);
                    }
                    let started = std::time::Instant::now();
                    self.block(t)?;
                    let short = started.elapsed() < SHORT_WAIT && !self.is_idle(t);
                    self.waits_are_short.store(short, Ordering::Relaxed);
                    poll = false;
                    if self.run.take_interrupt() {
                        return Ok(YIELD);
                    }
                }
                continue;
            }
            if self.is_idle(t) && !self.timer_due(t)? {
                // Before going idle, look once more for fd events this batch caused (a
                // reply on a loopback socket, a pipe the callback wrote to): a zero-timeout
                // poll costs one system call; sleeping in Trio and being woken costs a
                // trip through Trio's scheduler.
                if !self.must_poll(t) {
                    return Ok(IDLE);
                }
                self.poll_io(t)?;
                if self.is_idle(t) {
                    return Ok(IDLE);
                }
                // Run what the poll found before polling again.
                poll = false;
                if clock::coarse() - start >= budget {
                    self.polled_ahead.store(true, Ordering::Relaxed);
                    return Ok(YIELD);
                }
                continue;
            }
            if clock::coarse() - start >= budget {
                return Ok(YIELD);
            }
        }
    }

    /// One loop iteration (`poll`: whether to poll the reactor first).
    fn run_once(
        &self,
        t: B::Token<'_>,
        poll: bool,
        run: &mut impl FnMut(B::Item, bool) -> Result<(), B::Error>,
    ) -> Result<(), B::Error> {
        // (a) work queued from other threads.
        if self.threadsafe_len.load(Ordering::SeqCst) != 0 {
            self.drain_threadsafe(t);
        }
        // (b) I/O: a poll with timeout 0, only if some fd is registered (and the driver did
        // not just poll before deciding whether it was idle).
        let (has_regs, has_timers) = self
            .state
            .with(t, |s| (s.must_poll(), !s.timers.is_empty()));
        if has_regs && poll {
            self.poll_io(t)?;
        }
        // (c) due timers, after the callbacks already queued, in (when, sequence) order.
        if has_timers {
            let now = self.now(t)?;
            self.with_dead(t, |s, dead| {
                let limit = now + s.clock_resolution;
                if s.timers.needs_compaction() {
                    s.timers.compact(dead);
                }
                s.timers.pop_cancelled_top(dead);
                // `scheduled` is cleared (and cancelled ones skipped) when they are dequeued
                // to run: touching each callback here too would double the cache misses.
                let CoreState { timers, ready, .. } = s;
                timers.drain_due(limit, |h| ready.push(h));
            });
        }
        // (d) run the callbacks that are ready now; the ones they add run next iteration.
        let ntodo = self.state.with(t, |s| {
            s.iterations += 1;
            s.ready.begin_batch()
        });
        let debug = self.debug();
        for _ in 0..ntodo {
            let next = self.state.with(t, |s| {
                let h = s.ready.pop()?;
                let live = !h.is_cancelled();
                if h.is_timer() && h.take_scheduled() && !live {
                    // Cancelled while queued: it was counted as a cancelled heap entry.
                    s.timers.forget_cancelled();
                }
                if live {
                    s.callbacks += 1;
                }
                Some((h, live))
            });
            let Some((h, live)) = next else { break }; // closed by a callback
            if live {
                run(h, debug)?;
            }
        }
        Ok(())
    }

    /// Whether the earliest live timer is already due: then the next iteration has work
    /// and the driver must not go through a sleep (a `call_later(0)` chain would otherwise
    /// pay a poll and a wake-fd drain per callback).
    fn timer_due(&self, t: B::Token<'_>) -> Result<bool, B::Error> {
        let (top, resolution) = self.with_dead(t, |s, dead| {
            s.timers.pop_cancelled_top(dead);
            (s.timers.peek_when(), s.clock_resolution)
        });
        match top {
            None => Ok(false),
            Some(when) => Ok(when < self.now(t)? + resolution),
        }
    }

    pub(super) fn is_idle(&self, t: B::Token<'_>) -> bool {
        self.threadsafe_len.load(Ordering::SeqCst) == 0
            && self.state.with(t, |s| s.ready.is_empty())
    }
}
