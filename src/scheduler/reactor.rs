//! The reactor: every fd registered with `add_reader`/`add_writer`, in one level-triggered
//! poller, plus the waker's fd.
//!
//! # Why one poller and not one Trio task per fd
//!
//! trio-asyncio 0.16 starts a Trio task per `add_reader` that loops on
//! `trio.lowlevel.wait_readable(fd)` and queues the callback. Each readiness then costs a
//! Trio task switch plus an epoll re-arm (Trio's epoll is one-shot per wait), and each
//! registration costs a task spawn; a busy server pays both on every read. Here the loop
//! keeps asyncio's model: a persistent registration in one kernel poller whose own fd Trio
//! waits on (`_poll_fd()`), so the Trio side costs one `wait_readable` per *sleep*, not
//! per event, and a loop iteration that finds fds ready queues all their callbacks in one
//! `epoll_wait`.
//!
//! # Why not mio's Poll
//!
//! asyncio's `add_reader` is level-triggered: a callback that reads half of the pending
//! data is called again on the next iteration. mio's `Poll` is edge-triggered only
//! (`EPOLLET`, `EV_CLEAR`). Emulating level triggering over it means re-registering the fd
//! after every dispatched event (one extra `epoll_ctl` per event, i.e. doubling the system
//! calls of a busy socket) or remembering "still ready" fds ourselves and guessing when
//! they stop being ready, which asyncio code cannot tell us. A direct level-triggered
//! backend is ~300 lines over `libc` (`sys/`), so mio is not used at all; its `Waker`
//! needs a mio `Registry`, and a self-pipe is ten lines.
//!
//! # Things that don't work (and what we do instead)
//!
//! - **`EPOLLONESHOT` / edge-triggered registrations**: same problem as mio, see above.
//! - **Registering user fds in Trio's own epoll**: Trio owns its epoll and allows one
//!   waiter per fd and direction; asyncio code that also waits on an fd through Trio would
//!   collide ("another task is already reading from this fd").
//! - **A poller without an fd** (`poll(2)`): Trio cannot wait on it, so the `poll(2)`
//!   fallback reports no fd (`raw_fd() == None`) and the Python driver must block in a
//!   worker thread instead.
//! - **Assuming a registered fd stays open**: asyncio code closes sockets without removing
//!   readers. The kernel then forgets the registration (epoll, kqueue) while our table
//!   keeps it, and the fd number may be reused: re-adding handles "kernel forgot it"
//!   (`ENOENT` on modify -> add) and removal ignores `EBADF`/`ENOENT`, like asyncio's
//!   selectors.
//!
//! The table is a `Vec` indexed by fd (fd numbers are small and dense); an event for an
//! fd registered in the kernel but no longer in the table is ignored.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::sys::{self, Event, Interest};
use super::timers::Cancellable;

struct Slot<T> {
    reader: Option<T>,
    writer: Option<T>,
}

impl<T> Slot<T> {
    fn interest(&self) -> Interest {
        Interest {
            read: self.reader.is_some(),
            write: self.writer.is_some(),
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            reader: None,
            writer: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

pub(crate) struct Reactor<T> {
    poller: sys::Poller,
    slots: Vec<Slot<T>>,
    readers: usize,
    writers: usize,
    events: Vec<Event>,
    waker_fd: Option<RawFd>,
    polls: u64,
}

impl<T: Cancellable> Reactor<T> {
    /// A new reactor; `waker_fd` (if any) is registered for reading and reported by
    /// [`Reactor::poll`] as "woken" instead of being dispatched.
    pub(crate) fn new(waker_fd: Option<RawFd>) -> io::Result<Reactor<T>> {
        let mut poller = sys::Poller::new()?;
        if let Some(fd) = waker_fd {
            poller.set_interest(
                fd,
                Interest::NONE,
                Interest {
                    read: true,
                    write: false,
                },
            )?;
        }
        Ok(Reactor {
            poller,
            slots: Vec::new(),
            readers: 0,
            writers: 0,
            events: Vec::new(),
            waker_fd,
            polls: 0,
        })
    }

    /// The poller's own fd, readable while a registered fd (or the waker) is ready.
    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        self.poller.raw_fd()
    }

    pub(crate) fn has_registrations(&self) -> bool {
        self.readers + self.writers > 0
    }

    pub(crate) fn readers(&self) -> usize {
        self.readers
    }

    pub(crate) fn writers(&self) -> usize {
        self.writers
    }

    /// Number of `poll` calls made (for tests proving the no-fd fast path makes none).
    pub(crate) fn polls(&self) -> u64 {
        self.polls
    }

    fn slot_mut(&mut self, fd: RawFd) -> Option<&mut Slot<T>> {
        usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i))
    }

    /// The callback registered for `fd` in `dir`.
    pub(crate) fn get(&self, fd: RawFd, dir: Direction) -> Option<&T> {
        let slot = usize::try_from(fd).ok().and_then(|i| self.slots.get(i))?;
        match dir {
            Direction::Read => slot.reader.as_ref(),
            Direction::Write => slot.writer.as_ref(),
        }
    }

