//! Platform backends for the reactor: one readiness poller and one cross-thread waker.
//!
//! Contract every backend provides (the reactor uses nothing else):
//!
//! | item | meaning |
//! |---|---|
//! | `Poller::new()` | a new, empty, level-triggered poller |
//! | `Poller::raw_fd()` | `Some(fd)` if the poller is itself a pollable fd (readable while any registered fd is ready), else `None` |
//! | `Poller::set_interest(fd, old, new)` | change the registration of `fd` from `old` to `new` (`Interest::NONE` = absent); adding an fd the kernel refuses is an error, removing one the kernel already forgot is not |
//! | `Poller::wait(events, timeout)` | fill `events` with ready fds; `timeout = Some(ZERO)` never blocks |
//! | `Waker::new()` / `wake()` / `drain()` / `raw_fd()` | a non-blocking fd that becomes readable on `wake()` until `drain()` |
//!
//! Backends are chosen in one `cfg` chain: epoll (Linux, Android), kqueue (macOS and the
//! BSDs), `poll(2)` everywhere else on Unix. The `poll(2)` backend is compiled on every Unix
//! so its unit tests run on Linux too. Wakers: eventfd on Linux/Android, a self-pipe
//! elsewhere.

use std::io;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod eventfd;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
mod kqueue;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod pipe;
pub(crate) mod poll;

#[cfg(not(unix))]
compile_error!("trio_asyncio._engine's reactor supports Unix only (epoll, kqueue, poll)");

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use epoll::Poller;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use eventfd::Waker;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub(crate) use kqueue::Poller;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use pipe::Waker;
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))
))]
pub(crate) use poll::Poller;

/// Which directions an fd is registered for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl Interest {
    pub(crate) const NONE: Interest = Interest {
        read: false,
        write: false,
    };

    pub(crate) fn is_none(self) -> bool {
        !self.read && !self.write
    }
}

/// One ready fd, already masked the way asyncio's selectors mask it: an error or hang-up
/// makes the fd both readable and writable, and the reactor keeps only the directions
/// that are registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) fd: i32,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// Convert a libc return value to `io::Result`, reading `errno` on -1.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A timeout in whole milliseconds for `epoll_wait`/`poll`, rounded up so a 0.4 ms wait
/// does not become a busy loop; `None` blocks forever (-1).
pub(crate) fn timeout_ms(timeout: Option<std::time::Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}
