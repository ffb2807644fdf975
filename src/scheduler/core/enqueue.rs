//! The one enqueue path, and the one place dead timers are released.
//!
//! `call_soon`, `call_soon_threadsafe`, `call_later` and `call_at` all end in
//! [`Core::schedule`]: a ready callback goes to the ready FIFO, a timer to the heap, from
//! the owner thread directly, from any other thread through the threadsafe queue (drained
//! at the start of each iteration). Producers on the owner thread push straight into the
//! FIFO (asyncio's `self._ready.append`), so `call_soon` and `call_soon_threadsafe` from
//! the loop's own thread keep their relative order, exactly as in asyncio.
//!
//! Cancelled timers leave the heap lazily (asyncio's rule): at its top, when it is mostly
//! dead (compaction), or when dequeued to run. Whatever leaves the state inside a borrow is
//! released by [`Core::with_dead`], after the borrow: marked unscheduled, then dropped
//! (dropping may run code of the layer above, e.g. `__del__`).

use std::sync::atomic::Ordering;

use super::super::binding::{Binding, Callback};
use super::{Core, CoreState};

impl<B: Binding> Core<B> {
    /// Queue `item` (a ready callback, or a timer if `item.is_timer()`): straight into the
    /// state on the owner thread, through the threadsafe queue from any other thread.
    pub(crate) fn schedule(&self, t: B::Token<'_>, item: B::Item) {
        let is_timer = item.is_timer();
        if is_timer {
            item.set_scheduled(true);
        }
        if self.on_owner_thread() {
            if is_timer {
                let when = item.when();
                self.state.with(t, |s| s.timers.push(when, item));
            } else {
                // Keep asyncio's order between threads: a callback another thread queued
                // before this one (call_soon_threadsafe) must run first.
                if self.threadsafe_len.load(Ordering::SeqCst) != 0 {
                    self.drain_threadsafe(t);
                }
                self.state.with(t, |s| s.ready.push(item));
            }
        } else {
            let mut q = self.threadsafe.lock().unwrap_or_else(|e| e.into_inner());
            q.push_back(item);
            self.threadsafe_len.store(q.len(), Ordering::SeqCst);
        }
        self.waker.notify();
    }

    /// Move what other threads queued into the ready FIFO and the timer heap.
    pub(super) fn drain_threadsafe(&self, t: B::Token<'_>) {
        let mut batch = {
            let mut q = self.threadsafe.lock().unwrap_or_else(|e| e.into_inner());
            self.threadsafe_len.store(0, Ordering::SeqCst);
            std::mem::take(&mut *q)
        };
        self.state.with(t, |s| {
            for item in batch.drain(..) {
                if item.is_timer() {
                    s.timers.push(item.when(), item);
                } else {
                    s.ready.push(item);
                }
            }
        });
    }

    /// A timer in the heap was cancelled: count it and compact the heap if it is mostly
    /// dead (asyncio's rule), so created-and-cancelled timeouts do not pile up.
    pub(crate) fn timer_cancelled(&self, t: B::Token<'_>) {
        self.with_dead(t, |s, dead| {
            s.timers.note_cancelled();
            if s.timers.needs_compaction() {
                s.timers.compact(dead);
            }
        });
        self.waker.notify();
    }

    /// Run `f` on the state with a list for the callbacks it takes out of the state (dead
    /// timers, cancelled registrations); release them after the borrow: no longer
    /// scheduled, then dropped.
    #[inline]
    pub(super) fn with_dead<R>(
        &self,
        t: B::Token<'_>,
        f: impl FnOnce(&mut CoreState<B>, &mut Vec<B::Item>) -> R,
    ) -> R {
        let mut dead = Vec::new();
        let r = self.state.with(t, |s| f(s, &mut dead));
        if !dead.is_empty() {
            for item in &dead {
                item.set_scheduled(false);
            }
            drop(dead);
        }
        r
    }
}