    /// Register `item` for `fd` in `dir`, replacing (and returning) the previous one. On
    /// error (bad fd) the registration is unchanged and `item` is handed back.
    pub(crate) fn add(
        &mut self,
        fd: RawFd,
        dir: Direction,
        item: T,
    ) -> Result<Option<T>, (io::Error, T)> {
        let Ok(idx) = usize::try_from(fd) else {
            return Err((io::Error::from_raw_os_error(libc::EBADF), item));
        };
        if idx >= self.slots.len() {
            self.slots.resize_with(idx + 1, Slot::default);
        }
        let old = self.slots[idx].interest();
        let mut new = old;
        match dir {
            Direction::Read => new.read = true,
            Direction::Write => new.write = true,
        }
        if new != old {
            if let Err(e) = self.poller.set_interest(fd, old, new) {
                return Err((e, item));
            }
        }
        let slot = &mut self.slots[idx];
        let prev = match dir {
            Direction::Read => slot.reader.replace(item),
            Direction::Write => slot.writer.replace(item),
        };
        if prev.is_none() {
            match dir {
                Direction::Read => self.readers += 1,
                Direction::Write => self.writers += 1,
            }
        }
        Ok(prev)
    }

    /// Unregister `fd` in `dir`, returning the callback that was registered.
    pub(crate) fn remove(&mut self, fd: RawFd, dir: Direction) -> Option<T> {
        let slot = self.slot_mut(fd)?;
        let old = slot.interest();
        let prev = match dir {
            Direction::Read => slot.reader.take(),
            Direction::Write => slot.writer.take(),
        }?;
        let new = slot.interest();
        // Removal errors only mean the kernel already forgot the fd (closed): ignore.
        let _ = self.poller.set_interest(fd, old, new);
        match dir {
            Direction::Read => self.readers -= 1,
            Direction::Write => self.writers -= 1,
        }
        Some(prev)
    }

