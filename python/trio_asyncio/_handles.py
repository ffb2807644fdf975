"""Handles for Trio tasks started from asyncio (``trio_as_future``, ``run_trio_task``)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop


def split_exception(
    exc: BaseException, etype: type[BaseException]
) -> tuple[BaseException | None, BaseException | None]:
    """Split *exc* into the part matching *etype* and the rest.

    Groups keep their shape (a task whose nursery raised reports that nursery's group, as
    trio-asyncio 0.16 does).
    """
    if not isinstance(exc, BaseExceptionGroup):
        return (exc, None) if isinstance(exc, etype) else (None, exc)
    match, rest = exc.split(etype)
    return match, rest


def _collapse(exc: BaseException | None) -> BaseException | None:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class TrioTaskFuture(asyncio.Future):  # type: ignore[type-arg]
    """The asyncio future returned by ``trio_as_future``.

    Cancelling it cancels the Trio task; the future itself resolves (to cancelled, to the
    task's result or to its error) once the Trio task has finished.
    """

    _trio_handle: TrioTaskHandle | None = None

    def cancel(self, msg: Any = None) -> bool:
        handle = self._trio_handle
        if handle is None or handle._finished:
            return super().cancel(msg)
        if self.done():
            return False
        handle._cancel_message = msg
        handle.cancel()
        return True

    def _cancel_now(self, msg: Any = None) -> None:
        super().cancel(msg)


class TrioTaskHandle:
    """Runs ``await proc(*args)`` as a Trio task on behalf of an asyncio loop.

    :meth:`cancel` cancels the task (or keeps it from starting). With a result future the
    outcome goes to the future; without one, an ``Exception`` is reported to the loop's
    exception handler (which ends an ``open_loop`` loop) and other ``BaseException``\\ s
    propagate into the loop's nursery.
    """

    __slots__ = (
        "_proc",
        "_args",
        "_loop",
        "_future",
        "_context",
        "_scope",
        "_cancelled",
        "_started",
        "_finished",
        "_cancel_message",
    )

    def __init__(
        self,
        loop: BaseTrioEventLoop,
        proc: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        future: TrioTaskFuture | None,
        context: contextvars.Context,
    ) -> None:
        self._proc = proc
        self._args = args
        self._loop = loop
        self._future = future
        self._context = context
        # The cancel scope the job runs in: its worker's (see _trio_pool), set when the
        # job starts.
        self._scope: trio.CancelScope | None = None
        self._cancelled = False
        self._started = False
        self._finished = False
        self._cancel_message: Any = None
        if future is not None:
            future._trio_handle = self

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "finished" if self._finished else "pending"
        return f"<TrioTaskHandle {self._proc!r} {state}>"

    def cancel(self) -> None:
        """Cancel the Trio task, or keep it from starting."""
        if self._finished:
            return
        self._cancelled = True
        if self._started:
            # Running in the loop's Trio run: only that run may cancel it.
            self._loop._cancel_trio_job(self)
        # else _run sees _cancelled and does not start the job.

    def _cancel_running(self) -> None:
        # Inside the loop's Trio run. The scope is the worker's, shared with the jobs it
        # runs after this one: cancel it only while this job runs.
        scope = self._scope
        if not self._finished and scope is not None:
            scope.cancel()

    def cancelled(self) -> bool:
        return self._cancelled

    async def _run(self) -> None:
        self._started = True
        fut = self._future
        if self._cancelled:
            self._finished = True
            if fut is not None and not fut.done():
                fut._cancel_now(self._cancel_message)
            return
        try:
            # A cancellation of the job (its scope is the worker's, see _trio_pool) comes
            # out as Cancelled: the future is cancelled below and the worker's scope
            # catches it.
            try:
                result = await self._proc(*self._args)
            finally:
                self._finished = True
            if fut is not None and not fut.done():
                # The worker runs the awaiting task right after (_trio_pool: _next ->
                # _drive_inline), so the wake-up this queues need not wake the driver.
                self._loop._claim_driver()
                fut.set_result(result)
        except BaseException as exc:
            if fut is None:
                errors, base = split_exception(exc, Exception)
                if errors is not None:
                    self._report(errors)
                if base is not None:
                    raise base from None
            else:
                cancelled, rest = split_exception(exc, trio.Cancelled)
                if not fut.done():
                    if rest is not None:
                        fut.set_exception(rest)
                    else:
                        fut._cancel_now(self._cancel_message)
                cancelled = _collapse(cancelled)
                if cancelled is not None:
                    raise cancelled from None
        finally:
            del self  # break the frame -> handle cycle on error paths

    def _report(self, exc: BaseException) -> None:
        self._loop.call_exception_handler(
            {
                "message": f"Exception in Trio task {self._proc!r} started by the loop",
                "exception": exc,
                "handle": self,
            }
        )
