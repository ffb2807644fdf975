"""The signal wake-up fd of a sync loop that waits on its caller's side.

CPython runs a Python signal handler only between bytecodes of the main thread. A signal
that arrives after the loop's last Python-level check and before it blocks in its poller
(while Rust code prepares the sleep, say) does not interrupt that wait: its handler
would wait for the next wake-up, which may never come (a ``SIGCHLD`` for the child the loop
waits for). ``signal.set_wakeup_fd`` closes that window: the C-level handler also writes
the signal number to a file descriptor, which the loop polls.

Stock asyncio points the wake-up fd at its self-pipe from the first ``add_signal_handler``
until the last handler is removed. A sync loop does the same with a socket pair of its own
(the Rust core's waker is an eventfd, which cannot take single bytes); the Trio side of the
loop needs none, as ``trio.run`` installs its own wake-up fd for the fiber.
"""

from __future__ import annotations

import signal
import socket


class SignalWakeup:
    """A non-blocking socket pair: the write end is for ``signal.set_wakeup_fd``."""

    __slots__ = ("_reader", "_writer")

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    @property
    def read_fd(self) -> int:
        """The fd the loop polls (register :meth:`drain` as its reader)."""
        return self._reader.fileno()

    @property
    def write_fd(self) -> int:
        return self._writer.fileno()

    def drain(self) -> None:
        """Empty the read end. The signals' Python handlers run on their own, at the
        interpreter's next check, now that the loop is awake."""
        while True:
            try:
                if not self._reader.recv(4096):
                    return
            except (BlockingIOError, InterruptedError):
                return

    def arm(self) -> None:
        """Make this the thread's wake-up fd (main thread only, as ``add_signal_handler``)."""
        signal.set_wakeup_fd(self.write_fd)

    def disarm(self) -> None:
        """Unset the wake-up fd if it is still this one; leave anyone else's in place."""
        previous = signal.set_wakeup_fd(-1)
        if previous not in (-1, self.write_fd):
            signal.set_wakeup_fd(previous)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
