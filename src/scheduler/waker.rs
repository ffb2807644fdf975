//! The sleep/wake protocol between the loop's driver and every producer of work.
//!
//! The driver (a Trio task, or a test's `select`) parks on the poller's fd. Anything that
//! gives the loop new work while it is parked (a callback queued from another thread, a new
//! timer, `stop()`) must make that fd readable, and must do so with at most one system call
//! per sleep. While the driver is awake, producers must not make any system call at all.
//!
//! ```text
//!   driver (owner thread)                    producer (any thread)
//!   ---------------------                    ---------------------
//!   sleeping := true          (SeqCst)       push work; publish it (SeqCst)
//!   re-check queues           (SeqCst)       if sleeping (SeqCst) and
//!     work found -> sleeping := false           not pending.swap(true):
//!     else park on poller fd                        write the wake fd
//!   ...woken...
//!   sleeping := false
//!   pending := false; drain the wake fd
//! ```
//!
//! The two SeqCst store/load pairs are a Dekker handshake: either the producer sees
//! `sleeping` (and writes), or the driver sees the work (and does not park). `pending` makes
//! the write happen once per sleep. A producer that read `sleeping == true` just before the
//! driver woke may still write after the drain; that leaves the fd readable, so the next
//! sleep returns at once and is drained again: one spurious wake-up, never a lost one, and
//! never a wake fd stuck readable.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::sys;

pub(crate) struct Waker {
    /// `None` once closed: a producer racing with `close()` then writes nowhere instead
    /// of into a recycled fd number.
    fd: Mutex<Option<sys::Waker>>,
    sleeping: AtomicBool,
    pending: AtomicBool,
    wakes: AtomicU64,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: Mutex::new(Some(sys::Waker::new()?)),
            sleeping: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            wakes: AtomicU64::new(0),
        })
    }

    /// Replace the wake fd with a new one (in a child process after `fork()`: the inherited
    /// fd is the parent's kernel object too, and waking through it would wake the parent).
    /// The old fd is only closed, which leaves the parent's copy alone. A closed waker
    /// stays closed.
    pub(crate) fn renew(&self) -> io::Result<()> {
        let mut guard = self.fd.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            *guard = Some(sys::Waker::new()?);
        }
        self.sleeping.store(false, Ordering::SeqCst);
        self.pending.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn with_fd<R>(&self, f: impl FnOnce(&sys::Waker) -> R) -> Option<R> {
        let guard = self.fd.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(f)
    }

    /// The fd to register in the poller (`None` once closed).
    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        self.with_fd(|w| w.raw_fd())
    }

    /// Driver: announce the intent to park. The caller must re-check every queue after
    /// this and call [`Waker::end_sleep`] if it finds work.
    pub(crate) fn begin_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Driver: back from parking (or gave up parking). Drains the wake fd.
    pub(crate) fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        // Drain only if someone claimed the wake-up: most sleeps end by a timer or an fd
        // event, and a read on an empty eventfd is a wasted system call. (A writer that
        // claimed but has not written yet leaves the fd readable: the next sleep then ends
        // at once and drains it, a spurious but harmless wake-up.)
        if self.pending.swap(false, Ordering::SeqCst) {
            self.with_fd(|w| w.drain());
        }
    }

    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
    }

    /// Producer: called after new work was published. A plain load while the driver is
    /// awake; one `write` per sleep otherwise.
    #[inline]
    pub(crate) fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) && !self.pending.swap(true, Ordering::SeqCst) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            // A failed write can only mean the fd is gone (loop closing): nothing to wake.
            let _ = self.with_fd(|w| w.wake());
        }
    }

    /// Driver: the poller reported the wake fd readable while awake (a straggler): drain it.
    pub(crate) fn drain(&self) {
        self.with_fd(|w| w.drain());
    }

    /// How many wake-up writes were made (for statistics and tests).
    pub(crate) fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Close the fd; later notifications write nowhere. Idempotent.
    pub(crate) fn close(&self) {
        let old = self.fd.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn waker_is_send_and_sync() {
        assert_send_sync::<Waker>();
    }

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    #[test]
    fn notify_writes_only_while_sleeping_and_once_per_sleep() {
        let w = Waker::new().unwrap();
        let fd = w.raw_fd().unwrap();
        w.notify();
        assert!(!readable(fd), "awake: no write");
        assert_eq!(w.wakes(), 0);
        w.begin_sleep();
        w.notify();
        w.notify();
        w.notify();
        assert!(readable(fd));
        assert_eq!(w.wakes(), 1, "one write per sleep");
        w.end_sleep();
        assert!(!readable(fd), "drained on wake-up");
        w.begin_sleep();
        w.notify();
        assert_eq!(w.wakes(), 2);
        w.end_sleep();
        w.close();
        w.close();
        assert!(w.raw_fd().is_none());
        w.begin_sleep();
        w.notify(); // must not touch a closed (maybe reused) fd
    }

    #[test]
    fn notify_from_many_threads_wakes_a_sleeper() {
        let w = std::sync::Arc::new(Waker::new().unwrap());
        w.begin_sleep();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        w.notify();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(readable(w.raw_fd().unwrap()));
        assert_eq!(w.wakes(), 1);
    }
}
