//! `WriteBuffer`: the bytes a transport accepted but the socket has not taken yet.
//!
//! One contiguous `Vec<u8>` with a read offset, so the whole backlog goes to the kernel in one
//! `send`. Why not a `VecDeque<Vec<u8>>` of chunks: a deque needs `sendmsg` with an iovec
//! array to send more than one chunk per call, and the common case (a short tail left over by
//! one partial send) is one chunk anyway. The consumed prefix is dropped lazily: when it is
//! at least half of the storage, the rest is moved to the front (amortised O(1) per byte).

#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    data: Vec<u8>,
    head: usize,
}

impl WriteBuffer {
    /// Bytes waiting to be sent.
    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The waiting bytes, oldest first.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data[self.head..]
    }

    /// Append `bytes` after the waiting ones.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.is_empty() {
            self.data.clear();
            self.head = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    /// Forget the first `n` waiting bytes (they were sent). `n` is capped at `len()`.
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.data.len() {
            self.data.clear();
            self.head = 0;
        } else if self.head >= self.data.len() / 2 {
            self.data.drain(..self.head);
            self.head = 0;
        }
    }

    /// Drop everything waiting and release the storage.
    pub(crate) fn clear(&mut self) {
        self.data = Vec::new();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::WriteBuffer;

    #[test]
    fn extend_consume_keeps_order() {
        let mut b = WriteBuffer::default();
        assert!(b.is_empty());
        b.extend(b"hello ");
        b.extend(b"world");
        assert_eq!(b.len(), 11);
        b.consume(3);
        assert_eq!(b.as_slice(), b"lo world");
        b.consume(2);
        assert_eq!(b.as_slice(), b" world");
        b.extend(b"!");
        assert_eq!(b.as_slice(), b" world!");
        b.consume(100);
        assert!(b.is_empty());
        assert_eq!(b.as_slice(), b"");
    }

    #[test]
    fn compaction_moves_tail_to_front() {
        let mut b = WriteBuffer::default();
        b.extend(&[1, 2, 3, 4, 5, 6]);
        b.consume(4);
        assert_eq!(b.head, 0, "consumed prefix of half or more is dropped");
        assert_eq!(b.as_slice(), &[5, 6]);
        b.consume(1);
        assert_eq!(b.as_slice(), &[6]);
    }

    #[test]
    fn clear_releases_storage() {
        let mut b = WriteBuffer::default();
        b.extend(&[0; 1024]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.data.capacity(), 0);
    }
}
