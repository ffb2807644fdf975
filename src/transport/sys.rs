//! The non-blocking socket calls a stream transport makes, on a raw fd.
//!
//! The transport owns no fd: the Python socket object does, and it is closed only through
//! that object, after the transport stopped using the fd (connection lost).

use std::io;
use std::os::fd::RawFd;

/// What a non-blocking call did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// This many bytes moved (0 from `recv` is end of file).
    Done(usize),
    /// The socket is not ready (`EAGAIN`/`EWOULDBLOCK`) or the call was interrupted.
    WouldBlock,
}

fn outcome(ret: isize) -> io::Result<Outcome> {
    if ret >= 0 {
        return Ok(Outcome::Done(ret as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Outcome::WouldBlock),
        _ => Err(err),
    }
}

/// `send(fd, buf, MSG_NOSIGNAL)`: a closed peer is `EPIPE`, never `SIGPIPE`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<Outcome> {
    // SAFETY: `buf` is a live slice for the duration of the call and the kernel only reads
    // `buf.len()` bytes from it; a bad fd is reported as EBADF, not undefined behaviour.
    let ret = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    outcome(ret)
}

/// `recv(fd, buf, 0)` into `buf`.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Outcome> {
    // SAFETY: `buf` is a live, exclusively borrowed slice; the kernel writes at most
    // `buf.len()` bytes into it.
    let ret = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    outcome(ret)
}

/// `recv` into memory the caller vouches for (a Python buffer).
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the duration of the call, and nothing
/// else may read or write that memory during it.
pub(crate) unsafe fn recv_raw(fd: RawFd, ptr: *mut u8, len: usize) -> io::Result<Outcome> {
    // SAFETY: the caller guarantees `ptr..ptr+len` is writable and unaliased.
    let ret = unsafe { libc::recv(fd, ptr.cast(), len, 0) };
    outcome(ret)
}

/// `shutdown(fd, SHUT_WR)`: send end of file.
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on an integer fd; no memory is passed.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn send_recv_eof_wouldblock() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), Outcome::WouldBlock);
        assert_eq!(send(a.as_raw_fd(), b"abc").unwrap(), Outcome::Done(3));
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), Outcome::Done(3));
        assert_eq!(&buf[..3], b"abc");
        shutdown_write(a.as_raw_fd()).unwrap();
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), Outcome::Done(0));
    }

    #[test]
    fn send_to_closed_peer_is_epipe_not_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = send(a.as_raw_fd(), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }

    #[test]
    fn bad_fd_is_an_error() {
        let err = shutdown_write(-1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
