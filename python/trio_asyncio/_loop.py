"""``open_loop()``, ``run()`` and the module-level forwarders to the current loop."""

from __future__ import annotations

import asyncio
import sys
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, TypeVarTuple, Unpack

import trio
from _asyncio import _get_running_loop as _c_get_running_loop
from sniffio import thread_local as _sniffio_thread_local

from ._async import TrioEventLoop
from ._base import BaseTrioEventLoop
from ._context import current_loop
from ._handles import TrioTaskHandle
from ._util import run_aio_future

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


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
    :raises RuntimeError: outside Trio code (for instance in asyncio code under
        :func:`asyncio.run`, which already runs on a trio-asyncio loop).
    """
    _check_trio_code("open_loop()")
    # An error of the block (the body's, or one the loop reported) leaves as the one
    # exception group of the nursery the loop's Trio tasks run in, as from any nursery: it
    # is taken out of the outer nursery (which holds only the loop's own helpers) and
    # raised after it.
    error: BaseException | None = None
    async with trio.open_nursery() as loop_nursery:
        loop = TrioEventLoop(queue_len=queue_len)
        loop_token = current_loop.set(loop)
        outer_cancelled = False
        hooks = _OpenLoopAsyncgenHooks.enter()
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
                            except trio.Cancelled:
                                # The surrounding scope's cancellation: the body gets it
                                # (through body_scope) if it reaches a checkpoint; a body
                                # that finishes without one ends the block normally, as
                                # any other Trio code would.
                                pass
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
        except BaseException as exc:
            error = exc
        finally:
            try:
                # Not shielded: a cancellation of the block cuts the generators' finalisers
                # short (they see asyncio.CancelledError), as 0.16 does.
                await _finalize_asyncgens(loop)
            except trio.Cancelled:
                outer_cancelled = True
            finally:
                await loop._main_loop_exit()
                loop.close()
                hooks.exit()
                current_loop.reset(loop_token)
    if error is not None:
        if outer_cancelled and isinstance(error, BaseExceptionGroup):
            # The body saw the block's cancellation too: the group carries it, as the
            # group of a nursery inside the cancelled scope would, so that scope records
            # that it caught its cancellation.
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled as cancelled:
                combined = BaseExceptionGroup(error.message, [*error.exceptions, cancelled])
                combined.__traceback__ = error.__traceback__
                error = combined
        try:
            raise error
        finally:
            del error
    if outer_cancelled:
        # Re-raise the surrounding cancellation now that we are outside the shield.
        await trio.lowlevel.checkpoint()


def _check_trio_code(what: str) -> None:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        in_trio = False
    else:
        in_trio = _sniffio_thread_local.name != "asyncio"
    if in_trio:
        return
    running = _c_get_running_loop()
    if running is not None:
        raise RuntimeError(
            f"{what} is Trio code, but this is asyncio code running on {running!r}. "
            "That loop is already an asyncio loop: use it directly "
            "(asyncio.get_running_loop()), and run Trio code from it with "
            "trio_asyncio.trio_as_aio() or trio_asyncio.run_trio()."
        )
    raise RuntimeError(f"{what} must be used in Trio code (inside trio.run()).")


class _OpenLoopAsyncgenHooks:
    """The async-generator hooks of a Trio run while an ``open_loop`` block is open in it.

    asyncio generators started by the loop's callbacks get the loop's own hooks (the
    driver installs them around every batch), and the hooks outside batches are Trio's.
    These wrappers stand in for Trio's while a block is open: a generator first iterated
    outside a batch but as asyncio code (sniffio says "asyncio" and a trio-asyncio loop is
    asyncio's running loop) goes to that loop, as it would under stock asyncio; any other
    goes to the hooks that were there before. The last block of the run to close puts the
    previous hooks back. One instance per Trio run (a RunVar), counting its open blocks.
    """

    _current: trio.lowlevel.RunVar[_OpenLoopAsyncgenHooks] = trio.lowlevel.RunVar(
        "trio_asyncio_asyncgen_hooks"
    )

    def __init__(self) -> None:
        self.depth = 0
        self.previous = sys.get_asyncgen_hooks()
        self.owners: weakref.WeakKeyDictionary[Any, BaseTrioEventLoop] = (
            weakref.WeakKeyDictionary()
        )
        self.installed = (self._firstiter, self._finalizer)

    @classmethod
    def enter(cls) -> _OpenLoopAsyncgenHooks:
        try:
            hooks = cls._current.get()
        except LookupError:
            hooks = cls()
            cls._current.set(hooks)
        if hooks.depth == 0:
            hooks.previous = sys.get_asyncgen_hooks()
            sys.set_asyncgen_hooks(*hooks.installed)
        hooks.depth += 1
        return hooks

    def exit(self) -> None:
        self.depth -= 1
        if self.depth == 0 and tuple(sys.get_asyncgen_hooks()) == self.installed:
            sys.set_asyncgen_hooks(*self.previous)

    def _firstiter(self, agen: Any) -> None:
        loop = _c_get_running_loop()
        if (
            isinstance(loop, BaseTrioEventLoop)
            and _sniffio_thread_local.name == "asyncio"
            and not loop.is_closed()
        ):
            self.owners[agen] = loop
            loop._asyncgen_firstiter_hook(agen)
        elif self.previous.firstiter is not None:
            self.previous.firstiter(agen)

    def _finalizer(self, agen: Any) -> None:
        loop = self.owners.pop(agen, None)
        if loop is not None:
            loop._asyncgen_finalizer_hook(agen)
        elif self.previous.finalizer is not None:
            self.previous.finalizer(agen)


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
    shutdown = asyncio.ensure_future(loop.shutdown_asyncgens(), loop=loop)
    with trio.CancelScope(shield=True):
        # Let every generator's aclose() start (the shutdown task's first step starts one
        # task per generator; their first steps run in the next loop iteration) before a
        # pending cancellation of the block can reach them: each finaliser then sees
        # asyncio.CancelledError at its first await instead of never running.
        await loop.synchronize()
        await loop.synchronize()
    await run_aio_future(shutdown)


def run(
    proc: Callable[[Unpack[Ts]], Awaitable[T]],
    *args: Unpack[Ts],
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
    """The trio-asyncio loop of the calling code: the Trio task's (``current_loop``), else
    asyncio's running loop if it is one of ours (asyncio code on a sync loop: under
    ``run_until_complete``, ``asyncio.run``, ``asyncio.Runner``, pytest-asyncio, IPython)."""
    loop = current_loop.get()
    if loop is None:
        running = _c_get_running_loop()
        if isinstance(running, BaseTrioEventLoop):
            return running
        raise RuntimeError(_not_in_loop_message(running))
    return loop


def _not_in_loop_message(running: object) -> str:
    what = "You are not within a trio_asyncio loop"
    if running is not None:
        return (
            f"{what}: the running asyncio loop is a {type(running).__module__}."
            f"{type(running).__qualname__}, which trio_asyncio did not create. Import "
            "trio_asyncio before that loop is created (in IPython: before the first cell "
            "that awaits, or restart the kernel after adding the import), or run the code "
            "inside 'async with trio_asyncio.open_loop()' from Trio."
        )
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return (
            f"{what}: no event loop is running. Call this from asyncio code running on a "
            "trio-asyncio loop (any loop asyncio creates once trio_asyncio is imported), "
            "or from Trio code inside 'async with trio_asyncio.open_loop()'."
        )
    return (
        f"{what}: this Trio task has none. Wrap the code in "
        "'async with trio_asyncio.open_loop():'."
    )


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


def run_trio(proc: Callable[[Unpack[Ts]], Awaitable[T]], *args: Unpack[Ts]) -> asyncio.Future[T]:
    """Start ``await proc(*args)`` as a Trio task of the current loop; return a future.

    Synchronous; same as ``current_loop.get().trio_as_future(proc, *args)``.

    :raises RuntimeError: outside a trio-asyncio loop.
    """
    return _running_loop().trio_as_future(proc, *args)


def run_trio_task(
    proc: Callable[[Unpack[Ts]], Awaitable[object]], *args: Unpack[Ts]
) -> TrioTaskHandle:
    """Start ``await proc(*args)`` as a Trio task of the current loop.

    Synchronous; an error raised by the task ends the loop.

    :raises RuntimeError: outside a trio-asyncio loop.
    """
    return _running_loop().run_trio_task(proc, *args)


def __getattr__(name: str) -> object:
    # trio-asyncio 0.16 defined its policy class here; code written against it (its own
    # test suite among others) imports it from this module.
    if name == "TrioPolicy":
        from ._policy import TrioPolicy

        return TrioPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
