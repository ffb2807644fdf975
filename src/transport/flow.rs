//! Write flow control: the high/low water marks and whether the protocol is paused.
//!
//! The transport reports every change of its buffered size; [`FlowControl`] answers whether
//! to call the protocol's `pause_writing()` (size went above `high`) or `resume_writing()`
//! (size fell to `low` or below), each exactly once per crossing, as asyncio's
//! `_FlowControlMixin` does.

use super::TransportError;

/// asyncio's default high-water mark when neither limit is given.
pub(crate) const DEFAULT_HIGH: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct FlowControl {
    high: usize,
    low: usize,
    paused: bool,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            high: DEFAULT_HIGH,
            low: DEFAULT_HIGH / 4,
            paused: false,
        }
    }
}

impl FlowControl {
    /// Set the limits as `set_write_buffer_limits(high, low)` does: a missing `high` is
    /// `4 * low` (or 64 KiB without either), a missing `low` is `high // 4`.
    pub(crate) fn set_limits(
        &mut self,
        high: Option<i128>,
        low: Option<i128>,
    ) -> Result<(), TransportError> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, Some(l)) => l.saturating_mul(4),
            (None, None) => DEFAULT_HIGH as i128,
        };
        let low = low.unwrap_or_else(|| high.div_euclid(4));
        if !(high >= low && low >= 0) {
            return Err(TransportError::BadLimits { high, low });
        }
        self.high = usize::try_from(high).unwrap_or(usize::MAX);
        self.low = usize::try_from(low).unwrap_or(usize::MAX);
        Ok(())
    }

    /// `(low, high)`, as `get_write_buffer_limits()` returns them.
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.low, self.high)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// The buffer now holds `size` bytes: `true` if the protocol must be paused now.
    pub(crate) fn should_pause(&mut self, size: usize) -> bool {
        if size <= self.high || self.paused {
            return false;
        }
        self.paused = true;
        true
    }

    /// The buffer now holds `size` bytes: `true` if the protocol must be resumed now.
    pub(crate) fn should_resume(&mut self, size: usize) -> bool {
        if self.paused && size <= self.low {
            self.paused = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_asyncio() {
        let f = FlowControl::default();
        assert_eq!(f.limits(), (16384, 65536));
        let mut f = FlowControl::default();
        f.set_limits(None, Some(100)).unwrap();
        assert_eq!(f.limits(), (100, 400));
        f.set_limits(Some(10), None).unwrap();
        assert_eq!(f.limits(), (2, 10));
        f.set_limits(Some(0), None).unwrap();
        assert_eq!(f.limits(), (0, 0));
    }

    #[test]
    fn bad_limits_are_rejected_with_asyncio_message() {
        let mut f = FlowControl::default();
        let e = f.set_limits(Some(1), Some(2)).unwrap_err();
        assert_eq!(e.to_string(), "high (1) must be >= low (2) must be >= 0");
        let e = f.set_limits(Some(-1), None).unwrap_err();
        assert_eq!(e.to_string(), "high (-1) must be >= low (-1) must be >= 0");
        assert_eq!(
            f.limits(),
            (16384, 65536),
            "limits unchanged after an error"
        );
    }

    #[test]
    fn pause_and_resume_once_per_crossing() {
        let mut f = FlowControl::default();
        f.set_limits(Some(10), Some(5)).unwrap();
        assert!(!f.should_pause(10));
        assert!(f.should_pause(11));
        assert!(!f.should_pause(20), "already paused");
        assert!(!f.should_resume(6));
        assert!(f.should_resume(5));
        assert!(!f.should_resume(0), "already resumed");
        assert!(!f.is_paused());
    }
}
