//! The timer heap: a min-heap on `(when, sequence)` with lazy cancellation.
//!
//! - **Order.** Ties on `when` fire in scheduling order (the sequence number), so no timer
//!   ever fires out of order. asyncio's heapq of `TimerHandle`s compares `when` only and
//!   leaves ties to heap shape.
//! - **Lazy cancellation.** Cancelling a timer only marks it (the mark lives in the item,
//!   see [`Cancellable`]) and bumps a counter here. Cancelled timers are dropped when they
//!   reach the top of the heap, or all at once by [`TimerHeap::compact`] when they are more
//!   than half of a heap of over 100 entries (asyncio's `_MIN_SCHEDULED_TIMER_HANDLES` and
//!   `_MIN_CANCELLED_TIMER_HANDLES_FRACTION`), so a workload that creates and cancels
//!   100,000 timeouts does not keep 100,000 dead entries.
//! - **No drops inside.** Every method that removes items hands them back to the caller
//!   (`out` vectors): dropping an item may run arbitrary Python code, which must happen
//!   after the caller has released the loop state.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Compaction happens only above this many entries (asyncio: `_MIN_SCHEDULED_TIMER_HANDLES`).
pub(crate) const MIN_SCHEDULED_FOR_COMPACTION: usize = 100;

/// `drain_due` pops at least this many timers one by one before considering bulk mode.
const BULK_MIN_POPS: usize = 64;

/// Capacity (timers) the heap keeps whatever it held: below it, memory is not given back.
const KEEP_CAPACITY: usize = 1024;

/// Whether a queued timer was cancelled (the flag lives in the handle).
pub(crate) trait Cancellable {
    fn is_cancelled(&self) -> bool;
}

struct Entry<T> {
    when: f64,
    seq: u64,
    item: T,
}

impl<T> Entry<T> {
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.when
            .total_cmp(&other.when)
            .then(self.seq.cmp(&other.seq))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest timer on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key_cmp(self)
    }
}

pub(crate) struct TimerHeap<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
    cancelled: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            next_seq: 0,
            cancelled: 0,
        }
    }
}

impl<T: Cancellable> TimerHeap<T> {
    /// Add a timer due at `when`. A NaN deadline is due at once (stock asyncio runs such a
    /// timer on its next iteration: `nan >= end_time` is false there), ahead of every other
    /// timer; the order of the others is unaffected.
    pub(crate) fn push(&mut self, when: f64, item: T) {
        let when = if when.is_nan() {
            f64::NEG_INFINITY
        } else {
            when
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { when, seq, item });
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Cancelled timers still in the heap.
    pub(crate) fn cancelled(&self) -> usize {
        self.cancelled
    }

    /// A timer in the heap was cancelled (call once per timer, only while it is queued).
    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    /// asyncio's rule for rebuilding the heap without its cancelled timers.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.heap.len() > MIN_SCHEDULED_FOR_COMPACTION && self.cancelled * 2 > self.heap.len()
    }

