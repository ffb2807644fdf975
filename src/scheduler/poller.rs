//! The kernel poller: one `mio::Poll` and its event buffer, owned by the loop's driver.
//!
//! Registrations go through a [`mio::Registry`] cloned from the poll (see
//! [`super::reactor`]), so the driver can block in [`Poller::wait`] with the GIL released
//! while other threads register or wake: `epoll_ctl`/`kevent` and `epoll_wait` on one
//! instance are thread-safe in the kernel, and the clone keeps the borrow checker out of
//! it. The waker is `mio::Waker` (eventfd on Linux, `EVFILT_USER` on kqueue), registered
//! under [`WAKER`].

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::{Events, Poll, Registry, Token};

/// The token of the loop's `mio::Waker`; fds use `Token(fd)`.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// Most events fetched by one wait; more ready fds are reported by the next one (they stay
/// queued in the kernel).
const MAX_EVENTS: usize = 256;

pub(crate) struct Poller {
    poll: Poll,
    events: Events,
    polls: u64,
}

impl Poller {
    /// A new poller, a registry for it (its own fd: a `dup` of the poller's), and its waker.
    pub(crate) fn new() -> io::Result<(Poller, Registry, mio::Waker)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok((
            Poller {
                poll,
                events: Events::with_capacity(MAX_EVENTS),
                polls: 0,
            },
            registry,
            waker,
        ))
    }

    /// The poller's own fd: readable while an event is queued (what a Trio driver waits on).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// Wait for events, at most `timeout` (`None`: forever; `Some(ZERO)`: never blocks;
    /// sub-millisecond timeouts round up). An interrupted wait (`EINTR`) returns
    /// `Err(Interrupted)` with no events, so the caller can run signal handlers.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<&Events> {
        self.polls += 1;
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => Ok(&self.events),
            Err(e) => {
                self.events.clear();
                Err(e)
            }
        }
    }

    /// The events of the last successful [`Poller::wait`].
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// Number of waits made (for tests proving the no-fd fast path makes none).
    pub(crate) fn polls(&self) -> u64 {
        self.polls
    }
}
