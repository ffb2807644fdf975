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
import atexit
import contextvars
import gc
import signal
import sys
import time
import types
import warnings
import weakref
from asyncio import base_events, events, futures
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack

import outcome
import trio

from . import _fork
from ._base import BaseTrioEventLoop
from ._context import current_loop
from ._engine import RUN_STOP
from ._fiber import Fiber, current as current_fiber, suspend
from ._signals import FIBER_SIGNAL_SLOTS, FiberSignalsMixin
from ._thread_state import ThreadStateSlot, switch_into, switch_out_of
from ._trio_run import current_runner, forget_run_context

Ts = TypeVarTuple("Ts")
T = TypeVar("T")
_set_asyncgen_hooks = sys.set_asyncgen_hooks

#: asyncio's done callback of run_until_complete's future: it stops the loop (unless the
#: future ended with SystemExit or KeyboardInterrupt, which end run_forever themselves).
_run_until_complete_cb = base_events._run_until_complete_cb  # type: ignore[attr-defined]

#: Fibers of sync loops whose Trio run was left on another thread (see _abandon_fiber).
_abandoned_fibers: list[Fiber] = []


@atexit.register
def _forget_abandoned_fibers() -> None:
    # Their loss was documented when they were abandoned; no warning per fiber at exit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _abandoned_fibers.clear()
        gc.collect()

#: The name of the Trio task that drives a sync loop (policy code recognises it).
SYNC_LOOP_TASK_NAME = "trio_asyncio sync loop task"

# Requests the caller sends into the fiber.
_RUN = "run"
_CLOSE = "close"


# The async-generator hooks a running sync loop shows its caller side. Trio saves the hooks
# it finds when the loop's trio.run starts and keeps them on the (suspended, GC-invisible)
# fiber stack, so these must not reference the loop; the driver installs the loop's own
# hooks around every batch of callbacks, which is where asyncio generators start.


def _firstiter_hook(agen: Any) -> None:
    loop = events._get_running_loop()
    if isinstance(loop, asyncio.BaseEventLoop):
        loop._asyncgen_firstiter_hook(agen)  # type: ignore[attr-defined]


def _finalizer_hook(agen: Any) -> None:
    loop = events._get_running_loop()
    if isinstance(loop, asyncio.BaseEventLoop):
        loop._asyncgen_finalizer_hook(agen)  # type: ignore[attr-defined]


class _MonotonicClock(trio.abc.Clock):
    """Trio clock reading ``time.monotonic()``, so ``loop.time()`` matches stock asyncio."""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.monotonic()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()


