//! macOS/BSD kqueue backend, level-triggered: filters are added without `EV_CLEAR`, so a
//! ready fd is reported again on every `kevent` call while it stays ready.
//!
//! Not exercised by this repository's CI (Linux only); kept to the small subset of kqueue
//! that is identical on macOS and the BSDs, with `as _` casts where field types differ.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{cvt, Event, Interest};

const MAX_EVENTS: usize = 256;

pub(crate) struct Poller {
    kq: OwnedFd,
    buf: Vec<libc::kevent>,
}

// SAFETY: `buf` only holds plain event records copied out of the kernel; their `udata`
// pointer is never set by us nor dereferenced, so moving the poller across threads is safe
// (the raw pointer field is what makes `libc::kevent` `!Send`).
unsafe impl Send for Poller {}

fn change(fd: RawFd, filter: i32, flags: u32) -> libc::kevent {
    // SAFETY: kevent is a plain C struct for which all-zero bytes is a valid value.
    let mut kev: libc::kevent = unsafe { std::mem::zeroed() };
    kev.ident = fd as _;
    kev.filter = filter as _;
    kev.flags = flags as _;
    kev
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: kqueue has no memory preconditions; the result is checked.
        let fd = cvt(unsafe { libc::kqueue() })?;
        // SAFETY: `fd` was just returned by kqueue and is owned by nobody else.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fcntl on the fd we own.
        cvt(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        Ok(Poller {
            kq,
            buf: Vec::with_capacity(MAX_EVENTS),
        })
    }

    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        Some(self.kq.as_raw_fd())
    }

    fn apply(&self, kev: libc::kevent) -> io::Result<()> {
        // SAFETY: one valid change record in, no event list out, null timeout; kq is open.
        cvt(unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                &kev,
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            )
        })?;
        Ok(())
    }

    pub(crate) fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
    ) -> io::Result<()> {
        let filters = [
            (libc::EVFILT_READ as i32, old.read, new.read),
            (libc::EVFILT_WRITE as i32, old.write, new.write),
        ];
        // Additions first, so a failure (closed fd) leaves the old registration in place.
        for &(filter, was, is) in &filters {
            if is && !was {
                self.apply(change(fd, filter, libc::EV_ADD as u32))?;
            }
        }
        for &(filter, was, is) in &filters {
            if was && !is {
                // The kernel drops filters of a closed fd itself: ENOENT/EBADF are expected.
                let _ = self.apply(change(fd, filter, libc::EV_DELETE as u32));
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
        self.buf.clear();
        let ts;
        let ts_ptr = match timeout {
            None => std::ptr::null(),
            Some(d) => {
                ts = libc::timespec {
                    tv_sec: d.as_secs().min(i32::MAX as u64) as _,
                    tv_nsec: d.subsec_nanos() as _,
                };
                &ts as *const libc::timespec
            }
        };
        // SAFETY: `buf` has capacity MAX_EVENTS and kevent writes at most that many entries;
        // `ts_ptr` is null or points to `ts`, alive for the call.
        let n = cvt(unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                self.buf.as_mut_ptr(),
                MAX_EVENTS as _,
                ts_ptr,
            )
        });
        let n = match n {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        // SAFETY: kevent initialised the first `n` entries (n <= MAX_EVENTS = capacity).
        unsafe { self.buf.set_len(n) };
        for kev in &self.buf {
            let filter = kev.filter as i32;
            let error = (kev.flags as u32) & (libc::EV_ERROR as u32) != 0;
            events.push(Event {
                fd: kev.ident as i32,
                readable: error || filter == libc::EVFILT_READ as i32,
                writable: error || filter == libc::EVFILT_WRITE as i32,
            });
        }
        Ok(())
    }
}
