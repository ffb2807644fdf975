//! The native clock: the one `time.monotonic()` and Trio's `SystemClock` read.
//!
//! CPython 3.11 reads `CLOCK_MONOTONIC` on Linux and `mach_absolute_time()` on macOS (the
//! same clock as `CLOCK_UPTIME_RAW`), for both `time.monotonic()` and
//! `time.perf_counter()`; Trio's `SystemClock` is `perf_counter() + offset`. So "native
//! clock plus an offset" reproduces the hosting Trio run's clock without calling Python.
//! `clock_gettime` is served by the vDSO on Linux (no system call).

#[cfg(any(target_os = "macos", target_os = "ios"))]
const CLOCK: libc::clockid_t = libc::CLOCK_UPTIME_RAW;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// Seconds on the monotonic clock, as `time.monotonic()` returns them.
#[inline]
pub(crate) fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; CLOCK is supported on every target we build for,
    // so the call cannot fail (and `ts` stays zero if it somehow did).
    unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A cheap clock for time budgets, in seconds (any epoch). On Linux this is
/// `CLOCK_MONOTONIC_COARSE` (the last timer tick, ~1-4 ms resolution, read from the vDSO
/// without `rdtsc`: a few ns instead of ~30 ns here); elsewhere the precise clock.
#[inline]
pub(crate) fn coarse() -> f64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const COARSE: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const COARSE: libc::clockid_t = CLOCK;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; COARSE is supported on every target we build for.
    unsafe { libc::clock_gettime(COARSE, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The clock's resolution in seconds (asyncio's `_clock_resolution` default).
pub(crate) fn resolution() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec.
    let r = unsafe { libc::clock_getres(CLOCK, &mut ts) };
    if r != 0 {
        return 1e-9;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    #[test]
    fn monotonic_is_monotonic_and_resolution_is_small() {
        let a = super::monotonic();
        let b = super::monotonic();
        assert!(b >= a);
        let r = super::resolution();
        assert!(r > 0.0 && r < 0.1);
    }
}
