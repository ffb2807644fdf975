"""``SyncTrioEventLoop``: a restartable asyncio loop whose Trio run lives in a fiber.

``trio.run`` runs inside a fiber (a stackful coroutine, see ``_fiber``). The run's main
task drives the loop's callbacks with the same Rust scheduler as the async loop. When the
loop stops, the main task suspends the whole fiber back to the caller of
``run_forever``/``run_until_complete``, mid-task; the next ``run_*`` call resumes it.
Between runs Trio is frozen and invisible (``_thread_state``), and everything asyncio can
do to a stopped loop (``call_soon``, ``call_later``, ``create_task``, ``add_reader``, ...)
goes straight into the Rust core without touching the fiber.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from asyncio import events
from typing import Any

import outcome
import trio

from ._base import BaseTrioEventLoop, _GLOBAL_RUN_CONTEXT
from ._context import current_loop
from ._fiber import Fiber, current as current_fiber, suspend
from ._thread_state import ThreadStateSlot, switch_into, switch_out_of

#: The name of the Trio task that drives a sync loop (policy code recognises it).
SYNC_LOOP_TASK_NAME = "trio_asyncio sync loop task"

# Requests the caller sends into the fiber.
_RUN = "run"
_CLOSE = "close"


class _MonotonicClock(trio.abc.Clock):
    """Trio clock reading ``time.monotonic()``, so ``loop.time()`` matches stock asyncio."""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.monotonic()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()


class SyncTrioEventLoop(BaseTrioEventLoop):
    """The loop :func:`asyncio.new_event_loop` returns outside Trio once trio_asyncio is
    imported: start and stop it any number of times, exactly as a stock asyncio loop.

    Trio code can run on it too (:meth:`trio_as_future`, :func:`trio_as_aio`): those Trio
    tasks make progress while the loop runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._set_clock_offset(0.0)
        self._fiber: Fiber | None = None
        self._fiber_state = ThreadStateSlot()

    # ------------------------------------------------------------------
    # Caller side
    # ------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run callbacks until :meth:`stop` is called.

        :raises RuntimeError: if the loop is closed or already running, or another loop
            is running in this thread.
        """
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        try:
            self._set_owner_thread()
            events._set_running_loop(self)
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            self._running = True
            if self._fiber is None:
                self._start_fiber()
            result = self._switch(_RUN)
            result.unwrap()
        finally:
            self._running = False
            self._clear_stopping()
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def _start_fiber(self) -> None:
        fiber = Fiber(self._fiber_main)
        self._fiber = fiber
        ready = self._switch(None)
        if ready != "ready":  # pragma: no cover  (trio.run failed to start)
            self._fiber = None
            raise RuntimeError(f"the loop's Trio run could not start: {ready!r}")

    def _switch(self, request: Any) -> Any:
        fiber = self._fiber
        assert fiber is not None
        caller = switch_into(self._fiber_state)
        try:
            return fiber.switch(request)
        finally:
            switch_out_of(self._fiber_state, caller)

    def _close_trio_side(self) -> None:
        fiber = self._fiber
        if fiber is None:
            return
        self._fiber = None
        if fiber.dead or sys.is_finalizing():
            return  # at interpreter exit the suspended run is simply abandoned
        if current_fiber() is fiber:
            raise RuntimeError("You can't close a sync loop from the inside")
        self._fiber = fiber
        try:
            self._switch(_CLOSE)
        finally:
            self._fiber = None

    def __enter__(self) -> SyncTrioEventLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    # ------------------------------------------------------------------
    # Fiber side
    # ------------------------------------------------------------------

    def _fiber_main(self) -> None:
        trio.run(self._trio_main, clock=_MonotonicClock())

    async def _trio_main(self) -> None:
        task = trio.lowlevel.current_task()
        task.name = SYNC_LOOP_TASK_NAME
        current_loop.set(self)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._trio_runner = _GLOBAL_RUN_CONTEXT.runner
            self._trio_token = trio.lowlevel.current_trio_token()
            try:
                request = suspend("ready")
                while request == _RUN:
                    self._stopped_event = trio.Event()
                    try:
                        result = await outcome.acapture(self._drive, False)
                    finally:
                        self._stopped_event.set()
                    if isinstance(result, outcome.Error) and isinstance(
                        result.error, trio.Cancelled
                    ):
                        error = RuntimeError("the sync loop's Trio run was cancelled")
                        error.__cause__ = result.error
                        result = outcome.Error(error)
                    request = suspend(result)
            finally:
                self._nursery = None
                self._trio_runner = None
                self._trio_token = None
                nursery.cancel_scope.cancel()


__all__ = ["SyncTrioEventLoop", "SYNC_LOOP_TASK_NAME"]
