//! Portable `poll(2)` backend (level-triggered by nature). It has no fd of its own, so the
//! Python driver cannot await it from Trio and must block in a thread instead
//! (`Poller::raw_fd()` returns `None`). Compiled on every Unix so the tests run on Linux.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{cvt, timeout_ms, Event, Interest};

#[derive(Default)]
pub(crate) struct Poller {
    fds: Vec<libc::pollfd>,
    index: HashMap<RawFd, usize>,
}

fn flags(interest: Interest) -> libc::c_short {
    let mut f = 0;
    if interest.read {
        f |= libc::POLLIN;
    }
    if interest.write {
        f |= libc::POLLOUT;
    }
    f
}

/// `fcntl(F_GETFD)` tells whether `fd` is open, so a bad fd fails at registration like
/// with epoll and kqueue instead of turning into `POLLNVAL` later.
fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD reads the fd flags and has no memory preconditions.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map(|_| ())
}

// Only the fallback platforms use it outside the tests.
#[allow(dead_code)]
impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller::default())
    }

    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    pub(crate) fn set_interest(
        &mut self,
        fd: RawFd,
        _old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        match (self.index.get(&fd).copied(), new.is_none()) {
            (Some(i), true) => {
                self.fds.swap_remove(i);
                self.index.remove(&fd);
                if let Some(moved) = self.fds.get(i) {
                    self.index.insert(moved.fd, i);
                }
            }
            (Some(i), false) => self.fds[i].events = flags(new),
            (None, true) => {}
            (None, false) => {
                check_open(fd)?;
                self.index.insert(fd, self.fds.len());
                self.fds.push(libc::pollfd {
                    fd,
                    events: flags(new),
                    revents: 0,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        // SAFETY: `fds` is a live, initialised array of `len` pollfd records.
        let n = cvt(unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout_ms(timeout),
            )
        });
        match n {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for p in &self.fds {
            if p.revents != 0 {
                let bits = p.revents;
                // Same masking as asyncio's PollSelector.
                events.push(Event {
                    fd: p.fd,
                    readable: bits & !libc::POLLOUT != 0,
                    writable: bits & !libc::POLLIN != 0,
                });
            }
        }
        Ok(())
    }
}
