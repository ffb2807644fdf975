//! The reactor: every fd registered with `add_reader`/`add_writer`, in one `mio` poller,
//! with asyncio's level-triggered contract on top of mio's edge-triggered registrations.
//!
//! # Why mio, re-armed after each delivered event
//!
//! asyncio's `add_reader` is level-triggered and persistent: a callback that reads half of
//! the pending data is called again on the next iteration, and one that removes or replaces
//! its registration from inside the callback is not. mio registers every source
//! edge-triggered (`EPOLLET`, `EV_CLEAR`) and offers no other mode. An edge is reported
//! once; a registration that is modified (`epoll_ctl(MOD)`, `EV_ADD` again) is checked
//! again by the kernel and reported at once if the fd is still ready. So the reactor
//! *re-arms* (`Registry::reregister`) exactly the level-triggered registrations whose event
//! it delivered, in one batch after the callbacks ran ([`Reactor::rearm_delivered`], called
//! before the next wait); a registration that the callback removed, replaced or changed was
//! re-armed by that call already and is skipped. Cost: one `epoll_ctl` per delivered event
//! (measured in `benches/README.md`, "Reactor on mio"). Registrations made
//! [`Trigger::Edge`] (native transports) are re-armed only for a hang-up or error, or when
//! their owner asks ([`Reactor::rearm_later`]).
//!
//! # Things that don't work (rejected alternatives)
//!
//! - **A hand-written level-triggered backend** (what this file replaced: epoll, kqueue and
//!   `poll(2)` over `libc`, with eventfd and self-pipe wakers, ~725 lines): one system call
//!   fewer per event, but every platform's backend is ours to get right, and the kqueue and
//!   pipe code had never been compiled. mio is the maintained crate made for this job.
//! - **Re-arming lazily, only when the loop is about to block**: saves the `epoll_ctl` while
//!   the loop stays busy, but a loop that never goes idle (a task spinning on
//!   `asyncio.sleep(0)` waiting for a reader that reads one byte per call) would never call
//!   that reader again: starvation, i.e. a hang.
//! - **Calling a delivered reader again without asking the kernel**: asyncio's transports
//!   tolerate a spurious call (`recv` raises `BlockingIOError`), but a user callback doing
//!   a blocking `os.read` would hang the loop.
//! - **One-shot registrations** (`EPOLLONESHOT`): mio does not expose them, and they cost the
//!   same re-arm per event.
//! - **Registering user fds in Trio's own epoll**: Trio allows one waiter per fd and
//!   direction; asyncio code that also waits on the fd through Trio would collide.
//! - **One Trio task per fd** (trio-asyncio 0.16): a task switch plus a re-arm per event and
//!   a task spawn per registration.
//! - **Assuming a registered fd stays open**: asyncio code closes sockets without removing
//!   readers. The kernel then forgets the registration while our table keeps it, and the fd
//!   number may be reused: adding to it again registers the new file (`ENOENT` on modify ->
//!   add, `EEXIST` on add -> modify), re-arming a forgotten one is a no-op (`ENOENT`
//!   ignored, as asyncio's selector would never report it again either), and removal
//!   ignores `EBADF`/`ENOENT` like asyncio's selectors.
//!
//! The table is a `Vec` indexed by fd (fd numbers are small and dense); the token of an fd
//! is `Token(fd)`, the waker's is [`WAKER`]. An event for an fd no longer in the table is
//! ignored.

use std::io;
use std::os::fd::RawFd;

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Registry, Token};

use super::poller::WAKER;
use super::timers::Cancellable;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// How a registration reports readiness.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Trigger {
    /// asyncio's `add_reader`/`add_writer`: reported on every iteration while ready
    /// (re-armed after each delivered event).
    Level,
    /// Reported once per readiness edge (native transports): not re-armed after delivery.
    /// The owner reads until a short read or `EAGAIN`, and asks for a re-arm
    /// ([`Reactor::rearm_later`]) when it stops while the fd may still be ready.
    Edge,
}