class SyncTrioEventLoop(FiberSignalsMixin, BaseTrioEventLoop):  # type: ignore[misc]
    """The loop :func:`asyncio.new_event_loop` returns outside Trio once trio_asyncio is
    imported: start and stop it any number of times, exactly as a stock asyncio loop.

    Trio code can run on it too (:meth:`trio_as_future`, :func:`trio_as_aio`): those Trio
    tasks make progress while the loop runs.
    """

    __slots__ = (*FIBER_SIGNAL_SLOTS, "_fiber", "_fiber_state", "_caller_state", "_run_outcome")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._set_clock_offset(0.0)
        # Like asyncio's _thread_id: a loop belongs to a thread only while it runs there.
        self._clear_owner_thread()
        self._fiber: Fiber | None = None
        self._fiber_state = ThreadStateSlot()
        # The caller's thread state while the fiber runs (set only during a switch).
        self._caller_state: ThreadStateSlot | None = None
        self._run_outcome: outcome.Outcome[None] | None = None

    # ------------------------------------------------------------------
    # Caller side
    # ------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run callbacks until :meth:`stop` is called.

        :raises RuntimeError: if the loop is closed or already running, or another loop
            is running in this thread.
        """
        self._check_closed()
        self._begin_run(True)  # RuntimeError if it is running already
        if events._get_running_loop() is not None:
            self._end_run(True)
            raise RuntimeError("Cannot run the event loop while another loop is running")
        if self._debug:
            self._set_coroutine_origin_tracking(True)
        try:
            # (Rust) this thread owns the loop (_thread_id), it is the running loop, and
            # its async-generator hooks are the thread's; _leave_caller_run undoes it all.
            self._enter_caller_run()
            fiber = self._fiber
            if fiber is not None and not fiber.owned_by_current_thread():
                self._abandon_fiber()
                fiber = None
            if fiber is None:
                # No Trio run yet: run and wait the way stock asyncio does, on the caller's
                # stack. The Trio run (in the fiber) starts only once Trio code must run
                # (trio_as_future, a TrioExecutor job, ...) and then hosts every later wait.
                if self._run_without_trio():
                    return
            else:
                # Fast path: callbacks that are ready run right here; only when the loop
                # must wait (or Trio tasks must run) does control go into the fiber.
                if not self._pending_trio_tasks and self._run_batch(False) == RUN_STOP:
                    return
            _set_asyncgen_hooks(_firstiter_hook, _finalizer_hook)
            if self._fiber is None:
                self._start_fiber()
            self._switch(_RUN)
            result, self._run_outcome = self._run_outcome, None
            if result is None:  # pragma: no cover
                raise RuntimeError("the sync loop's Trio run ended unexpectedly")
            result.unwrap()
        finally:
            self._end_run(True)
            try:
                self._leave_caller_run()
            finally:
                if self._coroutine_origin_tracking_enabled:
                    self._set_coroutine_origin_tracking(False)

    def run_until_complete(self, future: Awaitable[T] | Generator[Any, None, T]) -> T:
        """Run until *future* (a future, a coroutine or an awaitable) is done; return its
        result or raise its exception (asyncio's ``run_until_complete``).

        :raises RuntimeError: if the loop is closed or already running, another loop is
            running in this thread, or the loop was stopped before *future* was done.
        """
        # asyncio's BaseEventLoop.run_until_complete (the same in 3.11-3.13), except that a
        # coroutine becomes a task through create_task directly: what ensure_future does
        # for one (closing it if create_task raises RuntimeError), without its checks.
        self._check_closed()
        self._check_running()
        fut: Any
        if type(future) is types.CoroutineType:
            new_task = True
            try:
                fut = self.create_task(future)
            except RuntimeError:
                future.close()
                raise
        else:
            new_task = not futures.isfuture(future)
            fut = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]
        if new_task:
            # a task left pending by stop() is not logged as destroyed while pending
            fut._log_destroy_pending = False
        fut.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                fut.exception()  # mark it retrieved: the caller gets the error
            raise
        finally:
            fut.remove_done_callback(_run_until_complete_cb)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()  # type: ignore[no-any-return]

    def create_task(self, coro: Any, **kwargs: Any) -> Any:
        """Schedule a coroutine as a task (asyncio's ``create_task``).

        The task's context names this loop as :data:`current_loop` (unless it names one
        already), so ``current_loop.get()``, :func:`run_trio` and :func:`run_trio_task`
        find the loop in asyncio code, as they do under ``open_loop``.
        """
        # (keywords passed through as they are: name=, context=, and whatever the running
        # version's asyncio adds, such as eager_start= in typeshed's view of 3.13)
        if self._task_factory is not None:  # type: ignore[attr-defined]
            return super().create_task(coro, **kwargs)
        context = kwargs.get("context")
        if context is None:
            context = kwargs["context"] = contextvars.copy_context()
        if context.get(current_loop) is None:
            context.run(current_loop.set, self)
        if len(kwargs) > 2 or (len(kwargs) == 2 and "name" not in kwargs):
            return super().create_task(coro, **kwargs)  # asyncio's TypeError
        # BaseEventLoop.create_task without a task factory (the same in 3.11-3.13), minus
        # a method frame and the keyword re-packing.
        if self._closed:
            raise RuntimeError("Event loop is closed")
        task = asyncio.tasks.Task(coro, loop=self, name=kwargs.get("name"), context=context)
        source_traceback = task._source_traceback  # type: ignore[attr-defined]
        if source_traceback:  # (debug mode) not this frame
            del source_traceback[-1]
        return task

    def _run_without_trio(self) -> bool:
        """Run callbacks, blocking in the core's poller when idle (as stock asyncio blocks in
        its selector), until the loop stops (return True) or a Trio task must start (return
        False)."""
        while not self._pending_trio_tasks:
            if self._run_batch(False, wait=True) == RUN_STOP:
                return True
        return False

    def _abandon_fiber(self) -> None:
        """Drop a Trio run left suspended on another thread's fiber.

        A fiber can only be resumed on the thread that created it. A loop whose Trio run
        started while it ran in one thread and that is then run or closed from another
        (a loop run in a worker thread and closed by the main thread, say) cannot end that
        run; its Trio tasks are abandoned and the fiber's stack is leaked (see
        design/conformance.md).
        """
        fiber, self._fiber = self._fiber, None
        self._fiber_state = ThreadStateSlot()
        self._unbind_trio_run()
        # Kept referenced on purpose: dropping it from a foreign thread could only leak it
        # with a warning at some later garbage collection.
        _abandoned_fibers.append(fiber)  # type: ignore[arg-type]

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._renew_signal_wakeup_after_fork()
        if self._fiber is None:
            return
        if current_fiber() is self._fiber:
            # Forked from inside this loop's run: finish the run without Trio; the fiber is
            # forgotten when it suspends (_switch). The code running now sees no Trio run
            # and so no running loop, as on stock asyncio (3.12+) after a fork.
            self._trio_inherited = True
            forget_run_context()
        else:
            self._forget_inherited_fiber()

    def _forget_inherited_fiber(self) -> None:
        """Drop a Trio run inherited across fork() without ever resuming it (see _fork)."""
        fiber, self._fiber = self._fiber, None
        self._fiber_state = ThreadStateSlot()
        self._unbind_trio_run()
        self._trio_inherited = False
        if fiber is not None:
            _fork.keep_inherited_fiber(fiber)

    def _start_fiber(self) -> None:
        fiber = Fiber(_TrioSide(self).fiber_main)
        self._fiber = fiber
        ready = self._switch(None)
        if ready != "ready":  # pragma: no cover  (trio.run failed to start)
            self._fiber = None
            raise RuntimeError(f"the loop's Trio run could not start: {ready!r}")

    def _switch(self, request: Any) -> Any:
        fiber = self._fiber
        assert fiber is not None
        caller = switch_into(self._fiber_state)
        self._caller_state = caller
        try:
            return fiber.switch(request)
        finally:
            self._caller_state = None
            switch_out_of(self._fiber_state, caller)
            if self._trio_inherited:
                self._forget_inherited_fiber()

    def _close_trio_side(self) -> None:
        fiber = self._fiber
        if fiber is None:
            return
        if not fiber.owned_by_current_thread():
            self._abandon_fiber()
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



class _TrioSide:
    """The code that runs on the loop's fiber: ``trio.run`` and its main task.

    It holds the loop only through a weak reference between runs: references held by
    the frames of a suspended fiber are invisible to the garbage collector, so a strong
    one would keep an unclosed, unreachable loop alive forever (and its fiber with it).
    Outcomes travel back through ``loop._run_outcome`` for the same reason.
    """

    __slots__ = ("loop_ref",)

    def __init__(self, loop: SyncTrioEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)

    def fiber_main(self) -> None:
        trio.run(self.trio_main, clock=_MonotonicClock())

    async def trio_main(self) -> None:
        trio.lowlevel.current_task().name = SYNC_LOOP_TASK_NAME
        async with trio.open_nursery() as nursery:
            loop = self.loop_ref()
            if loop is None:  # pragma: no cover
                return
            loop._bind_trio_run(nursery)
            del loop
            try:
                request = suspend("ready")
                while request == _RUN:
                    loop = self.loop_ref()
                    if loop is None:
                        break
                    await self.run_once(loop)
                    self.take_pending_interrupt(loop)
                    del loop
                    request = suspend(None)
            finally:
                loop = self.loop_ref()
                if loop is not None:
                    loop._unbind_trio_run()
                    del loop
                nursery.cancel_scope.cancel()

    @staticmethod
    def take_pending_interrupt(loop: SyncTrioEventLoop) -> None:
        """Deliver a Ctrl-C that Trio has not handed to this task yet with this run.

        Trio delivers a SIGINT that arrives while its own code runs to the main task at that
        task's next checkpoint. The run is about to be frozen until the next ``run_*`` (or
        ``close()``), so the interrupt would come out of that later call: end this one with
        it instead, as a SIGINT during a stock loop's run ends that run.
        """
        runner = current_runner()
        if runner is None or not runner.ki_pending:  # no runner: inherited across fork()
            return
        runner.ki_pending = False
        interrupt = KeyboardInterrupt()
        previous = loop._run_outcome
        if isinstance(previous, outcome.Error):
            interrupt.__context__ = previous.error
        loop._run_outcome = outcome.Error(interrupt)

    @staticmethod
    async def run_once(loop: SyncTrioEventLoop) -> None:
        token = current_loop.set(loop)
        loop._stopped_event = trio.Event()
        try:
            result = await outcome.acapture(loop._drive, False)
        finally:
            if not loop._trio_inherited:  # else Trio is gone: see _fork
                loop._stopped_event.set()
            current_loop.reset(token)
        if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
            error = RuntimeError("the sync loop's Trio run was cancelled")
            error.__cause__ = result.error
            result = outcome.Error(error)
        loop._run_outcome = result


__all__ = ["SyncTrioEventLoop", "SYNC_LOOP_TASK_NAME"]
