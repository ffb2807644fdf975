"""``open_loop()``, ``run()`` and the module-level forwarders to the current loop."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from ._async import TrioEventLoop
from ._base import BaseTrioEventLoop
from ._context import current_loop
from ._handles import TrioTaskHandle
from ._util import run_aio_future

T = TypeVar("T")


@asynccontextmanager
async def open_loop(queue_len: int | None = None) -> AsyncIterator[TrioEventLoop]:
    """Open an asyncio event loop that runs inside the current Trio run.

    This is a Trio-flavoured async context manager evaluating to a new
    :class:`TrioEventLoop`. Inside the block, call asyncio code through
    :func:`aio_as_trio` (or :meth:`~BaseTrioEventLoop.run_aio_coroutine`).

    Leaving the block shuts the loop down the way :func:`asyncio.run` does: callbacks
    already queued run first; then the loop's asyncio tasks and the Trio tasks it started
    (:func:`trio_as_aio`, :meth:`~BaseTrioEventLoop.trio_as_future`, ...) are cancelled
    together and awaited; then remaining asyncio async generators are finalised; then the
    loop closes. An exception that reaches the loop's default exception handler ends the
    block with that exception.

    :param queue_len: accepted for compatibility with trio-asyncio 0.16 (unbounded queue).
    """
    async with trio.open_nursery() as loop_nursery:
        loop = TrioEventLoop(queue_len=queue_len)
        loop_token = current_loop.set(loop)
        outer_cancelled = False
        try:
            async with trio.open_nursery() as tasks_nursery:
                # Trio tasks started by the loop live here. Shielded, because they must be
                # cancelled by their asyncio side (or by the shutdown below), not by a
                # cancellation of the block; that also lets _main_task's start() complete
                # even if a cancellation is already pending.
                tasks_nursery.cancel_scope.shield = True
                loop._attach(tasks_nursery)
                # No checkpoint between here and the try below: from now on every way out
                # (a KeyboardInterrupt included) goes through the shutdown that stops the
                # loop task (see TrioEventLoop._main_task).
                loop._mark_running()
                loop_nursery.start_soon(loop._main_task)
                try:
                    # The body runs inside the shield too; forward a cancellation of the
                    # surrounding scopes into it.
                    forwarder_scope = trio.CancelScope()
                    with trio.CancelScope() as body_scope:

                        async def forward_cancellation() -> None:
                            try:
                                with forwarder_scope:
                                    await trio.sleep_forever()
                            finally:
                                body_scope.cancel()

                        loop_nursery.start_soon(forward_cancellation)
                        try:
                            yield loop
                        except trio.Cancelled:
                            outer_cancelled = True
                        except BaseExceptionGroup as group:
                            cancelled, rest = group.split(trio.Cancelled)
                            outer_cancelled = cancelled is not None
                            if rest is not None:
                                raise rest from None
                        finally:
                            forwarder_scope.cancel()
                finally:
                    await _run_queued_callbacks(loop)
                    for task in asyncio.all_tasks(loop):
                        tasks_nursery.start_soon(run_aio_future, task)
                    tasks_nursery.cancel_scope.cancel()
        finally:
            try:
                await _finalize_asyncgens(loop)
            finally:
                await loop._main_loop_exit()
                loop.close()
                current_loop.reset(loop_token)
        if outer_cancelled:
            # Re-raise the surrounding cancellation now that we are outside the shield.
            await trio.lowlevel.checkpoint()


async def _run_queued_callbacks(loop: TrioEventLoop) -> None:
    """Let callbacks queued so far run, unless the loop stops first."""
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.shield = True

        async def synchronized() -> None:
            if not loop.is_closed() and loop.is_running():
                await loop.synchronize()
            nursery.cancel_scope.cancel()

        nursery.start_soon(synchronized)
        await loop.wait_stopped()
        nursery.cancel_scope.cancel()


async def _finalize_asyncgens(loop: TrioEventLoop) -> None:
    if not loop._asyncgens:
        return
    if not loop.is_running():
        warnings.warn(
            "trio-asyncio loop was stopped before its async generators were finalized",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    with trio.CancelScope(shield=True):
        await loop.run_aio_coroutine(loop.shutdown_asyncgens())


def run(
    proc: Callable[..., Awaitable[T]],
    *args: Any,
    queue_len: int | None = None,
    **trio_run_options: Any,
) -> T:
    """Run ``await proc(*args)`` with :func:`trio.run`, inside an :func:`open_loop` block.

    This is a synchronous function; *proc* is Trio-flavoured. Extra keyword arguments go
    to :func:`trio.run` (``clock=``, ``instruments=``, ...).
    """

    async def main() -> T:
        async with open_loop(queue_len=queue_len):
            return await proc(*args)

    return trio.run(main, **trio_run_options)


def _running_loop() -> BaseTrioEventLoop:
    loop = current_loop.get()
    if loop is None:
        raise RuntimeError("You are not within a trio_asyncio loop")
    return loop


async def run_aio_coroutine(coro: Awaitable[T]) -> T:
    """Run an asyncio-flavoured coroutine on the current loop and return its result.

    Trio-flavoured; same as ``await current_loop.get().run_aio_coroutine(coro)``.

    :raises RuntimeError: outside a trio-asyncio loop.
    """
    try:
        loop = _running_loop()
    except RuntimeError:
        close = getattr(coro, "close", None)
        if close is not None:
            close()
        raise
    return await loop.run_aio_coroutine(coro)


def run_trio(proc: Callable[..., Awaitable[T]], *args: Any) -> asyncio.Future[T]:
    """Start ``await proc(*args)`` as a Trio task of the current loop; return a future.

    Synchronous; same as ``current_loop.get().trio_as_future(proc, *args)``.

    :raises RuntimeError: outside a trio-asyncio loop.
    """
    return _running_loop().trio_as_future(proc, *args)


def run_trio_task(proc: Callable[..., Awaitable[Any]], *args: Any) -> TrioTaskHandle:
    """Start ``await proc(*args)`` as a Trio task of the current loop.

    Synchronous; an error raised by the task ends the loop.

    :raises RuntimeError: outside a trio-asyncio loop.
    """
    return _running_loop().run_trio_task(proc, *args)
