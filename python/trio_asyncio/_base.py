"""``BaseTrioEventLoop``: what both trio-asyncio loops share.

The hot asyncio methods (``call_soon``, ``call_later``, ``call_at``,
``call_soon_threadsafe``, ``time``, ``stop``, ``_add_reader``/``_remove_reader``/
``_add_writer``/``_remove_writer``, ``is_closed``) live in the Rust base class
``_engine.LoopCore``; this module adds the Python surface around them. Transports, sockets,
servers, TLS, unix sockets, pipes and ``sendfile`` come from asyncio's own selector loop
classes, which only ever reach the event loop through those methods, so they run unchanged
on the Rust reactor. See ``design/loops.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import sys
import weakref
from asyncio import base_events
from asyncio import unix_events as _unix_events
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

import trio

from . import _fork
from ._context import current_loop
from ._driver import DRIVER_SLOTS, DriverMixin
from ._engine import LoopCore
from ._executor import TrioExecutor
from ._handles import TrioTaskFuture, TrioTaskHandle
from ._selector import ReactorSelector
from ._signals import SIGNAL_SLOTS, SignalsMixin
from ._stream_transport import NativeStreamTransportMixin
from ._subprocess import SUBPROCESS_SLOTS, SubprocessMixin
from ._trio_pool import TrioTaskPool
from ._trio_run import TRIO_RUN_SLOTS, TrioRunBinding, in_trio_run_of
from ._util import run_aio_future

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _noop() -> None:
    pass


def _asyncio_state_names() -> tuple[str, ...]:
    """The instance attributes the running Python's ``BaseEventLoop.__init__`` sets, less
    those the Rust core keeps (its properties: ``_closed``, ``_debug``, ...)."""
    probe = base_events.BaseEventLoop.__new__(base_events.BaseEventLoop)
    base_events.BaseEventLoop.__init__(probe)
    probe._closed = True  # type: ignore[attr-defined]  # (no "unclosed loop" warning)
    return tuple(name for name in vars(probe) if not hasattr(LoopCore, name))


# What asyncio's _UnixSelectorEventLoop.__init__ would set; BaseTrioEventLoop.__init__ sets
# them itself (SignalsMixin sets _signal_handlers).
_UNIX_LOOP_STATE = ("_selector", "_transports", "_unix_server_sockets", "_ssock", "_csock")


class BaseTrioEventLoop(  # type: ignore[misc]
    NativeStreamTransportMixin, DriverMixin, SignalsMixin, SubprocessMixin, TrioRunBinding,
    LoopCore, _unix_events._UnixSelectorEventLoop,
):
    """An asyncio event loop that runs on top of Trio.

    Bases: :class:`asyncio.SelectorEventLoop` (for the transports; the selector itself is
    replaced by the Rust reactor), after the Rust core and one mixin per concept: the
    driver that runs callbacks (``_driver``), signal handlers (``_signals``), subprocesses
    (``_subprocess``) and the Trio run the loop is bound to (``_trio_run``).

    Every loop created by trio-asyncio derives from this class: :class:`TrioEventLoop`
    (from :func:`open_loop`) and the sync loop that :func:`asyncio.new_event_loop` returns
    once trio_asyncio is imported.

    :param queue_len: accepted for compatibility with trio-asyncio 0.16; the callback queue
        is unbounded (see design/conformance.md).
    """

    # Every attribute a loop sets on itself lives in a slot, so a loop's __dict__ stays
    # empty until a user (or a test's mock) stores something there. `loop.call_soon(...)`
    # and the other method lookups asyncio and its users make on the loop stay specialized
    # by CPython's interpreter then: it gives up on an instance dict with 30 or more keys
    # (3.11, 3.12), and on 3.13 on any non-empty instance dict of a class whose base has
    # C-level data, as the Rust core does (design/loops.md, "Instance state").
    __slots__ = (
        *_asyncio_state_names(),
        *_UNIX_LOOP_STATE,
        "_signal_handlers",
        *DRIVER_SLOTS,
        *SIGNAL_SLOTS,
        *SUBPROCESS_SLOTS,
        *TRIO_RUN_SLOTS,
        "_queue_len",
        "_close_files",
        "_pending_trio_tasks",
        "_trio_pool",
        "_stopped_event",
        "_trio_inherited",
    )

    def __init__(self, queue_len: int | None = None) -> None:
        self._init_driver()
        self._unbind_trio_run()
        # BaseEventLoop.__init__ only; BaseSelectorEventLoop.__init__ would create a
        # selector and a self-pipe, both of which the Rust core replaces.
        base_events.BaseEventLoop.__init__(self)
        self._selector = ReactorSelector(self)
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._init_signals()
        self._init_subprocesses()
        # What _UnixSelectorEventLoop.__init__ would set: from 3.13 its unix servers record
        # their socket's inode here so close() can unlink the path (unused before 3.13).
        self._unix_server_sockets: dict[Any, int] = {}
        self._ssock = self._csock = None
        # asyncio counts its self-pipe here; the Rust core's waker plays that part.
        self._internal_fds = 1
        self._queue_len = queue_len
        self._close_files: set[int] = set()
        # Trio tasks to start, and scopes to cancel, once the driver runs in Trio.
        self._pending_trio_tasks: list[TrioTaskHandle | trio.CancelScope] = []
        # The resident Trio tasks that run them (bound to one nursery; see _trio_pool).
        self._trio_pool: TrioTaskPool | None = None
        self._stopped_event = trio.Event()
        self._stopped_event.set()
        # Set in a forked child whose fork happened inside this loop's Trio run: the rest of
        # that run must not touch Trio (its kernel objects are the parent's; see _fork).
        self._trio_inherited = False
        _fork.track(self)

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {state} debug={self.get_debug()}>"

    # ------------------------------------------------------------------
    # Basic state
    # ------------------------------------------------------------------

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self._set_debug(bool(enabled))

    # asyncio's self-pipe is replaced by the Rust core's waker.
    def _make_self_pipe(self) -> None:
        pass

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        self.call_soon_threadsafe(_noop)

    def _process_events(self, event_list: Any) -> None:  # pragma: no cover
        raise RuntimeError("trio-asyncio loops dispatch fd events in the Rust core")

    def _run_once(self) -> None:  # pragma: no cover
        raise RuntimeError("trio-asyncio loops are driven by a Trio task, not _run_once()")

    def _timer_handle_cancelled(self, handle: Any) -> None:
        pass

    def _after_fork_in_child(self) -> None:
        """In a forked child: stop sharing kernel objects with the parent (see ``_fork``)."""
        if not self.is_closed():
            self._renew_after_fork()

    def _adopt_trio_clock(self) -> None:
        """Make ``time()`` read the clock of the Trio run we are in."""
        clock = trio.lowlevel.current_clock()
        offset = getattr(clock, "offset", None)
        if type(clock).__name__ == "SystemClock" and isinstance(offset, float):
            self._set_clock_offset(offset)
        else:
            self._set_clock_callable(clock.current_time)

    # ------------------------------------------------------------------
    # Trio tasks started from asyncio
    # ------------------------------------------------------------------

    def trio_as_future(
        self, proc: Callable[[Unpack[Ts]], Awaitable[T]], *args: Unpack[Ts]
    ) -> asyncio.Future[T]:
        """Start ``await proc(*args)`` as a Trio task; return an asyncio future for it.

        The call itself can be made from any flavour on the loop's thread; awaiting the
        returned future is asyncio-flavoured. The future resolves to the task's result or
        error. Cancelling the future cancels the Trio task (or keeps it from starting); it
        then resolves to :exc:`asyncio.CancelledError`.

        :raises RuntimeError: if the loop is closed.
        """
        self._check_closed()
        fut: TrioTaskFuture = TrioTaskFuture(loop=self)
        self._start_trio_task(TrioTaskHandle(self, proc, args, fut, self._task_context()))
        return fut

    def run_trio_task(
        self, proc: Callable[[Unpack[Ts]], Awaitable[object]], *args: Unpack[Ts]
    ) -> TrioTaskHandle:
        """Start ``await proc(*args)`` as a Trio task and return a handle to cancel it.

        An error raised by the task is reported to the loop's exception handler, which
        for an :func:`open_loop` loop ends the loop.

        :raises RuntimeError: if the loop is closed.
        """
        self._check_closed()
        handle = TrioTaskHandle(self, proc, args, None, self._task_context())
        self._start_trio_task(handle)
        return handle

    def _task_context(self) -> contextvars.Context:
        ctx = contextvars.copy_context()
        if ctx.get(current_loop) is not self:
            ctx.run(current_loop.set, self)
        return ctx

    def _start_trio_task(self, handle: TrioTaskHandle) -> None:
        if self._trio_inherited:
            raise RuntimeError(
                "this loop's Trio run was inherited across fork(): Trio code cannot run on it "
                "in the child until the current run ends"
            )
        nursery = self._nursery
        if nursery is not None and in_trio_run_of(self._trio_runner):
            pool = self._trio_pool
            if pool is None or pool.nursery is not nursery:
                pool = self._trio_pool = TrioTaskPool(self, nursery)
            pool.submit(handle)
        else:
            # Not inside our Trio run (a sync loop that is stopped, or running callbacks
            # on its caller's stack): the driver starts it on its next pass; a batch
            # running in the core's own wait returns for that.
            self._pending_trio_tasks.append(handle)
            self._interrupt()

    def _start_pending_trio_tasks(self) -> None:
        pending, self._pending_trio_tasks = self._pending_trio_tasks, []
        for item in pending:
            if isinstance(item, trio.CancelScope):
                item.cancel()
            elif item._started:
                item._cancel_running()  # a cancel() made outside the run
            else:
                self._start_trio_task(item)

    def _cancel_trio_job(self, handle: TrioTaskHandle) -> None:
        """Cancel the running job of *handle* (see :meth:`_cancel_trio_scope`)."""
        if in_trio_run_of(self._trio_runner):
            handle._cancel_running()
        else:
            self._pending_trio_tasks.append(handle)

    def _cancel_trio_scope(self, scope: trio.CancelScope) -> None:
        """Cancel the scope of a Trio task of this loop, from any code on its thread.

        Cancelling wakes the task through its run, so it happens right away only inside
        the loop's Trio run; elsewhere (asyncio code on a sync loop's caller stack, or
        between runs) the driver does it on its next pass, and closing the loop cancels
        every Trio task anyway.
        """
        if in_trio_run_of(self._trio_runner):
            scope.cancel()
        else:
            self._pending_trio_tasks.append(scope)

    async def run_aio_coroutine(self, coro: Awaitable[T]) -> T:
        """Run an asyncio-flavoured coroutine as a task on this loop; return its result.

        This is a Trio-flavoured async function. Cancelling the calling Trio scope
        cancels the task (see :func:`run_aio_future`).
        """
        try:
            self._check_closed()
            fut = asyncio.ensure_future(coro, loop=self)
        except BaseException:
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise
        return await run_aio_future(fut)

    run_aio_future = staticmethod(run_aio_future)

    async def synchronize(self) -> None:
        """Wait until every callback queued with ``call_soon`` before this call has run.

        This is a Trio-flavoured async function.
        """
        done = trio.Event()
        self.call_soon(done.set)
        await done.wait()

    async def wait_stopped(self) -> None:
        """Wait until the loop has stopped running (Trio-flavoured)."""
        await self._stopped_event.wait()

    # ------------------------------------------------------------------
    # Executors
    # ------------------------------------------------------------------

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        """Use *executor* for ``run_in_executor(None, ...)``.

        :raises TypeError: unless *executor* is a :class:`~concurrent.futures.ThreadPoolExecutor`
            (a :class:`TrioExecutor` is one), as stock asyncio requires.
        """
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[Ts]], T],
        *args: Unpack[Ts],
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in *executor* (default: a :class:`TrioExecutor`).

        Any :class:`concurrent.futures.Executor` works; a :class:`TrioExecutor` runs the
        job in a Trio worker thread.
        """
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            self._check_default_executor()
            if executor is None:
                executor = TrioExecutor()
                self._default_executor = executor
        if isinstance(executor, TrioExecutor):
            return self.trio_as_future(_submit_to_trio_executor, executor, func, *args)
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    # ------------------------------------------------------------------
    # File descriptors
    # ------------------------------------------------------------------

    def autoclose(self, fd: Any) -> None:
        """Close *fd* (an int or an object with ``fileno()``) when the loop closes."""
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        self._close_files.add(fd)

    def no_autoclose(self, fd: Any) -> None:
        """Undo :meth:`autoclose` for *fd*.

        :raises KeyError: if *fd* was not marked with :meth:`autoclose`.
        """
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        self._close_files.remove(fd)

    # ------------------------------------------------------------------
    # Closing
    # ------------------------------------------------------------------

    def close(self) -> None:
        """Close the loop: drop queued callbacks, timers and fd registrations.

        :raises RuntimeError: if the loop is running.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            self._close_trio_side()
        finally:
            # Even if ending the Trio side was interrupted (Ctrl-C in its teardown): the
            # loop is closed, nothing leaks, and the interrupt propagates.
            self._close_core_side()

    def _close_core_side(self) -> None:
        if self._debug:
            base_events.logger.debug("Close %r", self)  # type: ignore[attr-defined]
        if not sys.is_finalizing():
            self._remove_signal_handlers()
        self._close_child_pidfds()
        for fd in self._close_files:
            try:
                os.close(fd)
            except OSError:
                pass
        self._close_files.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._close_core()
        self._internal_fds = 0
        self._selector = None

    def _close_trio_side(self) -> None:
        """Hook: end whatever Trio machinery the loop owns (the sync loop's fiber)."""


async def _submit_to_trio_executor(
    executor: TrioExecutor, func: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]
) -> T:
    try:
        return await executor.submit(func, *args)
    except concurrent.futures.CancelledError as exc:
        # As asyncio.wrap_future does: a job that raised concurrent.futures.CancelledError
        # resolves the asyncio future with asyncio.CancelledError.
        raise asyncio.CancelledError(*exc.args) from None


__all__ = ["BaseTrioEventLoop", "TrioExecutor"]