    /// Every registration: `(fd, reader, writer)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (RawFd, Option<&T>, Option<&T>)> {
        self.slots.iter().enumerate().filter_map(|(fd, s)| {
            if s.reader.is_some() || s.writer.is_some() {
                Some((fd as RawFd, s.reader.as_ref(), s.writer.as_ref()))
            } else {
                None
            }
        })
    }

    /// Poll once and dispatch, level-triggered: `ready` is called with the callback of
    /// every ready (fd, direction), readers before writers of the same fd. A callback found
    /// cancelled is unregistered and moved to `dead` instead (asyncio's
    /// `_process_events`). Returns whether the waker's fd was reported.
    pub(crate) fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut ready: impl FnMut(&T),
        dead: &mut Vec<T>,
    ) -> io::Result<bool> {
        self.polls += 1;
        let mut events = std::mem::take(&mut self.events);
        let r = self.poller.wait(&mut events, timeout);
        let mut woken = false;
        if r.is_ok() {
            for ev in &events {
                if Some(ev.fd) == self.waker_fd {
                    woken = true;
                    continue;
                }
                for (dir, hit) in [
                    (Direction::Read, ev.readable),
                    (Direction::Write, ev.writable),
                ] {
                    if !hit {
                        continue;
                    }
                    match self.get(ev.fd, dir) {
                        None => {}
                        Some(item) if item.is_cancelled() => {
                            if let Some(item) = self.remove(ev.fd, dir) {
                                dead.push(item);
                            }
                        }
                        Some(item) => ready(item),
                    }
                }
            }
        }
        events.clear();
        self.events = events;
        r.map(|()| woken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::waker::Waker;
    use std::cell::Cell;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;

    #[derive(Clone, Debug)]
    struct H(&'static str, Rc<Cell<bool>>);
    impl Cancellable for H {
        fn is_cancelled(&self) -> bool {
            self.1.get()
        }
    }
    fn h(name: &'static str) -> H {
        H(name, Rc::new(Cell::new(false)))
    }

    fn poll_names(r: &mut Reactor<H>) -> (Vec<&'static str>, Vec<&'static str>, bool) {
        let mut got = vec![];
        let mut dead = vec![];
        let woken = r
            .poll(Some(Duration::ZERO), |x| got.push(x.0), &mut dead)
            .unwrap();
        (got, dead.iter().map(|d| d.0).collect(), woken)
    }

    #[test]
    fn level_triggered_reader_fires_until_drained() {
        let mut r: Reactor<H> = Reactor::new(None).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        assert!(r
            .add(a.as_raw_fd(), Direction::Read, h("r"))
            .unwrap()
            .is_none());
        assert!(r.has_registrations());
        assert_eq!(poll_names(&mut r).0, Vec::<&str>::new());
        use std::io::{Read, Write};
        (&b).write_all(b"abcd").unwrap();
        // Not drained: reported again and again (level-triggered).
        for _ in 0..3 {
            assert_eq!(poll_names(&mut r).0, ["r"]);
        }
        let mut buf = [0u8; 2];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(poll_names(&mut r).0, ["r"], "half read: still readable");
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(poll_names(&mut r).0, Vec::<&str>::new());
        assert_eq!(r.remove(a.as_raw_fd(), Direction::Read).unwrap().0, "r");
        assert!(r.remove(a.as_raw_fd(), Direction::Read).is_none());
        assert!(!r.has_registrations());
    }

    #[test]
    fn writer_and_reader_on_one_fd_and_replacement() {
        let mut r: Reactor<H> = Reactor::new(None).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        r.add(fd, Direction::Write, h("w")).unwrap();
        assert_eq!(poll_names(&mut r).0, ["w"]);
        use std::io::Write;
        (&b).write_all(b"x").unwrap();
        r.add(fd, Direction::Read, h("r1")).unwrap();
        assert_eq!(poll_names(&mut r).0, ["r1", "w"], "readers first");
        let prev = r.add(fd, Direction::Read, h("r2")).unwrap().unwrap();
        assert_eq!(prev.0, "r1");
        assert_eq!((r.readers(), r.writers()), (1, 1));
        assert_eq!(r.get(fd, Direction::Read).unwrap().0, "r2");
        r.remove(fd, Direction::Write);
        assert_eq!(poll_names(&mut r).0, ["r2"]);
        assert_eq!(r.iter().count(), 1);
        r.remove(fd, Direction::Read);
        assert_eq!(r.iter().count(), 0);
        assert!(!r.has_registrations());
    }

    #[test]
    fn cancelled_callback_is_unregistered_when_it_fires() {
        let mut r: Reactor<H> = Reactor::new(None).unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let w = h("w");
        r.add(a.as_raw_fd(), Direction::Write, w.clone()).unwrap();
        w.1.set(true);
        let (got, dead, _) = poll_names(&mut r);
        assert!(got.is_empty());
        assert_eq!(dead, ["w"]);
        assert!(!r.has_registrations());
    }

    #[test]
    fn bad_fds_are_refused_and_closed_fds_are_forgotten() {
        let mut r: Reactor<H> = Reactor::new(None).unwrap();
        let (err, item) = r.add(-1, Direction::Read, h("x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(item.0, "x");
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        drop(a);
        drop(b);
        let (err, _) = r.add(fd, Direction::Read, h("x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert!(!r.has_registrations());
        // Registered, then closed without removal, then the number reused.
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        r.add(fd, Direction::Read, h("old")).unwrap();
        drop(a);
        let (c, _d) = UnixStream::pair().unwrap();
        let c: OwnedFd = c.into();
        if c.as_raw_fd() == fd {
            r.add(fd, Direction::Write, h("new")).unwrap();
            assert_eq!(poll_names(&mut r).0, ["new"]);
        }
        assert!(r.remove(fd, Direction::Read).is_some());
    }

    #[test]
    fn waker_is_reported_not_dispatched() {
        let w = Waker::new().unwrap();
        let mut r: Reactor<H> = Reactor::new(w.raw_fd()).unwrap();
        assert!(!poll_names(&mut r).2);
        w.begin_sleep();
        w.notify();
        let (got, _, woken) = poll_names(&mut r);
        assert!(got.is_empty());
        assert!(woken);
        w.end_sleep();
        assert!(!poll_names(&mut r).2, "drained");
        // The poller's own fd is readable exactly while something is ready.
        if let Some(pfd) = r.raw_fd() {
            let readable = |fd| {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one live pollfd, zero timeout.
                unsafe { libc::poll(&mut p, 1, 0) == 1 }
            };
            assert!(!readable(pfd));
            w.begin_sleep();
            w.notify();
            assert!(readable(pfd));
            w.end_sleep();
            assert!(!readable(pfd));
        }
    }

    #[test]
    fn poll_fallback_backend_is_level_triggered() {
        use crate::scheduler::sys::poll::Poller;
        let mut p = Poller::new().unwrap();
        assert!(p.raw_fd().is_none());
        let (a, b) = UnixStream::pair().unwrap();
        let rd = Interest {
            read: true,
            write: false,
        };
        p.set_interest(a.as_raw_fd(), Interest::NONE, rd).unwrap();
        p.set_interest(
            b.as_raw_fd(),
            Interest::NONE,
            Interest {
                read: true,
                write: true,
            },
        )
        .unwrap();
        let mut ev = vec![];
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            ev,
            [Event {
                fd: b.as_raw_fd(),
                readable: false,
                writable: true
            }]
        );
        use std::io::Write;
        (&b).write_all(b"x").unwrap();
        for _ in 0..2 {
            p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
            assert!(ev.contains(&Event {
                fd: a.as_raw_fd(),
                readable: true,
                writable: false
            }));
        }
        p.set_interest(
            b.as_raw_fd(),
            Interest {
                read: true,
                write: true,
            },
            Interest::NONE,
        )
        .unwrap();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(p.set_interest(-1, Interest::NONE, rd).is_err());
    }
}
