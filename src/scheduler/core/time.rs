//! Loop time: the native monotonic clock plus an offset (Trio's `SystemClock`), or an
//! external clock set by the binding (Trio's `MockClock`).

use super::super::binding::Binding;
use super::super::clock;
use super::Core;

impl<B: Binding> Core<B> {
    /// The loop's time.
    pub(crate) fn now(&self, t: B::Token<'_>) -> Result<f64, B::Error> {
        let f = self.state.with(t, |s| match &s.clock_fn {
            None => Err(s.clock_offset),
            Some(f) => Ok(B::clone_clock(t, f)),
        });
        match f {
            Err(offset) => Ok(clock::monotonic() + offset),
            Ok(f) => B::read_clock(t, f),
        }
    }

    /// Use the native monotonic clock plus `offset`.
    pub(crate) fn set_clock_offset(&self, t: B::Token<'_>, offset: f64) {
        let old = self.state.with(t, |s| {
            s.clock_offset = offset;
            s.clock_fn.take()
        });
        drop(old);
    }

    /// Use `clock` as the clock.
    pub(crate) fn set_clock(&self, t: B::Token<'_>, clock: B::Clock) {
        let old = self.state.with(t, |s| s.clock_fn.replace(clock));
        drop(old);
    }

    pub(crate) fn clock_resolution(&self, t: B::Token<'_>) -> f64 {
        self.state.with(t, |s| s.clock_resolution)
    }

    pub(crate) fn set_clock_resolution(&self, t: B::Token<'_>, value: f64) {
        self.state.with(t, |s| s.clock_resolution = value);
    }
}
