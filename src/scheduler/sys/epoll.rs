//! Linux epoll backend, level-triggered (no `EPOLLET`): a registered fd keeps being reported
//! while it is ready, which is the contract of asyncio's `add_reader`/`add_writer`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{cvt, timeout_ms, Event, Interest};

/// Most events fetched by one `epoll_wait`; more ready fds are reported on the next call
/// (level-triggered, so nothing is lost).
const MAX_EVENTS: usize = 256;

pub(crate) struct Poller {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

fn flags(interest: Interest) -> u32 {
    let mut f = 0;
    if interest.read {
        f |= libc::EPOLLIN as u32;
    }
    if interest.write {
        f |= libc::EPOLLOUT as u32;
    }
    f
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 has no memory preconditions; the result is checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by epoll_create1, is valid and owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller {
            epfd,
            buf: Vec::with_capacity(MAX_EVENTS),
        })
    }

    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        Some(self.epfd.as_raw_fd())
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: flags(interest),
            u64: fd as u32 as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; epfd is open.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    pub(crate) fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        if new.is_none() {
            if !old.is_none() {
                // The kernel forgets an fd when its file is closed: EBADF/ENOENT on removal
                // are expected (asyncio's EpollSelector ignores them the same way).
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, old);
            }
            return Ok(());
        }
        if old.is_none() {
            match self.ctl(libc::EPOLL_CTL_ADD, fd, new) {
                // A stale kernel registration (fd dup'ed elsewhere): take it over.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    self.ctl(libc::EPOLL_CTL_MOD, fd, new)
                }
                r => r,
            }
        } else {
            match self.ctl(libc::EPOLL_CTL_MOD, fd, new) {
                // The fd was closed and its number reused since it was registered: the kernel
                // dropped the old registration, so register the new file.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.ctl(libc::EPOLL_CTL_ADD, fd, new)
                }
                r => r,
            }
        }
    }

    pub(crate) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        self.buf.clear();
        // SAFETY: `buf` has capacity MAX_EVENTS and epoll_wait writes at most that many
        // entries; epfd is open.
        let n = cvt(unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                timeout_ms(timeout),
            )
        });
        let n = match n {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        // SAFETY: epoll_wait initialised the first `n` entries (n <= MAX_EVENTS = capacity).
        unsafe { self.buf.set_len(n) };
        for ev in &self.buf {
            let bits = ev.events;
            // asyncio's EpollSelector: anything but EPOLLIN also counts as writable, anything
            // but EPOLLOUT also counts as readable (errors and hang-ups wake both sides).
            events.push(Event {
                fd: ev.u64 as u32 as i32,
                readable: bits & !(libc::EPOLLOUT as u32) != 0,
                writable: bits & !(libc::EPOLLIN as u32) != 0,
            });
        }
        Ok(())
    }
}
