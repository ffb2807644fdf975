"""Resident Trio tasks that run the loop's Trio jobs (``trio_as_future``, ``run_trio_task``).

Starting a Trio task per ``trio_as_aio`` call costs a spawn (a ``Task``, a coroutine, a
cancel status, nursery bookkeeping) and, above all, one pass of Trio's scheduler (with an
``epoll_wait``) before the job starts. A :class:`TrioTaskPool` keeps worker tasks in the
loop's nursery instead, and hands each job (a :class:`~._handles.TrioTaskHandle`) to one:

- a worker that has just finished a job and is running the loop's callbacks inline
  (``_drive_inline``: the awaiting asyncio task resumes there and usually asks for the next
  job at once) takes the first job asked for during that batch and runs it right after,
  with no trip through Trio's scheduler (but a schedule point every
  ``FAST_STREAK_LIMIT`` jobs, so such a chain cannot starve other Trio tasks);
- otherwise a parked idle worker is rescheduled with the job;
- otherwise a new worker is started.

Each job still runs in its own copy of the caller's context (the worker steps the job's
coroutine inside that context, see :func:`run_in_context`) and can be cancelled alone (a
worker's jobs share one cancel scope, cancelled only while the cancelled job runs and
replaced after it), so results, errors, cancellation in both directions and contextvars
behave as with a task per call. What differs: Trio sees the worker, not a task per call
(``trio.lowlevel.current_task()`` and Trio instruments' ``task_spawned``/``task_exited``),
see design/conformance.md.
"""

from __future__ import annotations

import contextvars
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

import outcome
import trio

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop
    from ._handles import TrioTaskHandle

#: Jobs a worker runs back to back without a schedule point.
FAST_STREAK_LIMIT = 16

#: The name of the worker tasks (``trio.lowlevel.current_task().name`` inside a job).
WORKER_NAME = "trio_asyncio.worker"


@types.coroutine
def run_in_context(
    context: contextvars.Context, fn: Callable[[], Coroutine[Any, Any, Any]]
) -> Generator[Any, Any, Any]:
    """Await ``fn()`` with every step of it run inside *context*.

    Trio steps a task as ``task.context.run(coro.send, value)``; this does the same for
    one coroutine inside a task, so a worker can run each job in the job's own context.
    What the coroutine yields (Trio's traps) goes to Trio unchanged, and what Trio sends
    or throws back goes to the coroutine.
    """
    run = context.run
    coro = run(fn)
    step: Callable[[Any], Any] = coro.send
    value: Any = None
    while True:
        try:
            yielded = run(step, value)
        except StopIteration as stop:
            return stop.value
        try:
            value = yield yielded
        except BaseException as exc:  # thrown in by Trio (or close()): to the coroutine
            step, value = coro.throw, exc
        else:
            step = coro.send


class _Worker:
    __slots__ = ("task", "next")

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        # A job handed over while this worker was finishing its previous one.
        self.next: TrioTaskHandle | None = None


class TrioTaskPool:
    """The worker tasks of one loop in one nursery (see the module docstring)."""

    __slots__ = ("nursery", "_loop", "_idle", "_finishing", "_streak")

    def __init__(self, loop: BaseTrioEventLoop, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        # Weak: parked workers hold the pool, and a sync loop's parked workers sit on its
        # suspended fiber, where the garbage collector cannot see them (see _sync).
        self._loop = weakref.ref(loop)
        self._idle: list[_Worker] = []
        # The worker running the loop's batch right after its job (at most one: batches
        # do not nest), while it can still take a job.
        self._finishing: _Worker | None = None
        self._streak = 0

    def submit(self, handle: TrioTaskHandle) -> None:
        """Run *handle*'s job in a worker. Only from inside the nursery's Trio run."""
        finishing = self._finishing
        if finishing is not None:
            self._finishing = None
            finishing.next = handle
        elif self._idle:
            worker = self._idle.pop()
            assert worker.task is not None
            trio.lowlevel.reschedule(worker.task, outcome.Value(handle))
        else:
            self._spawn(handle)

    def _spawn(self, handle: TrioTaskHandle) -> None:
        # In an empty context: a worker outlives the caller, whose context (holding
        # current_loop, for one) it must not keep alive; each job brings its own.
        contextvars.Context().run(self._start_worker, handle)

    def _start_worker(self, handle: TrioTaskHandle) -> None:
        self.nursery.start_soon(self._work, handle, name=WORKER_NAME)

    async def _work(self, handle: TrioTaskHandle) -> None:
        me = _Worker()
        me.task = trio.lowlevel.current_task()
        job: TrioTaskHandle | None = handle
        del handle
        try:
            while True:
                # One cancel scope serves the jobs this worker runs until one of them is
                # cancelled (entering a scope per job was a third of a crossing's cost):
                # cancelling a running job cancels this scope, which then catches the
                # job's Cancelled; the next job gets a fresh scope.
                with trio.CancelScope() as scope:
                    while job is not None:
                        job._scope = scope
                        running, job = job, None
                        await run_in_context(running._context, running._run)
                        # Only cancel() of the job that runs cancels the scope, and it
                        # sets _cancelled first.
                        job_cancelled = running._cancelled
                        del running
                        if job_cancelled:
                            break  # cancelled after the job's last checkpoint
                        job = await self._next(me)
                if job is None:
                    job = await self._next(me)
        finally:
            loop = self._loop()
            if loop is not None and loop._claimed:
                loop._drive_inline()  # a job's _claim_driver() must be followed by a batch
            del loop
            # Leaving with a job taken but not started (an error or a cancellation of the
            # nursery in between): another worker runs it.
            if job is None:
                job, me.next = me.next, None
            if job is not None and not job._started:
                self._spawn(job)

    async def _next(self, me: _Worker) -> TrioTaskHandle:
        """Run the loop's batch inline, then the next job: one asked for in that batch
        (usually the awaiting asyncio task's next call), or one brought while parked."""
        self._finishing = me
        loop = self._loop()
        try:
            if loop is not None:
                loop._drive_inline()
        finally:
            del loop
            if self._finishing is me:
                self._finishing = None
        job = me.next
        if job is not None:
            self._streak += 1
            if self._streak >= FAST_STREAK_LIMIT:
                self._streak = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            me.next = None
            return job
        return await self._park(me)

    async def _park(self, me: _Worker) -> TrioTaskHandle:
        self._idle.append(me)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._idle.remove(me)
            return trio.lowlevel.Abort.SUCCEEDED

        handle: TrioTaskHandle = await trio.lowlevel.wait_task_rescheduled(abort)
        return handle


__all__ = ["FAST_STREAK_LIMIT", "WORKER_NAME", "TrioTaskPool", "run_in_context"]
