//! Reader/writer registrations (`add_reader`, `add_writer`, ...) on the reactor, and the
//! zero-timeout poll that queues the callbacks of ready fds.

use std::time::Duration;

use super::super::binding::Binding;
use super::super::error::SchedulerError;
use super::super::reactor::{Direction, Trigger};
use super::{Core, CoreState};

impl<B: Binding> Core<B> {
    /// Register `item` for `fd` in `dir` with `trigger` (level-triggered for asyncio's
    /// `add_reader`/`add_writer`, edge-triggered for native transports), replacing and
    /// returning the previous registration (the caller cancels it).
    pub(crate) fn register(
        &self,
        t: B::Token<'_>,
        fd: i32,
        dir: Direction,
        item: B::Item,
        trigger: Trigger,
    ) -> Result<Option<B::Item>, SchedulerError> {
        let res = self.state.with(t, |s| match s.reactor.as_mut() {
            Some(r) => r
                .add_with(fd, dir, item, trigger)
                .map_err(|(e, item)| (SchedulerError::Io(e), Some(item))),
            None => Err((SchedulerError::Closed, Some(item))),
        });
        self.waker.notify();
        res.map_err(|(e, item)| {
            drop(item);
            e
        })
    }

    /// Report `fd` again before the next wait if it is still ready (an edge-triggered
    /// owner that stopped before draining it; see [`Trigger::Edge`]).
    pub(crate) fn rearm_later(&self, t: B::Token<'_>, fd: i32) {
        self.state.with(t, |s| {
            if let Some(r) = s.reactor.as_mut() {
                r.rearm_later(fd);
            }
        });
    }

    /// Remove the registration of `fd` in `dir` and return it (the caller cancels it).
    pub(crate) fn unregister(&self, t: B::Token<'_>, fd: i32, dir: Direction) -> Option<B::Item> {
        let prev = self
            .state
            .with(t, |s| s.reactor.as_mut().and_then(|r| r.remove(fd, dir)));
        self.waker.notify();
        prev
    }

    /// The callback registered for `fd` in `dir`.
    pub(crate) fn registered(&self, t: B::Token<'_>, fd: i32, dir: Direction) -> Option<B::Item> {
        self.state.with(t, |s| {
            s.reactor
                .as_ref()
                .and_then(|r| r.get(fd, dir))
                .map(|h| B::clone_item(t, h))
        })
    }

    /// Every registration: `(fd, reader, writer)`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn registrations(
        &self,
        t: B::Token<'_>,
    ) -> Vec<(i32, Option<B::Item>, Option<B::Item>)> {
        self.state.with(t, |s| match s.reactor.as_ref() {
            Some(r) => r
                .iter()
                .map(|(fd, rd, wr)| {
                    (
                        fd,
                        rd.map(|h| B::clone_item(t, h)),
                        wr.map(|h| B::clone_item(t, h)),
                    )
                })
                .collect(),
            None => Vec::new(),
        })
    }

    /// Whether the next iteration must poll: an fd is registered, or a wake-up's event may
    /// still be queued in the poller.
    pub(super) fn must_poll(&self, t: B::Token<'_>) -> bool {
        self.state.with(t, |s| s.must_poll())
    }

    /// Re-arm what the last poll delivered, poll with timeout 0 and queue the callbacks of
    /// the ready fds.
    pub(super) fn poll_io(&self, t: B::Token<'_>) -> Result<(), SchedulerError> {
        self.with_dead(t, |s, dead| {
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
                Err(e) => return Err(SchedulerError::from(e)),
            };
            if reactor.dispatch(events, |h| ready.push(B::clone_item(t, h)), dead) {
                *wake_outstanding = false;
            }
            Ok(())
        })
    }
}

impl<B: Binding> CoreState<B> {
    #[inline]
    pub(super) fn must_poll(&self) -> bool {
        self.wake_outstanding || self.reactor.as_ref().is_some_and(|r| r.has_registrations())
    }
}
