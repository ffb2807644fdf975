//! The sleep/wake protocol between the loop's driver and every producer of work.
//!
//! The driver blocks in the poller (or a Trio driver parks on the poller's fd). Anything
//! that gives the loop new work while it is blocked (a callback queued from another thread,
//! a new timer, `stop()`) must wake it, with at most one system call per sleep. While the
//! driver is awake, producers make no system call at all.
//!
//! ```text
//!   driver (owner thread)                    producer (any thread)
//!   ---------------------                    ---------------------
//!   sleeping := true          (SeqCst)       push work; publish it (SeqCst)
//!   re-check queues           (SeqCst)       if sleeping (SeqCst) and
//!     work found -> end_sleep                    not pending.swap(true):
//!     else block in the poller                       mio::Waker::wake()
//!   ...woken...
//!   end_sleep: sleeping := false; pending := false
//!     (returns whether a wake-up was claimed: its event may still be queued in the
//!      poller, so the driver polls once more before it trusts "no events")
//! ```
//!
//! The two SeqCst store/load pairs are a Dekker handshake: either the producer sees
//! `sleeping` (and wakes), or the driver sees the work (and does not block). `pending` makes
//! the wake happen once per sleep. The wake is `mio::Waker` (an eventfd, or `EVFILT_USER`):
//! edge-triggered, so nothing has to be drained; a wake-up whose event arrives after the
//! driver already woke is consumed by the next poll.
//!
//! # Why these atomics are cache-padded, and why no `Parker` or `Backoff`
//!
//! `sleeping` and `pending` are written by the driver on every sleep and read by producers
//! on other threads on every `call_soon_threadsafe`; [`CachePadded`] keeps them off the
//! cache line of the loop's other fields (and of each other's writers). A
//! `crossbeam_utils::sync::Parker` cannot be the wake path: the driver blocks in the kernel
//! poller, which must also wake on fd readiness and timers, so the wake has to be an event
//! of that poller. `Backoff` (spinning before blocking) would burn a core that producers
//! and the interpreter need on small machines, and a wake-up already costs one system call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam_utils::CachePadded;

pub(crate) struct Waker {
    /// `None` once closed: a producer racing with `close()` then wakes nothing.
    inner: Mutex<Option<mio::Waker>>,
    sleeping: CachePadded<AtomicBool>,
    pending: CachePadded<AtomicBool>,
    wakes: AtomicU64,
}

impl Waker {
    pub(crate) fn new(waker: mio::Waker) -> Waker {
        Waker {
            inner: Mutex::new(Some(waker)),
            sleeping: CachePadded::new(AtomicBool::new(false)),
            pending: CachePadded::new(AtomicBool::new(false)),
            wakes: AtomicU64::new(0),
        }
    }

    /// In a child process after `fork()`: use `waker` (registered on the child's new
    /// poller) instead of the inherited one, whose eventfd is the parent's kernel object too
    /// (waking through it would wake the parent). The old one is only closed, which leaves
    /// the parent's copy alone. A closed waker stays closed.
    pub(crate) fn renew(&self, waker: mio::Waker) {
        let old = {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_some() {
                guard.replace(waker)
            } else {
                None
            }
        };
        drop(old);
        self.sleeping.store(false, Ordering::SeqCst);
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Driver: announce the intent to block. The caller must re-check every queue after
    /// this and call [`Waker::end_sleep`] if it finds work.
    pub(crate) fn begin_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Driver: back from blocking (or gave up blocking). Returns whether a producer claimed
    /// the wake-up during this sleep (its event is, or will be, queued in the poller).
    pub(crate) fn end_sleep(&self) -> bool {
        self.sleeping.store(false, Ordering::SeqCst);
        self.pending.swap(false, Ordering::SeqCst)
    }

    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
    }

    /// Producer: called after new work was published. A plain load while the driver is
    /// awake; one wake-up system call per sleep otherwise.
    #[inline]
    pub(crate) fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) && !self.pending.swap(true, Ordering::SeqCst) {
            self.wake_now();
        }
    }

    /// Wake the poller unconditionally (the caller knows a driver is parked).
    pub(crate) fn wake_now(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = guard.as_ref() {
            // A failed wake can only mean the poller is gone (loop closing): nothing to wake.
            let _ = w.wake();
        }
    }

    /// How many wake-ups were made (for statistics and tests).
    pub(crate) fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Drop the waker; later notifications wake nothing. Idempotent.
    pub(crate) fn close(&self) {
        let old = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::poller::{Poller, WAKER};
    use std::time::Duration;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn waker_is_send_and_sync() {
        assert_send_sync::<Waker>();
    }

    fn woken(p: &mut Poller) -> bool {
        p.wait(Some(Duration::ZERO))
            .unwrap()
            .iter()
            .any(|e| e.token() == WAKER)
    }

    #[test]
    fn notify_wakes_only_while_sleeping_and_once_per_sleep() {
        let (mut p, _registry, mw) = Poller::new().unwrap();
        let w = Waker::new(mw);
        w.notify();
        assert!(!woken(&mut p), "awake: no wake-up");
        assert_eq!(w.wakes(), 0);
        w.begin_sleep();
        w.notify();
        w.notify();
        w.notify();
        assert_eq!(w.wakes(), 1, "one wake-up per sleep");
        assert!(w.end_sleep(), "claimed");
        assert!(woken(&mut p));
        assert!(!woken(&mut p), "consumed by one poll");
        w.begin_sleep();
        assert!(!w.end_sleep(), "nobody woke us");
        w.begin_sleep();
        w.notify();
        assert_eq!(w.wakes(), 2);
        w.end_sleep();
        w.close();
        w.close();
        w.begin_sleep();
        w.notify(); // must not touch a closed poller
    }

    #[test]
    fn notify_from_many_threads_wakes_a_sleeper() {
        let (mut p, _registry, mw) = Poller::new().unwrap();
        let w = std::sync::Arc::new(Waker::new(mw));
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
        p.wait(None).unwrap();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(w.wakes(), 1);
        assert!(w.end_sleep());
    }
}
