//! The sleep/wake protocol of the driver, and the blocking wait.
//!
//! A Trio driver sleeps in Trio: `prepare_sleep()` (enter the sleeping state, or stay
//! awake if there is work), park on `poll_fd()` until the returned deadline, `end_sleep()`.
//! The sync loop without Trio blocks in the poller itself ([`Core::block`], called by a
//! waiting batch). Either way producers wake the sleeper through the waker, once per
//! sleep (`scheduler/waker.rs` has the handshake).

use std::time::Duration;

use super::super::binding::Binding;
use super::super::error::SchedulerError;
use super::{Core, CoreState};

/// Longest single blocking wait; a later deadline is reached by waiting again.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What a driver about to sleep should do.
pub(super) enum Sleep {
    /// There is work (or the loop stops or is closed): do not block.
    Busy,
    /// Block until this loop-time deadline (`None`: until woken).
    Until(Option<f64>),
}

impl<B: Binding> Core<B> {
    /// Enter the sleeping state. Returns 0.0 (and stays awake) if work is already pending,
    /// else the loop-time deadline of the earliest live timer, or None if there is none.
    pub(crate) fn prepare_sleep(&self, t: B::Token<'_>) -> Option<f64> {
        match self.enter_sleep(t) {
            Sleep::Busy => Some(0.0),
            Sleep::Until(when) => when,
        }
    }

    /// Leave the sleeping state (after waking up, or instead of parking). If a producer
    /// woke the poller, its event is consumed here (fd events found with it are queued).
    pub(crate) fn end_sleep(&self, t: B::Token<'_>) -> Result<(), SchedulerError> {
        if self.leave_sleep(t) {
            self.poll_io(t)?;
        }
        Ok(())
    }

    /// Make the poll fd readable now (once per sleep), so a driver parked on it wakes up.
    pub(crate) fn wake(&self) {
        self.waker.begin_sleep();
        self.waker.notify();
    }

    /// Enter the sleeping state, or stay awake (Busy) if there is work already.
    pub(super) fn enter_sleep(&self, t: B::Token<'_>) -> Sleep {
        if self.run.is_closed() {
            return Sleep::Busy;
        }
        // Level-triggered fds delivered in the last batch and still ready must make the
        // poller report them (or its fd readable) before the driver blocks.
        self.state
            .with(t, |s| s.reactor.as_mut().map(|r| r.rearm_delivered()));
        self.waker.begin_sleep();
        if self.run.is_stopping() || !self.is_idle(t) {
            self.leave_sleep(t);
            return Sleep::Busy;
        }
        // Dropping a dead timer may run `__del__` code that queues work: it then wakes us
        // (we sleep).
        Sleep::Until(self.with_dead(t, |s, dead| {
            s.timers.pop_cancelled_top(dead);
            s.timers.peek_when()
        }))
    }

    /// End a sleep; returns whether a wake-up was claimed (then its event must be polled).
    pub(super) fn leave_sleep(&self, t: B::Token<'_>) -> bool {
        let claimed = self.waker.end_sleep();
        if claimed {
            self.state.with(t, |s| s.wake_outstanding = true);
        }
        claimed
    }

    /// Block in the poller until an fd event, a wake-up or the earliest timer, with the lock
    /// released; queue what it found. A signal interrupting the wait runs the binding's
    /// signal handlers (which may fail, e.g. KeyboardInterrupt).
    pub(super) fn block(&self, t: B::Token<'_>) -> Result<(), B::Error> {
        let Sleep::Until(when) = self.enter_sleep(t) else {
            return Ok(());
        };
        let timeout = match when {
            None => None,
            Some(when) => {
                let dt = when - self.now(t)?;
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
        let Some(mut poller) = self.state.with(t, |s| s.poller.take()) else {
            // Closed, or another thread is blocked in this loop's poller.
            self.leave_sleep(t);
            self.check_open()?;
            return Err(SchedulerError::AlreadyRunning.into());
        };
        let (poller, waited) = B::unlocked(t, move || {
            let r = poller.wait(timeout).map(|_| ());
            (poller, r)
        });
        let claimed = self.waker.end_sleep();
        let leftover = self.with_dead(t, |s, dead| {
            let CoreState {
                reactor,
                ready,
                wake_outstanding,
                poller: slot,
                ..
            } = s;
            let Some(reactor) = reactor else {
                return Some(poller); // closed meanwhile
            };
            let woken = waited.is_ok()
                && reactor.dispatch(poller.events(), |h| ready.push(B::clone_item(t, h)), dead);
            if claimed && !woken {
                *wake_outstanding = true;
            }
            *slot = Some(poller);
            None
        });
        drop(leftover);
        match waited {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => B::check_signals(t),
            Err(e) => Err(SchedulerError::from(e).into()),
        }
    }
}
