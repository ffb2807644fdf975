//! Portable waker: a non-blocking self-pipe (macOS has no `pipe2`, so flags are set with
//! `fcntl` right after `pipe`; the extension does not fork between the two calls).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

pub(crate) struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

fn set_nonblock_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own; the results are checked.
    unsafe {
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK))?;
        let fdfl = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        cvt(libc::fcntl(fd, libc::F_SETFD, fdfl | libc::FD_CLOEXEC))?;
    }
    Ok(())
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two fds pipe writes.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        // SAFETY: both fds were just returned by pipe and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_nonblock_cloexec(read.as_raw_fd())?;
        set_nonblock_cloexec(write.as_raw_fd())?;
        Ok(Waker { read, write })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Make the read end readable. A full pipe (EAGAIN) is already readable.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let b = 1u8;
        // SAFETY: writes one byte from a live u8 to the open write end.
        let r = unsafe { libc::write(self.write.as_raw_fd(), (&b as *const u8).cast(), 1) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Empty the pipe so the read end is no longer readable.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads at most 64 bytes into a live buffer from the open read end.
            let r =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
        }
    }
}
