"""The per-thread state a sync loop's fiber must not share with its caller.

Trio keeps its current run in a thread-local, installs a SIGINT handler, a signal wake-up
fd and async-generator hooks for the thread, and sniffio keeps the current library in a
thread-local. A fiber shares the thread with its caller, so around every switch the sync
loop moves these in and out: while its fiber is suspended, the caller sees no Trio run
(``trio.run``, pytest-trio and other sync loops work) and its own handlers.

This runs twice per ``run_until_complete``, so it uses the C ``_signal`` functions (the
``signal`` wrappers convert to enums, ~2 us a call) and touches a handler only when the two
sides differ.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import _signal  # type: ignore[import-not-found]
from sniffio import thread_local as _sniffio_thread_local

from ._trio_run import restore_run_context, take_run_context

_UNSET: Any = object()
_SIGINT = 2
_MAIN_THREAD_IDENT = threading.main_thread().ident
_get_ident = threading.get_ident
_get_hooks = sys.get_asyncgen_hooks
_set_hooks = sys.set_asyncgen_hooks
_getsignal = _signal.getsignal
_setsignal = _signal.signal
_set_wakeup_fd = _signal.set_wakeup_fd


class ThreadStateSlot:
    """One side's copy of the swapped thread state.

    A new slot starts as "no Trio run, no wake-up fd, inherit the caller's hooks and
    SIGINT handler" (what a fresh thread would see).
    """

    __slots__ = ("run_context", "sniffio_name", "asyncgen_hooks", "sigint", "wakeup_fd")

    def __init__(self) -> None:
        self.run_context: dict[str, Any] | None = None
        self.sniffio_name: str | None = None
        self.asyncgen_hooks: Any = _UNSET
        self.sigint: Any = _UNSET
        self.wakeup_fd = -1

    def capture(self) -> None:
        """Save the thread's current state into this slot (and clear the run context)."""
        self.run_context = take_run_context()
        self.sniffio_name = _sniffio_thread_local.name
        self.asyncgen_hooks = _get_hooks()
        if _get_ident() == _MAIN_THREAD_IDENT:
            self.sigint = _getsignal(_SIGINT)
            self.wakeup_fd = _set_wakeup_fd(-1)

    def install(self, fiber_side: bool) -> None:
        """Make this slot's state the thread's (the run context must be clear)."""
        restore_run_context(self.run_context)
        _sniffio_thread_local.name = self.sniffio_name
        if self.asyncgen_hooks is not _UNSET:
            _set_hooks(*self.asyncgen_hooks)
        if _get_ident() == _MAIN_THREAD_IDENT:
            if self.sigint is not _UNSET and _getsignal(_SIGINT) is not self.sigint:
                _setsignal(_SIGINT, self.sigint)
            if self.wakeup_fd != -1:
                try:
                    _set_wakeup_fd(self.wakeup_fd, warn_on_full_buffer=not fiber_side)
                except (ValueError, OSError):
                    pass  # the fd was closed while this side was away


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
