"""The per-thread state a sync loop's fiber must not share with its caller.

Trio keeps its current run in a thread-local, installs a SIGINT handler, a signal wake-up
fd and async-generator hooks for the thread, and sniffio keeps the current library in a
thread-local. A fiber shares the thread with its caller, so around every switch the sync
loop moves these in and out: while its fiber is suspended, the caller sees no Trio run
(``trio.run``, pytest-trio and other sync loops work) and its own handlers.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import trio
from sniffio import thread_local as _sniffio_thread_local

_RUN_CONTEXT = trio._core._run.GLOBAL_RUN_CONTEXT  # private: see design/loops.md
_UNSET: Any = object()


class ThreadStateSlot:
    """One side's copy of the swapped thread state.

    A new slot starts as "no Trio run, no wake-up fd, inherit the caller's hooks and
    SIGINT handler" (what a fresh thread would see).
    """

    __slots__ = ("run_context", "sniffio_name", "asyncgen_hooks", "sigint", "wakeup_fd")

    def __init__(self) -> None:
        self.run_context: dict[str, Any] = {}
        self.sniffio_name: str | None = None
        self.asyncgen_hooks: Any = _UNSET
        self.sigint: Any = _UNSET
        self.wakeup_fd = -1

    def capture(self) -> None:
        """Save the thread's current state into this slot (and clear the run context)."""
        ctx = _RUN_CONTEXT.__dict__
        self.run_context = ctx.copy()
        ctx.clear()
        self.sniffio_name = _sniffio_thread_local.name
        self.asyncgen_hooks = sys.get_asyncgen_hooks()
        if threading.current_thread() is threading.main_thread():
            self.sigint = signal.getsignal(signal.SIGINT)
            self.wakeup_fd = signal.set_wakeup_fd(-1)

    def install(self, fiber_side: bool) -> None:
        """Make this slot's state the thread's (the run context must be clear)."""
        if self.run_context:
            _RUN_CONTEXT.__dict__.update(self.run_context)
        _sniffio_thread_local.name = self.sniffio_name
        if self.asyncgen_hooks is not _UNSET:
            sys.set_asyncgen_hooks(*self.asyncgen_hooks)
        if threading.current_thread() is threading.main_thread():
            if self.sigint is not _UNSET and signal.getsignal(signal.SIGINT) is not self.sigint:
                signal.signal(signal.SIGINT, self.sigint)
            if self.wakeup_fd != -1:
                try:
                    signal.set_wakeup_fd(self.wakeup_fd, warn_on_full_buffer=not fiber_side)
                except (ValueError, OSError):
                    pass  # the fd went away while suspended; Trio recreates nothing here


def switch_into(fiber_state: ThreadStateSlot) -> ThreadStateSlot:
    """Save the caller's state and install the fiber's; return the caller's slot."""
    caller = ThreadStateSlot()
    caller.capture()
    fiber_state.install(fiber_side=True)
    return caller


def switch_out_of(fiber_state: ThreadStateSlot, caller: ThreadStateSlot) -> None:
    """Save the fiber's state and reinstall the caller's.

    A handler or hook the fiber side did not change is not remembered as the fiber's own:
    next time the fiber inherits whatever its caller has then (e.g. ``asyncio.Runner``'s
    SIGINT handler, which is only installed for one run).
    """
    fiber_state.capture()
    if fiber_state.sigint is caller.sigint:
        fiber_state.sigint = _UNSET
    if fiber_state.asyncgen_hooks == caller.asyncgen_hooks:
        fiber_state.asyncgen_hooks = _UNSET
    caller.install(fiber_side=False)