    /// Rebuild the heap without cancelled timers, moving them to `out`.
    pub(crate) fn compact(&mut self, out: &mut Vec<T>) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        let mut keep = Vec::with_capacity(entries.len() - self.cancelled.min(entries.len()));
        for e in entries {
            if e.item.is_cancelled() {
                out.push(e.item);
            } else {
                keep.push(e);
            }
        }
        self.heap = BinaryHeap::from(keep);
        self.cancelled = 0;
    }

    /// Drop cancelled timers from the top, moving them to `out`.
    pub(crate) fn pop_cancelled_top(&mut self, out: &mut Vec<T>) {
        while let Some(top) = self.heap.peek() {
            if !top.item.is_cancelled() {
                break;
            }
            let e = self.heap.pop().expect("peeked");
            self.cancelled = self.cancelled.saturating_sub(1);
            out.push(e.item);
        }
    }

    /// The earliest deadline, cancelled timers included (call `pop_cancelled_top` first for
    /// the earliest live one).
    pub(crate) fn peek_when(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.when)
    }

    /// Move every due timer (`when < limit`) to `out`, earliest first, ties in scheduling
    /// order. Cancelled timers are moved too (the caller skips them when it runs them, as
    /// asyncio does): checking them here would touch every handle's memory twice.
    ///
    /// Timers are popped one by one while few are due. Once more than 1/16 of the heap
    /// has been popped in one call and the top is still due, the rest is done in bulk: one
    /// sequential partition pass, a sort of the due part and an O(n) heapify of the rest.
    /// A pop costs ~log2(n) cache misses on a large heap; the bulk pass is cache-friendly,
    /// and is only taken after work proportional to its own cost was already done.
    pub(crate) fn drain_due(&mut self, limit: f64, mut out: impl FnMut(T)) {
        let due = |when: f64| when.partial_cmp(&limit) == Some(Ordering::Less);
        let mut popped = 0usize;
        while let Some(top) = self.heap.peek() {
            if !due(top.when) {
                if popped > 0 {
                    self.give_memory_back();
                }
                return;
            }
            if popped >= BULK_MIN_POPS && popped * 16 >= self.heap.len() {
                break;
            }
            out(self.heap.pop().expect("peeked").item);
            popped += 1;
        }
        if self.heap.is_empty() {
            self.give_memory_back();
            return;
        }
        let mut v = std::mem::take(&mut self.heap).into_vec();
        let mut n_due = 0;
        for j in 0..v.len() {
            if due(v[j].when) {
                v.swap(n_due, j);
                n_due += 1;
            }
        }
        v[..n_due].sort_unstable_by(|a, b| a.key_cmp(b));
        for e in v.drain(..n_due) {
            out(e.item);
        }
        self.heap = BinaryHeap::from(v);
        self.give_memory_back();
    }

    /// After a burst, give memory back: once the heap holds less than a quarter of its
    /// capacity (above [`KEEP_CAPACITY`]), halve the capacity to twice its length (amortised
    /// O(1) per timer, as the ready queue's `begin_batch`).
    fn give_memory_back(&mut self) {
        let cap = self.heap.capacity();
        if cap > KEEP_CAPACITY && self.heap.len() * 4 < cap {
            self.heap
                .shrink_to((self.heap.len() * 2).max(KEEP_CAPACITY));
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// A cancelled timer left the heap without going through this structure (it was moved
    /// to the ready queue by `drain_due` and then skipped).
    pub(crate) fn forget_cancelled(&mut self) {
        self.cancelled = self.cancelled.saturating_sub(1);
    }

    /// Every queued item, in no particular order (for the GC and `close`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.item)
    }

    /// Remove everything.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.cancelled = 0;
        std::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .map(|e| e.item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone)]
    struct T(u32, Rc<Cell<bool>>);
    impl Cancellable for T {
        fn is_cancelled(&self) -> bool {
            self.1.get()
        }
    }
    fn t(id: u32) -> T {
        T(id, Rc::new(Cell::new(false)))
    }

    fn drain(h: &mut TimerHeap<T>, limit: f64) -> Vec<u32> {
        let mut out = vec![];
        h.drain_due(limit, |x| out.push(x.0));
        out
    }

    #[test]
    fn nan_deadline_is_due_at_once_and_keeps_the_others_in_order() {
        let mut h = TimerHeap::default();
        h.push(2.0, t(0));
        h.push(f64::NAN, t(1));
        h.push(1.0, t(2));
        assert_eq!(h.peek_when(), Some(f64::NEG_INFINITY));
        assert_eq!(drain(&mut h, 0.0), vec![1]);
        assert_eq!(drain(&mut h, 10.0), vec![2, 0]);
    }

    #[test]
    fn fires_in_when_then_scheduling_order() {
        let mut h = TimerHeap::default();
        h.push(2.0, t(0));
        h.push(1.0, t(1));
        h.push(2.0, t(2));
        h.push(1.0, t(3));
        h.push(3.0, t(4));
        for i in 5..50 {
            h.push(2.0, t(i));
        }
        let mut want = vec![1, 3, 0, 2];
        want.extend(5..50);
        assert_eq!(drain(&mut h, 2.5), want);
        assert_eq!(h.len(), 1);
        assert_eq!(
            drain(&mut h, 3.0),
            Vec::<u32>::new(),
            "due means when < limit"
        );
        assert_eq!(drain(&mut h, 3.0001), [4]);
    }

    #[test]
    fn random_deadlines_never_fire_out_of_order() {
        let mut h = TimerHeap::default();
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let mut items = vec![];
        for i in 0..10_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let when = (x % 1000) as f64 / 10.0;
            items.push((when, i));
            h.push(when, t(i));
        }
        items.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got = drain(&mut h, f64::INFINITY);
        assert_eq!(got, items.iter().map(|p| p.1).collect::<Vec<_>>());
    }

    #[test]
    fn bulk_drain_keeps_order_across_partial_drains() {
        let mut x: u64 = 88172645463325252;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [10usize, 100, 1000, 20_000] {
            let mut h = TimerHeap::default();
            let mut all = vec![];
            for i in 0..n as u32 {
                let when = (rnd() % 500) as f64 / 100.0;
                all.push((when, i));
                h.push(when, t(i));
            }
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut got = vec![];
            for limit in [0.5, 0.5, 1.0, 3.0, 3.01, 10.0] {
                let part = drain(&mut h, limit);
                assert!(part
                    .iter()
                    .all(|&i| all.iter().find(|p| p.1 == i).unwrap().0 < limit));
                got.extend(part);
                if let Some(w) = h.peek_when() {
                    assert!(w >= limit, "everything due was drained");
                }
            }
            assert_eq!(got, all.iter().map(|p| p.1).collect::<Vec<_>>(), "n={n}");
        }
    }

    #[test]
    fn cancelled_timers_are_skipped_and_counted() {
        let mut h = TimerHeap::default();
        let a = t(0);
        let b = t(1);
        h.push(1.0, a.clone());
        h.push(2.0, b.clone());
        a.1.set(true);
        h.note_cancelled();
        assert_eq!(h.cancelled(), 1);
        let mut dead = vec![];
        h.pop_cancelled_top(&mut dead);
        assert_eq!(dead.len(), 1);
        assert_eq!(h.cancelled(), 0);
        assert_eq!(h.peek_when(), Some(2.0));
        b.1.set(true);
        h.note_cancelled();
        // Due cancelled timers are handed out; the caller skips them and says so.
        assert_eq!(drain(&mut h, 10.0), [1]);
        h.forget_cancelled();
        assert_eq!(h.cancelled(), 0);
        assert!(h.is_empty());
    }

    #[test]
    fn compaction_follows_asyncios_rule() {
        let mut h = TimerHeap::default();
        let items: Vec<T> = (0..1000).map(t).collect();
        for (i, it) in items.iter().enumerate() {
            h.push(i as f64, it.clone());
        }
        for it in items.iter().skip(1).take(500) {
            it.1.set(true);
            h.note_cancelled();
        }
        assert!(!h.needs_compaction(), "exactly half is not more than half");
        items[501].1.set(true);
        h.note_cancelled();
        assert!(h.needs_compaction());
        let mut dead = vec![];
        h.compact(&mut dead);
        assert_eq!(dead.len(), 501);
        assert_eq!(h.len(), 499);
        assert_eq!(h.cancelled(), 0);
        let got = drain(&mut h, f64::INFINITY);
        let mut want = vec![0];
        want.extend(502..1000);
        assert_eq!(got, want, "order survives the rebuild");

        let mut small = TimerHeap::default();
        for i in 0..100 {
            let x = t(i);
            x.1.set(true);
            small.push(0.0, x);
            small.note_cancelled();
        }
        assert!(!small.needs_compaction(), "100 entries is not over 100");
    }

    #[test]
    fn take_all_empties() {
        let mut h = TimerHeap::default();
        h.push(1.0, t(0));
        h.push(1.0, t(1));
        assert_eq!(h.iter().count(), 2);
        assert_eq!(h.take_all().len(), 2);
        assert!(h.is_empty());
    }

    #[test]
    fn a_burst_gives_its_memory_back() {
        let mut h = TimerHeap::default();
        for i in 0..100_000u32 {
            h.push(f64::from(i), t(i));
        }
        assert!(h.capacity() >= 100_000);
        // fire all but the last 10, in the pop-by-pop and the bulk path
        let got = drain(&mut h, 99_990.0);
        assert_eq!(got, (0..99_990).collect::<Vec<_>>());
        assert_eq!(h.len(), 10);
        assert!(
            h.capacity() < 4 * KEEP_CAPACITY,
            "capacity {}",
            h.capacity()
        );
        assert_eq!(
            drain(&mut h, f64::INFINITY),
            (99_990..100_000).collect::<Vec<_>>()
        );
        // a few timers fired one by one from a large heap: it shrinks as it empties
        let mut h = TimerHeap::default();
        for i in 0..10_000u32 {
            h.push(f64::from(i), t(i));
        }
        for limit in 1..=9_990u32 {
            drain(&mut h, f64::from(limit));
        }
        assert_eq!(h.len(), 10);
        assert!(
            h.capacity() < 4 * KEEP_CAPACITY,
            "capacity {}",
            h.capacity()
        );
    }
}
