"""Signal handlers: ``add_signal_handler``/``remove_signal_handler`` for both loops.

A handler runs as a loop callback: the Python-level signal handler (``_on_signal``) queues
it with ``call_soon_threadsafe``, which wakes the loop wherever it waits (asyncio's own
``_handle_signal`` does the bookkeeping).

SIGINT is special inside Trio, which has its own handler (it raises KeyboardInterrupt in
the run's main task): a loop's SIGINT handler replaces Trio's while it is installed.
Removing it inside the loop's Trio run puts back the handler found when it was added there;
elsewhere it installs Python's ``default_int_handler``.

The sync loop (:class:`FiberSignalsMixin`) runs on two sides of one thread, its caller's
stack and its fiber, and swaps the SIGINT handler and the signal wake-up fd around every
switch (``_thread_state``). A handler added on either side must be in effect on both until
it is removed, and a signal must wake the loop wherever it waits: see ``_signal_wakeup``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from asyncio import coroutines, events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple, Unpack

from ._mixins import LoopMixin
from ._signal_wakeup import SignalWakeup
from ._thread_state import _UNSET
from ._trio_run import in_trio_run_of

if TYPE_CHECKING:
    from ._thread_state import ThreadStateSlot

Ts = TypeVarTuple("Ts")


def _run_py_handle(handle: asyncio.Handle) -> None:
    if not handle._cancelled:
        handle._run()


# The instance attributes of SignalsMixin and FiberSignalsMixin, declared as slots by
# BaseTrioEventLoop and SyncTrioEventLoop (see design/loops.md, "Instance state").
SIGNAL_SLOTS = ("_sigint_restore",)
FIBER_SIGNAL_SLOTS = ("_signal_wakeup",)


class SignalsMixin(LoopMixin):
    """``add_signal_handler``/``remove_signal_handler`` of every trio-asyncio loop."""

    # The handler SIGINT had inside Trio before add_signal_handler(SIGINT) replaced it.
    _sigint_restore: Any
    if TYPE_CHECKING:
        _trio_runner: object

    def _init_signals(self) -> None:
        self._signal_handlers = {}
        self._sigint_restore = None

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: Unpack[Ts]
    ) -> None:
        """Run ``callback(*args)`` as a loop callback whenever signal *sig* arrives.

        :raises TypeError: for a coroutine (function) callback.
        :raises ValueError: for an invalid or uncatchable signal number.
        :raises RuntimeError: outside the main thread, or if the loop is closed.
        """
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        handle = events.Handle(callback, args, self, None)
        if sig == signal.SIGINT and sig not in self._signal_handlers:
            # Inside Trio, SIGINT has Trio's handler: removal puts it back.
            self._sigint_restore = (
                signal.getsignal(sig) if in_trio_run_of(self._trio_runner) else None
            )
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, self._on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if exc.errno == 22:  # EINVAL
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def _on_signal(self, signum: int, frame: object) -> None:
        self._handle_signal(signum)

    def _add_callback_signalsafe(self, handle: asyncio.Handle) -> None:
        self.call_soon_threadsafe(_run_py_handle, handle)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for *sig*; return whether there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler: Any = signal.SIG_DFL
        if sig == signal.SIGINT:
            restore, self._sigint_restore = self._sigint_restore, None
            inside = restore is not None and in_trio_run_of(self._trio_runner)
            handler = restore if inside else signal.default_int_handler
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == 22:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        return True

    def _remove_signal_handlers(self) -> None:
        """At close: remove every handler the loop installed."""
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)


class FiberSignalsMixin(SignalsMixin):
    """The sync loop's signal handling, across its caller's side and its fiber's.

    SIGINT is the one signal whose handler differs between the caller and the fiber
    (Trio's KeyboardInterrupt handler), and is swapped around every switch. A SIGINT
    handler added with ``add_signal_handler`` must be in effect on both sides until it is
    removed, as with a stock loop; its removal gives the fiber side its own one back.
    """

    # Created at the first add_signal_handler (see _signal_wakeup), kept until close().
    _signal_wakeup: SignalWakeup | None
    if TYPE_CHECKING:
        # SyncTrioEventLoop's: the fiber side's saved thread state, and the caller's while
        # the fiber runs (None on the caller's side).
        _fiber_state: ThreadStateSlot
        _caller_state: ThreadStateSlot | None

    def _init_signals(self) -> None:
        super()._init_signals()
        self._signal_wakeup = None

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: Unpack[Ts]
    ) -> None:
        fiber_side = self._caller_state is not None
        first = sig not in self._signal_handlers
        super().add_signal_handler(sig, callback, *args)
        if sig == signal.SIGINT and first and not fiber_side:
            # the fiber side's own handler (see SignalsMixin.remove_signal_handler)
            own = self._fiber_state.sigint
            self._sigint_restore = None if own is _UNSET else own
        self._arm_signal_wakeup()
        if sig != signal.SIGINT:
            return
        other = self._caller_state if fiber_side else self._fiber_state
        assert other is not None
        other.sigint = signal.getsignal(sig)

    def remove_signal_handler(self, sig: int) -> bool:
        fiber_own = self._sigint_restore
        removed = super().remove_signal_handler(sig)
        if removed and not self._signal_handlers:
            self._disarm_signal_wakeup()
        if removed and sig == signal.SIGINT:
            if self._caller_state is not None:  # on the fiber side
                self._caller_state.sigint = signal.default_int_handler
            else:
                self._fiber_state.sigint = _UNSET if fiber_own is None else fiber_own
        return removed

    def _arm_signal_wakeup(self) -> None:
        """Point the caller side's wake-up fd at this loop (see ``_signal_wakeup``)."""
        wakeup = self._signal_wakeup
        if wakeup is None:
            wakeup = self._signal_wakeup = SignalWakeup()
            self._add_reader(wakeup.read_fd, wakeup.drain)
        caller = self._caller_state
        if caller is None:
            wakeup.arm()
        else:  # on the fiber side, where Trio's own wake-up fd is installed
            caller.wakeup_fd = wakeup.write_fd

    def _disarm_signal_wakeup(self) -> None:
        wakeup = self._signal_wakeup
        if wakeup is None:
            return
        caller = self._caller_state
        if caller is None:
            wakeup.disarm()
        elif caller.wakeup_fd == wakeup.write_fd:
            caller.wakeup_fd = -1

    def _close_core_side(self) -> None:
        try:
            super()._close_core_side()  # removes the signal handlers (and so disarms)
        finally:
            wakeup, self._signal_wakeup = self._signal_wakeup, None
            if wakeup is not None:
                wakeup.close()

    def _renew_signal_wakeup_after_fork(self) -> None:
        # The socket pair is the parent's too: draining it here would eat its wake-ups.
        old = self._signal_wakeup
        if old is None or self.is_closed():
            return
        self._remove_reader(old.read_fd)
        old.close()
        self._signal_wakeup = None
        if not self._signal_handlers:
            return
        try:
            self._arm_signal_wakeup()
        except ValueError:
            pass  # forked from a thread other than the main one: no wake-up fd there


__all__ = ["FiberSignalsMixin", "SignalsMixin"]