struct Slot<T> {
    reader: Option<T>,
    writer: Option<T>,
    trigger: Trigger,
    /// An event was delivered and the kernel registration has not been re-armed since.
    delivered: bool,
}

impl<T> Slot<T> {
    fn interest(&self) -> Option<Interest> {
        match (self.reader.is_some(), self.writer.is_some()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            reader: None,
            writer: None,
            trigger: Trigger::Level,
            delivered: false,
        }
    }
}

/// Readiness of one event, masked the way asyncio's selectors mask it: an error or a
/// hang-up makes the fd both readable and writable.
fn readiness(ev: &Event) -> (bool, bool) {
    let hangup = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
    (
        ev.is_readable() || ev.is_priority() || hangup,
        ev.is_writable() || hangup,
    )
}

fn errno_is(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

pub(crate) struct Reactor<T> {
    registry: Registry,
    slots: Vec<Slot<T>>,
    readers: usize,
    writers: usize,
    /// fds whose event was delivered since the last [`Reactor::rearm_delivered`].
    delivered: Vec<RawFd>,
    rearms: u64,
}

impl<T: Cancellable> Reactor<T> {
    pub(crate) fn new(registry: Registry) -> Reactor<T> {
        Reactor {
            registry,
            slots: Vec::new(),
            readers: 0,
            writers: 0,
            delivered: Vec::new(),
            rearms: 0,
        }
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

    /// Number of re-arm system calls made (statistics, tests).
    pub(crate) fn rearms(&self) -> u64 {
        self.rearms
    }

    fn slot(&self, fd: RawFd) -> Option<&Slot<T>> {
        usize::try_from(fd).ok().and_then(|i| self.slots.get(i))
    }

    /// The callback registered for `fd` in `dir`.
    pub(crate) fn get(&self, fd: RawFd, dir: Direction) -> Option<&T> {
        let slot = self.slot(fd)?;
        match dir {
            Direction::Read => slot.reader.as_ref(),
            Direction::Write => slot.writer.as_ref(),
        }
    }

    /// Tell the kernel that `fd` now wants `new` (was `old`); arms the registration.
    fn sync_kernel(
        &self,
        fd: RawFd,
        old: Option<Interest>,
        new: Option<Interest>,
    ) -> io::Result<()> {
        let token = Token(fd as usize);
        let mut src = SourceFd(&fd);
        match (old, new) {
            (_, None) => {
                // The kernel forgets an fd when its file is closed: EBADF/ENOENT on removal
                // are expected (asyncio's selectors ignore them the same way).
                let _ = self.registry.deregister(&mut src);
                Ok(())
            }
            (None, Some(new)) => match self.registry.register(&mut src, token, new) {
                // A stale kernel registration (the old file is still open elsewhere).
                Err(e) if errno_is(&e, libc::EEXIST) => {
                    self.registry.reregister(&mut src, token, new)
                }
                r => r,
            },
            (Some(_), Some(new)) => match self.registry.reregister(&mut src, token, new) {
                // Closed and its number reused since it was registered: register the new file.
                Err(e) if errno_is(&e, libc::ENOENT) => {
                    self.registry.register(&mut src, token, new)
                }
                r => r,
            },
        }
    }

    /// Register `item` for `fd` in `dir`, level-triggered, replacing (and returning) the
    /// previous one. On error (bad fd) the registration is unchanged and `item` is handed
    /// back. (The scheduler core always names the trigger: [`Reactor::add_with`].)
    #[cfg(test)]
    pub(crate) fn add(
        &mut self,
        fd: RawFd,
        dir: Direction,
        item: T,
    ) -> Result<Option<T>, (io::Error, T)> {
        self.add_with(fd, dir, item, Trigger::Level)
    }

    /// [`Reactor::add`] with an explicit [`Trigger`] (it applies to both directions of `fd`).
    pub(crate) fn add_with(
        &mut self,
        fd: RawFd,
        dir: Direction,
        item: T,
        trigger: Trigger,
    ) -> Result<Option<T>, (io::Error, T)> {
        let Ok(idx) = usize::try_from(fd) else {
            return Err((io::Error::from_raw_os_error(libc::EBADF), item));
        };
        if idx >= self.slots.len() {
            self.slots.resize_with(idx + 1, Slot::default);
        }
        let slot = &self.slots[idx];
        let old = slot.interest();
        let new = Some(match dir {
            Direction::Read => old.map_or(Interest::READABLE, |i| i | Interest::READABLE),
            Direction::Write => old.map_or(Interest::WRITABLE, |i| i | Interest::WRITABLE),
        });
        // Same interest (a replaced callback): no system call; if an event was delivered,
        // the re-arm batch still re-arms it for the new callback.
        if new != old || slot.trigger != trigger {
            if let Err(e) = self.sync_kernel(fd, old, new) {
                return Err((e, item));
            }
            self.slots[idx].delivered = false;
        }
        let slot = &mut self.slots[idx];
        slot.trigger = trigger;
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
        let idx = usize::try_from(fd).ok()?;
        let slot = self.slots.get_mut(idx)?;
        let old = slot.interest();
        let prev = match dir {
            Direction::Read => slot.reader.take(),
            Direction::Write => slot.writer.take(),
        }?;
        let new = slot.interest();
        slot.delivered = false;
        if new.is_none() {
            slot.trigger = Trigger::Level;
        }
        // Errors only mean the kernel already forgot the fd (closed): ignore.
        let _ = self.sync_kernel(fd, old, new);
        match dir {
            Direction::Read => self.readers -= 1,
            Direction::Write => self.writers -= 1,
        }
        Some(prev)
    }

    /// In a child process after `fork()`: move every registration to `registry` (the
    /// child's new poller), each armed afresh. The old registry is only dropped (its fd
    /// closed), never used to deregister anything: the parent shares that kernel object.
    /// Registrations the new poller refuses (the fd was closed since) are removed and
    /// returned, as the kernel drops a closed fd's registration.
    pub(crate) fn renew(&mut self, registry: Registry) -> Vec<T> {
        drop(std::mem::replace(&mut self.registry, registry));
        self.delivered.clear();
        let mut refused = Vec::new();
        for idx in 0..self.slots.len() {
            self.slots[idx].delivered = false;
            let Some(interest) = self.slots[idx].interest() else {
                continue;
            };
            let fd = idx as RawFd;
            let armed = self
                .registry
                .register(&mut SourceFd(&fd), Token(idx), interest);
            if armed.is_err() {
                let slot = &mut self.slots[idx];
                slot.trigger = Trigger::Level;
                if let Some(r) = slot.reader.take() {
                    self.readers -= 1;
                    refused.push(r);
                }
                if let Some(w) = slot.writer.take() {
                    self.writers -= 1;
                    refused.push(w);
                }
            }
        }
        refused
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

    /// Dispatch the events of one wait: `ready` is called with the callback of every ready
    /// (fd, direction), readers before writers of the same fd. A callback found cancelled is
    /// unregistered and moved to `dead` instead (asyncio's `_process_events`). Returns
    /// whether the waker's event was among them.
    pub(crate) fn dispatch(
        &mut self,
        events: &Events,
        mut ready: impl FnMut(&T),
        dead: &mut Vec<T>,
    ) -> bool {
        let mut woken = false;
        for ev in events.iter() {
            if ev.token() == WAKER {
                woken = true;
                continue;
            }
            let Ok(fd) = RawFd::try_from(ev.token().0) else {
                continue;
            };
            let (readable, writable) = readiness(ev);
            // A hang-up or error is a state, not new data: an edge-triggered owner whose read
            // returns the last bytes (a short read, "drained") would never hear of the EOF
            // or error behind them. Such an event is re-armed like a level-triggered one.
            let sticky = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
            let mut hit = false;
            for (dir, on) in [(Direction::Read, readable), (Direction::Write, writable)] {
                if !on {
                    continue;
                }
                match self.get(fd, dir) {
                    None => {}
                    Some(item) if item.is_cancelled() => {
                        if let Some(item) = self.remove(fd, dir) {
                            dead.push(item);
                        }
                    }
                    Some(item) => {
                        ready(item);
                        hit = true;
                    }
                }
            }
            if hit {
                let slot = &mut self.slots[fd as usize];
                if (slot.trigger == Trigger::Level || sticky) && !slot.delivered {
                    slot.delivered = true;
                    self.delivered.push(fd);
                }
            }
        }
        woken
    }

    /// Have `fd` re-armed with the delivered level-triggered registrations (before the next
    /// wait), so the kernel reports it again if it is still ready: what an edge-triggered
    /// owner asks for when it stopped before draining the fd (a full read, a write that
    /// left data buffered). Nothing for an fd without a registration.
    pub(crate) fn rearm_later(&mut self, fd: RawFd) {
        let Some(slot) = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)) else {
            return;
        };
        if slot.interest().is_some() && !slot.delivered {
            slot.delivered = true;
            self.delivered.push(fd);
        }
    }

    /// Re-arm every level-triggered registration whose event was delivered and that no
    /// callback has re-registered, removed or replaced with a new interest since: the
    /// kernel reports it again at once if the fd is still ready. Call after the callbacks
    /// ran and before the next wait (or before a driver parks on the poller's fd).
    pub(crate) fn rearm_delivered(&mut self) {
        if self.delivered.is_empty() {
            return;
        }
        let mut delivered = std::mem::take(&mut self.delivered);
        for &fd in &delivered {
            let Some(slot) = self.slots.get_mut(fd as usize) else {
                continue;
            };
            if !slot.delivered {
                continue;
            }
            slot.delivered = false;
            if let Some(interest) = slot.interest() {
                self.rearms += 1;
                // ENOENT/EBADF: the fd was closed without removal; the kernel forgot it.
                let _ = self
                    .registry
                    .reregister(&mut SourceFd(&fd), Token(fd as usize), interest);
            }
        }
        delivered.clear();
        self.delivered = delivered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::poller::Poller;
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;
    use std::time::Duration;

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

    struct Fixture {
        poller: Poller,
        reactor: Reactor<H>,
        waker: mio::Waker,
    }

    fn fixture() -> Fixture {
        let (poller, registry, waker) = Poller::new().unwrap();
        Fixture {
            poller,
            reactor: Reactor::new(registry),
            waker,
        }
    }

    impl Fixture {
        /// One loop iteration's worth of I/O: re-arm what the last one delivered, poll
        /// without blocking, dispatch. Returns (ready names, dead names, woken).
        fn poll(&mut self) -> (Vec<&'static str>, Vec<&'static str>, bool) {
            self.reactor.rearm_delivered();
            let mut got = vec![];
            let mut dead = vec![];
            self.poller.wait(Some(Duration::ZERO)).unwrap();
            let woken = self
                .reactor
                .dispatch(self.poller.events(), |x| got.push(x.0), &mut dead);
            (got, dead.iter().map(|d| d.0).collect(), woken)
        }

        /// A non-blocking socket pair whose first end is registered edge-triggered for
        /// reading as `name`: (registered end, peer, its fd).
        fn edge_reader(&mut self, name: &'static str) -> (UnixStream, UnixStream, RawFd) {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let fd = a.as_raw_fd();
            self.reactor
                .add_with(fd, Direction::Read, h(name), Trigger::Edge)
                .unwrap();
            (a, b, fd)
        }
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn level_triggered_reader_fires_until_drained() {
        let mut f = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        assert!(f
            .reactor
            .add(a.as_raw_fd(), Direction::Read, h("r"))
            .unwrap()
            .is_none());
        assert!(f.reactor.has_registrations());
        assert_eq!(f.poll().0, NONE);
        (&b).write_all(b"abcd").unwrap();
        // Not drained: reported again and again (level-triggered).
        for _ in 0..3 {
            assert_eq!(f.poll().0, ["r"]);
        }
        let mut buf = [0u8; 2];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(f.poll().0, ["r"], "half read: still readable");
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(f.poll().0, NONE);
        assert_eq!(f.poll().0, NONE);
        (&b).write_all(b"e").unwrap();
        assert_eq!(f.poll().0, ["r"], "new data after a drain");
        assert_eq!(
            f.reactor.remove(a.as_raw_fd(), Direction::Read).unwrap().0,
            "r"
        );
        assert!(f.reactor.remove(a.as_raw_fd(), Direction::Read).is_none());
        assert!(!f.reactor.has_registrations());
        assert_eq!(f.poll().0, NONE, "removed: never reported");
    }

    #[test]
    fn renew_moves_registrations_and_leaves_the_old_poller_alone() {
        let mut old = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        {
            // Registered, then closed without removal.
            let (e, _f) = UnixStream::pair().unwrap();
            old.reactor
                .add(e.as_raw_fd(), Direction::Read, h("gone"))
                .unwrap();
        }
        old.reactor
            .add(a.as_raw_fd(), Direction::Read, h("r"))
            .unwrap();
        old.reactor
            .add(c.as_raw_fd(), Direction::Write, h("w"))
            .unwrap();
        (&b).write_all(b"x").unwrap();
        let (mut new_poller, registry, _waker) = Poller::new().unwrap();
        let refused: Vec<_> = old.reactor.renew(registry).iter().map(|x| x.0).collect();
        assert_eq!(refused, ["gone"], "a closed fd cannot be registered again");
        assert_eq!((old.reactor.readers(), old.reactor.writers()), (1, 1));
        // The new poller reports both registrations (level-triggered: again and again).
        for _ in 0..2 {
            old.reactor.rearm_delivered();
            new_poller.wait(Some(Duration::ZERO)).unwrap();
            let mut got = vec![];
            old.reactor
                .dispatch(new_poller.events(), |x| got.push(x.0), &mut vec![]);
            got.sort_unstable();
            assert_eq!(got, ["r", "w"]);
        }
        // Nothing was deregistered from the old poller (a forked parent still uses it).
        old.poller.wait(Some(Duration::ZERO)).unwrap();
        let mut tokens: Vec<_> = old.poller.events().iter().map(|e| e.token().0).collect();
        tokens.sort_unstable();
        let mut want = vec![a.as_raw_fd() as usize, c.as_raw_fd() as usize];
        want.sort_unstable();
        assert_eq!(tokens, want);
    }

    #[test]
    fn ten_one_byte_reads_are_ten_events() {
        let mut f = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        f.reactor
            .add(a.as_raw_fd(), Direction::Read, h("r"))
            .unwrap();
        (&b).write_all(&[7u8; 10]).unwrap();
        let mut events = 0;
        for _ in 0..20 {
            let n = f.poll().0.len();
            events += n;
            if n > 0 {
                let mut one = [0u8; 1];
                (&a).read_exact(&mut one).unwrap();
            }
        }
        assert_eq!(events, 10);
        assert_eq!(f.reactor.rearms(), 10, "one re-arm per delivered event");
    }

    #[test]
    fn writer_and_reader_on_one_fd_and_replacement() {
        let mut f = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        f.reactor.add(fd, Direction::Write, h("w")).unwrap();
        assert_eq!(f.poll().0, ["w"]);
        assert_eq!(f.poll().0, ["w"], "an always-writable fd keeps firing");
        (&b).write_all(b"x").unwrap();
        f.reactor.add(fd, Direction::Read, h("r1")).unwrap();
        assert_eq!(f.poll().0, ["r1", "w"], "readers first");
        // Replaced (same interest, no system call) after its event was delivered: the
        // re-arm batch still re-arms it, for the new callback.
        let prev = f
            .reactor
            .add(fd, Direction::Read, h("r2"))
            .unwrap()
            .unwrap();
        assert_eq!(prev.0, "r1");
        assert_eq!((f.reactor.readers(), f.reactor.writers()), (1, 1));
        assert_eq!(f.reactor.get(fd, Direction::Read).unwrap().0, "r2");
        assert_eq!(f.poll().0, ["r2", "w"]);
        f.reactor.remove(fd, Direction::Write);
        assert_eq!(f.poll().0, ["r2"]);
        assert_eq!(f.reactor.iter().count(), 1);
        f.reactor.remove(fd, Direction::Read);
        assert_eq!(f.reactor.iter().count(), 0);
        assert!(!f.reactor.has_registrations());
        assert_eq!(f.poll().0, NONE);
    }

    #[test]
    fn removal_and_replacement_after_delivery_skip_the_rearm() {
        let mut f = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        (&b).write_all(b"x").unwrap();
        f.reactor.add(fd, Direction::Read, h("r")).unwrap();
        assert_eq!(f.poll().0, ["r"]);
        // "Inside the callback": removed. No re-arm, never reported again.
        f.reactor.remove(fd, Direction::Read);
        let before = f.reactor.rearms();
        assert_eq!(f.poll().0, NONE);
        assert_eq!(f.reactor.rearms(), before);
        // Added back: the add armed it (still readable: reported).
        f.reactor.add(fd, Direction::Read, h("r")).unwrap();
        assert_eq!(f.poll().0, ["r"]);
        // Inside the callback: a writer added, which re-registers (and arms) the fd.
        f.reactor.add(fd, Direction::Write, h("w")).unwrap();
        let before = f.reactor.rearms();
        assert_eq!(f.poll().0, ["r", "w"]);
        assert_eq!(f.reactor.rearms(), before, "the add re-armed it already");
    }

    #[test]
    fn edge_triggered_hangup_is_reported_until_handled_and_rearm_later_asks_again() {
        let mut f = fixture();
        let (a, b, fd) = f.edge_reader("e");
        // Data and the EOF behind it arrive before the poll: one edge.
        (&b).write_all(b"abc").unwrap();
        drop(b);
        assert_eq!(f.poll().0, ["e"]);
        // The owner reads the data (a short read: it stops there, the EOF unread).
        let mut buf = [0u8; 16];
        assert_eq!((&a).read(&mut buf).unwrap(), 3);
        assert_eq!(
            f.poll().0,
            ["e"],
            "a hang-up is re-armed: the EOF is not lost"
        );
        assert_eq!((&a).read(&mut buf).unwrap(), 0);
        assert_eq!(
            f.poll().0,
            ["e"],
            "reported while registered, as level-triggered"
        );
        f.reactor.remove(fd, Direction::Read); // what a transport does at EOF
        assert_eq!(f.poll().0, NONE);

        // rearm_later: an owner that stopped before draining asks to be told again.
        let (c, d, fd) = f.edge_reader("f");
        (&d).write_all(b"xy").unwrap();
        assert_eq!(f.poll().0, ["f"]);
        assert_eq!(
            (&c).read(&mut buf[..1]).unwrap(),
            1,
            "a full read: more may wait"
        );
        assert_eq!(f.poll().0, NONE, "no new edge");
        f.reactor.rearm_later(fd);
        assert_eq!(f.poll().0, ["f"], "re-armed: still ready");
        assert_eq!((&c).read(&mut buf).unwrap(), 1);
        f.reactor.rearm_later(fd);
        assert_eq!(f.poll().0, NONE, "re-armed, drained: nothing");
        f.reactor.rearm_later(-1); // no registration: nothing
    }

    #[test]
    fn edge_triggered_registration_is_not_rearmed() {
        let mut f = fixture();
        let (a, b, fd) = f.edge_reader("e");
        (&b).write_all(b"abc").unwrap();
        assert_eq!(f.poll().0, ["e"]);
        assert_eq!(
            f.poll().0,
            NONE,
            "edge: once per edge, although not drained"
        );
        (&b).write_all(b"d").unwrap();
        assert_eq!(f.poll().0, ["e"], "new data: a new edge");
        let mut buf = [0u8; 16];
        let n = (&a).read(&mut buf).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            (&a).read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(f.reactor.rearms(), 0);
        // Switching it to level-triggered re-registers it.
        f.reactor.add(fd, Direction::Read, h("l")).unwrap();
        (&b).write_all(b"x").unwrap();
        assert_eq!(f.poll().0, ["l"]);
        assert_eq!(f.poll().0, ["l"]);
    }

    #[test]
    fn cancelled_callback_is_unregistered_when_it_fires() {
        let mut f = fixture();
        let (a, _b) = UnixStream::pair().unwrap();
        let w = h("w");
        f.reactor
            .add(a.as_raw_fd(), Direction::Write, w.clone())
            .unwrap();
        w.1.set(true);
        let (got, dead, _) = f.poll();
        assert!(got.is_empty());
        assert_eq!(dead, ["w"]);
        assert!(!f.reactor.has_registrations());
    }

    #[test]
    fn hangup_wakes_both_directions() {
        let mut f = fixture();
        let (a, b) = UnixStream::pair().unwrap();
        f.reactor
            .add(a.as_raw_fd(), Direction::Read, h("r"))
            .unwrap();
        assert_eq!(f.poll().0, NONE);
        drop(b);
        assert_eq!(f.poll().0, ["r"]);
        assert_eq!(f.poll().0, ["r"], "EOF stays readable");
    }

    #[test]
    fn bad_fds_are_refused_and_closed_fds_are_forgotten() {
        let mut f = fixture();
        let (err, item) = f.reactor.add(-1, Direction::Read, h("x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(item.0, "x");
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        drop(a);
        drop(b);
        let (err, _) = f.reactor.add(fd, Direction::Read, h("x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert!(!f.reactor.has_registrations());
        // Registered, delivered, closed without removal, then the number reused before the
        // re-arm: the re-arm must not report the new file under the old registration.
        let (a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        (&b).write_all(b"x").unwrap();
        f.reactor.add(fd, Direction::Read, h("old")).unwrap();
        assert_eq!(f.poll().0, ["old"]);
        drop(a);
        let (c, d) = UnixStream::pair().unwrap();
        let c: OwnedFd = c.into();
        if c.as_raw_fd() == fd {
            (&d).write_all(b"y").unwrap();
            assert_eq!(f.poll().0, NONE, "the kernel forgot the closed file");
            // Adding to the reused number registers the new file.
            f.reactor.add(fd, Direction::Write, h("new")).unwrap();
            assert_eq!(f.poll().0, ["old", "new"]);
        }
        assert!(f.reactor.remove(fd, Direction::Read).is_some());
        drop(b);
    }

    #[test]
    fn waker_is_reported_not_dispatched() {
        let mut f = fixture();
        assert!(!f.poll().2);
        f.waker.wake().unwrap();
        let (got, _, woken) = f.poll();
        assert!(got.is_empty());
        assert!(woken);
        assert!(!f.poll().2, "one event per wake");
        // The poller's own fd is readable exactly while an event is queued.
        let pfd = f.poller.raw_fd();
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
        f.waker.wake().unwrap();
        assert!(readable(pfd));
        assert!(f.poll().2);
        assert!(!readable(pfd));
    }

    #[test]
    fn blocking_wait_times_out_and_wakes() {
        let mut f = fixture();
        f.poller.wait(Some(Duration::from_micros(300))).unwrap();
        assert!(f.poller.events().is_empty());
        let waker = std::sync::Arc::new(f.waker);
        let w = waker.clone();
        let t = std::thread::spawn(move || w.wake().unwrap());
        f.poller.wait(None).unwrap();
        t.join().unwrap();
        assert!(f.reactor.dispatch(f.poller.events(), |_| {}, &mut vec![]));
    }
}
