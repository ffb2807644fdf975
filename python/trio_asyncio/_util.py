"""Helpers that cross flavours and need no loop of their own.

``run_aio_future`` and ``run_aio_generator`` are Trio-flavoured (await them from Trio);
``run_trio_generator`` is asyncio-flavoured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import outcome
import trio

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop

T = TypeVar("T")


def _raise_trio_cancel(raise_cancel: Callable[[], Any], exc: BaseException) -> NoReturn:
    """Raise Trio's cancellation (``raise_cancel``), chained to asyncio's *exc*."""
    try:
        raise_cancel()
    except BaseException as cancelled:
        cancelled.__cause__ = exc
        raise
    raise AssertionError("raise_cancel() returned")  # pragma: no cover


# Consecutive run_aio_future calls that completed without a schedule point.
_fast_streak = 0
_FAST_STREAK_LIMIT = 16


def fast_streak_ended() -> bool:
    """Count one more crossing that finished without a schedule point; True (and a new
    count) every ``_FAST_STREAK_LIMIT``-th time, when the caller must yield to Trio."""
    global _fast_streak
    _fast_streak += 1
    if _fast_streak >= _FAST_STREAK_LIMIT:
        _fast_streak = 0
        return True
    return False


async def run_aio_future(future: asyncio.Future[T]) -> T:
    """Wait for an asyncio future to finish; return its result or raise its exception.

    This is a Trio-flavoured async function.

    Cancelling the calling Trio scope cancels the future. If the future then resolves to
    :exc:`asyncio.CancelledError`, this raises :exc:`trio.Cancelled` (with the asyncio error
    as its ``__cause__``); a :exc:`asyncio.CancelledError` that was not caused by a Trio
    cancellation is passed through unchanged.

    :raises trio.Cancelled: if the surrounding Trio scope was cancelled.
    """
    if not future.done():
        drive_inline = getattr(future.get_loop(), "_drive_inline", None)
        if drive_inline is not None:
            drive_inline()
    return await wait_aio_future(future)


async def wait_aio_future(future: asyncio.Future[T]) -> T:
    """:func:`run_aio_future` once the loop's ready work was run (or left to its driver)."""
    if future.done():
        # Finished without waiting: no trip through Trio's scheduler, except now and then
        # so that a loop of such calls cannot starve other Trio tasks.
        await trio.lowlevel.checkpoint_if_cancelled()
        if fast_streak_ended():
            await trio.lowlevel.cancel_shielded_checkpoint()
        return future.result()

    task = trio.lowlevel.current_task()
    raise_cancel: Callable[[], Any] | None = None

    def on_done(fut: asyncio.Future[T]) -> None:
        trio.lowlevel.reschedule(task, outcome.capture(fut.result))

    future.add_done_callback(on_done)

    def abort(raise_cancel_arg: Callable[[], Any]) -> trio.lowlevel.Abort:
        nonlocal raise_cancel
        raise_cancel = raise_cancel_arg
        future.cancel()
        # The future's done callback reschedules us once the cancellation lands.
        return trio.lowlevel.Abort.FAILED

    try:
        return await trio.lowlevel.wait_task_rescheduled(abort)  # type: ignore[no-any-return]
    except asyncio.CancelledError as exc:
        if raise_cancel is None:
            raise
        _raise_trio_cancel(raise_cancel, exc)


_END = object()


async def run_aio_generator(
    loop: BaseTrioEventLoop | None, async_generator: AsyncIterator[T]
) -> AsyncIterator[T]:
    """Iterate an asyncio-flavoured async iterator from Trio.

    This is a Trio-flavoured async generator. Each step of *async_generator* runs in an
    asyncio task on *loop* (the current loop if ``None``). Cancelling the Trio caller cancels
    the pending step.
    """
    from ._context import current_loop

    if loop is None:
        loop = current_loop.get()
        if loop is None:
            raise RuntimeError("You are not within a trio_asyncio loop")
    task = trio.lowlevel.current_task()
    raise_cancel: Callable[[], Any] | None = None
    pending: asyncio.Future[None] | None = None

    async def step() -> None:
        try:
            item = await async_generator.__anext__()
        except StopAsyncIteration:
            result: outcome.Outcome[Any] = outcome.Value(_END)
        except asyncio.CancelledError:
            return  # cancelled by abort(): the Trio side already resumed
        except Exception as exc:
            result = outcome.Error(exc)
        else:
            result = outcome.Value(item)
        trio.lowlevel.reschedule(task, result)

    def abort(raise_cancel_arg: Callable[[], Any]) -> trio.lowlevel.Abort:
        nonlocal raise_cancel
        raise_cancel = raise_cancel_arg
        if pending is None or pending.cancel():
            return trio.lowlevel.Abort.SUCCEEDED
        return trio.lowlevel.Abort.FAILED

    try:
        while True:
            pending = loop.create_task(step())
            item = await trio.lowlevel.wait_task_rescheduled(abort)
            pending = None
            if item is _END:
                break
            yield item
    except asyncio.CancelledError as exc:
        if raise_cancel is None:
            raise
        _raise_trio_cancel(raise_cancel, exc)


async def run_trio_generator(
    loop: BaseTrioEventLoop, async_generator: AsyncIterator[T]
) -> AsyncIterator[T]:
    """Iterate a Trio-flavoured async iterator from asyncio (asyncio-flavoured)."""
    while True:
        try:
            item = await loop.trio_as_future(async_generator.__anext__)
        except StopAsyncIteration:
            break
        yield item
