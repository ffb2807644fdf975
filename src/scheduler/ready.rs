//! The ready FIFO: callbacks that run in the next (or current) loop iteration.
//!
//! asyncio's rule (`BaseEventLoop._run_once`): an iteration runs exactly the callbacks that
//! were queued when it started running callbacks; callbacks those add run in the next
//! iteration, after the next I/O poll. [`ReadyQueue::begin_batch`] returns that count; the
//! driver pops exactly that many, one at a time, so a callback that raises
//! `KeyboardInterrupt` leaves the rest of the batch queued in order.

use std::collections::VecDeque;

/// Capacity (callbacks) the queue keeps whatever it held: below it, memory is not given back.
const KEEP_CAPACITY: usize = 1024;

pub(crate) struct ReadyQueue<T> {
    items: VecDeque<T>,
}

impl<T> Default for ReadyQueue<T> {
    fn default() -> Self {
        ReadyQueue {
            items: VecDeque::new(),
        }
    }
}

impl<T> ReadyQueue<T> {
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// How many callbacks the iteration that starts now must run.
    ///
    /// Also gives memory back after a burst: once the queue holds less than a quarter of
    /// its capacity (above [`KEEP_CAPACITY`]), the capacity is halved to twice its length,
    /// so a loop that once queued a million callbacks does not keep their slots forever.
    /// Each shrink copies at most a quarter of what the queue once held, and the next one
    /// needs the length to halve again: amortised O(1) per callback.
    #[inline]
    pub(crate) fn begin_batch(&mut self) -> usize {
        let len = self.items.len();
        if self.items.capacity() > KEEP_CAPACITY && len * 4 < self.items.capacity() {
            self.items.shrink_to((len * 2).max(KEEP_CAPACITY));
        }
        len
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Remove everything (to be dropped by the caller, outside any borrow).
    pub(crate) fn take_all(&mut self) -> VecDeque<T> {
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_batches() {
        let mut q = ReadyQueue::default();
        q.push(1);
        q.push(2);
        let n = q.begin_batch();
        assert_eq!(n, 2);
        let mut ran = vec![];
        for _ in 0..n {
            let x = q.pop().unwrap();
            ran.push(x);
            q.push(x + 10); // queued during the batch: runs next batch
        }
        assert_eq!(ran, [1, 2]);
        assert_eq!(q.len(), 2);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [11, 12]);
        q.push(20);
        assert_eq!(q.take_all(), [11, 12, 20]);
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn interrupted_batch_keeps_the_rest_in_order() {
        let mut q = ReadyQueue::default();
        for i in 0..5 {
            q.push(i);
        }
        let n = q.begin_batch();
        for _ in 0..n {
            if q.pop() == Some(1) {
                break; // e.g. KeyboardInterrupt
            }
        }
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn a_burst_gives_its_memory_back() {
        let mut q = ReadyQueue::default();
        for i in 0..100_000 {
            q.push(i);
        }
        assert!(q.capacity() >= 100_000);
        let n = q.begin_batch();
        for _ in 0..n - 10 {
            q.pop();
        }
        // the next iteration starts with 10 callbacks left: the queue shrinks
        assert_eq!(q.begin_batch(), 10);
        assert!(
            q.capacity() < 4 * KEEP_CAPACITY,
            "capacity {}",
            q.capacity()
        );
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            (99_990..100_000).collect::<Vec<_>>()
        );
        // a small queue keeps its capacity
        let mut small = ReadyQueue::default();
        for i in 0..500 {
            small.push(i);
        }
        let cap = small.capacity();
        while small.pop().is_some() {}
        small.begin_batch();
        assert_eq!(small.capacity(), cap);
    }
}
