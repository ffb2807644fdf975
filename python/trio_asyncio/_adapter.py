"""Adapters between the flavours: ``aio_as_trio``, ``trio_as_aio``, ``allow_asyncio``."""

from __future__ import annotations

import asyncio
import types
from inspect import CO_COROUTINE
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, TypeVarTuple, Unpack, overload

import trio

from ._context import current_loop
from ._util import (
    fast_streak_ended,
    run_aio_future,
    run_aio_generator,
    run_trio_generator,
    wait_aio_future,
)

if TYPE_CHECKING:
    from ._base import BaseTrioEventLoop

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def _call_async(proc: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    return await proc(*args, **kwargs)


def _loop_class() -> type[BaseTrioEventLoop]:
    # Imported on first use (_base imports this module's neighbours), then kept: an import
    # statement in the hot path costs more than the rest of the lookup.
    global _LOOP_CLASS
    if _LOOP_CLASS is None:
        from ._base import BaseTrioEventLoop

        _LOOP_CLASS = BaseTrioEventLoop
    return _LOOP_CLASS


_LOOP_CLASS: type[BaseTrioEventLoop] | None = None


def _is_coroutine_function(proc: Any) -> bool:
    """True for an ``async def`` function (or a method of one): calling it runs no code."""
    func = proc.__func__ if type(proc) is types.MethodType else proc
    return type(func) is types.FunctionType and bool(func.__code__.co_flags & CO_COROUTINE)


def _loop_or_current(loop: asyncio.AbstractEventLoop | None) -> BaseTrioEventLoop:
    BaseTrioEventLoop = _LOOP_CLASS or _loop_class()
    if loop is not None and not isinstance(loop, BaseTrioEventLoop):
        raise TypeError(f"loop must be a trio_asyncio loop, not {type(loop).__name__}")
    if loop is None:
        loop = current_loop.get()
        if loop is not None and loop._trio_inherited:
            loop = None  # a forked child inside the run it inherited: not usable (see _fork)
        if loop is None:
            # asyncio code on a sync loop runs in contexts copied from the loop's caller,
            # where current_loop is unset: the running loop is the one meant.
            running = asyncio._get_running_loop()
            if isinstance(running, BaseTrioEventLoop):
                return running
            if running is not None:
                raise RuntimeError(
                    "You are not within a trio_asyncio loop: the running loop is "
                    f"{type(running).__name__}, made before trio_asyncio was imported or "
                    "without it. Import trio_asyncio before the loop is made, create it "
                    "with trio_asyncio.new_event_loop(), or in IPython run "
                    "'%load_ext trio_asyncio'."
                )
            raise RuntimeError("You are not within a trio_asyncio loop")
    return loop


class _Wrapper:
    """What both adapters share: the wrapped object, a lazily found loop, method binding."""

    def __init__(self, proc: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.proc = proc
        self._loop = loop

    @property
    def loop(self) -> BaseTrioEventLoop:
        """The loop to use (default: the current one, looked up when needed)."""
        return _loop_or_current(self._loop)

    def __get__(self, obj: Any, cls: Any) -> Any:
        # Used as a method decorator: bind the instance (or the class).
        return partial(self.__call__, cls if obj is None else obj)  # type: ignore[operator]


class Asyncio_Trio_Wrapper(_Wrapper):
    """Trio-flavoured wrapper around an asyncio-flavoured function, awaitable, async
    context manager or async iterator (see :func:`aio_as_trio`)."""

    def __init__(
        self, proc: Any, args: tuple[Any, ...] = (), loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        # _Wrapper.__init__'s work, inlined: `await aio_as_trio(fn)()` builds a wrapper on
        # every call, so this is on the crossing's hot path.
        self.proc = proc
        self._loop = loop
        self.args = args
        self._direct: bool | None = None  # proc is an async def function (see __call__)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.args:
            raise RuntimeError("Call 'aio_as_trio(proc)(*args)', not 'aio_as_trio(proc, *args)'")
        loop = self._loop
        if loop is None:
            # The common case of _loop_or_current(None), inlined (hot path).
            loop = current_loop.get()
            if loop is None or loop._trio_inherited:
                loop = _loop_or_current(None)
        else:
            loop = _loop_or_current(loop)
        proc = self.proc
        direct = self._direct
        if direct is None:
            direct = self._direct = _is_coroutine_function(proc)
        # An async def function is called right here (that only makes its coroutine);
        # anything else is called inside the asyncio task, as asyncio code.
        coro = proc(*args, **kwargs) if direct else _call_async(proc, *args, **kwargs)
        # The task's first step is run by this Trio task (run_aio_future -> _drive_inline):
        # no need to wake the driver for it.
        loop._claim_driver()
        try:
            task = loop.create_task(coro)
        except BaseException:
            coro.close()
            raise
        finally:
            loop._drive_inline()  # runs the task's first step; ends the claim
        if task.done():
            # wait_aio_future's fast path, inlined (one coroutine less per crossing).
            await trio.lowlevel.checkpoint_if_cancelled()
            if fast_streak_ended():
                await trio.lowlevel.cancel_shielded_checkpoint()
            return task.result()
        return await wait_aio_future(task)

    def __await__(self) -> Generator[Any, None, Any]:
        proc = self.proc
        if hasattr(proc, "__await__"):
            if self.args:
                raise RuntimeError("You can't supply arguments to a coroutine")
            awaitable = proc
        else:
            awaitable = _call_async(proc, *self.args)
        if isinstance(awaitable, asyncio.Future):
            return run_aio_future(awaitable).__await__()
        return self.loop.run_aio_coroutine(awaitable).__await__()

    def __aenter__(self) -> Awaitable[Any]:
        enter = getattr(self.proc, "__aenter__", None)
        if enter is None or self.args:
            raise RuntimeError(
                "Call 'aio_as_trio(ctxfactory(*args))', not 'aio_as_trio(ctxfactory, *args)'"
            )
        return self.loop.run_aio_coroutine(enter())

    def __aexit__(self, *exc: Any) -> Awaitable[Any]:
        return self.loop.run_aio_coroutine(self.proc.__aexit__(*exc))

    def __aiter__(self) -> Any:
        aiter = getattr(self.proc, "__aiter__", None)
        if aiter is None or self.args:
            raise RuntimeError("Call 'aio_as_trio(gen(*args))', not 'aio_as_trio(gen, *args)'")
        return run_aio_generator(self.loop, aiter())


@overload
def aio_as_trio(
    proc: Callable[P, Awaitable[T]], *, loop: asyncio.AbstractEventLoop | None = None
) -> Callable[P, Coroutine[Any, Any, T]]: ...
@overload
def aio_as_trio(
    proc: Awaitable[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> Awaitable[T]: ...
@overload
def aio_as_trio(
    proc: AbstractAsyncContextManager[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> AbstractAsyncContextManager[T]: ...
@overload
def aio_as_trio(
    proc: AsyncIterator[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> AsyncIterator[T]: ...
def aio_as_trio(proc: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> Any:
    """Wrap asyncio-flavoured *proc* so Trio code can ``await``/``async with``/``async for`` it.

    *proc* may be an async function (``await aio_as_trio(fn)(*args)``; also usable as a
    decorator, including on methods), an awaitable or future
    (``await aio_as_trio(fn(*args))``, supported but discouraged because the coroutine is
    created outside asyncio), an async context manager or an async iterator. The asyncio
    side runs as a task on *loop* (default: the current trio-asyncio loop). Cancelling the
    Trio caller cancels that task.

    Alias: ``asyncio_as_trio``.
    """
    return Asyncio_Trio_Wrapper(proc, loop=loop)


asyncio_as_trio = aio_as_trio


class Trio_Asyncio_Wrapper(_Wrapper):
    """asyncio-flavoured wrapper around a Trio-flavoured function, async context manager
    or async iterator (see :func:`trio_as_aio`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        proc = partial(self.proc, **kwargs) if kwargs else self.proc
        return self.loop.trio_as_future(proc, *args)

    def __aenter__(self) -> asyncio.Future[Any]:
        enter = getattr(self.proc, "__aenter__", None)
        if enter is None:
            raise RuntimeError(
                "Call 'trio_as_aio(ctxfactory(*args))', not 'trio_as_aio(ctxfactory, *args)'"
            )
        return self.loop.trio_as_future(enter)

    def __aexit__(self, *exc: Any) -> asyncio.Future[Any]:
        return self.loop.trio_as_future(self.proc.__aexit__, *exc)

    def __aiter__(self) -> Any:
        aiter = getattr(self.proc, "__aiter__", None)
        if aiter is None:
            raise RuntimeError("Call 'trio_as_aio(gen(*args))', not 'trio_as_aio(gen, *args)'")
        return run_trio_generator(self.loop, aiter())


@overload
def trio_as_aio(
    proc: Callable[P, Awaitable[T]], *, loop: asyncio.AbstractEventLoop | None = None
) -> Callable[P, asyncio.Future[T]]: ...
@overload
def trio_as_aio(
    proc: AbstractAsyncContextManager[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> AbstractAsyncContextManager[T]: ...
@overload
def trio_as_aio(
    proc: AsyncIterator[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> AsyncIterator[T]: ...
def trio_as_aio(proc: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> Any:
    """Wrap Trio-flavoured *proc* so asyncio code can ``await``/``async with``/``async for`` it.

    ``await trio_as_aio(fn)(*args)`` runs ``fn(*args)`` as a Trio task of *loop*
    (default: the current trio-asyncio loop) and evaluates to its result; the call returns
    an :class:`asyncio.Future`, so it can be used as a decorator and cancelled like one.
    Coroutine objects (``trio_as_aio(fn(*args))``) are not supported: Trio has no such
    objects in its API; use ``trio_as_aio(lambda: coro)()`` if you must.

    .. warning:: Entering and leaving a wrapped async context manager happen in two
       different Trio tasks; a context manager that opens a nursery will not work.

    Alias: ``trio_as_asyncio``.
    """
    return Trio_Asyncio_Wrapper(proc, loop=loop)


trio_as_asyncio = trio_as_aio

_shim_running: ContextVar[bool] = ContextVar("trio_asyncio_allow_asyncio", default=False)


@types.coroutine
def _drive_mixed(fn: Callable[..., Any], *args: Any) -> Generator[Any, Any, Any]:
    coro = fn(*args)
    if isinstance(coro, asyncio.Future):
        return (yield from run_aio_future(coro).__await__())
    send, value = coro.send, None
    while True:
        try:
            yielded = send(value)
        except StopIteration as stop:
            return stop.value
        try:
            if isinstance(yielded, asyncio.Future):
                value = yield from run_aio_future(yielded).__await__()
            elif yielded is None:
                # asyncio's bare yield (``asyncio.sleep(0)``): just let others run.
                value = yield from trio.lowlevel.checkpoint().__await__()  # type: ignore[func-returns-value]
            else:
                value = yield yielded
        except BaseException as exc:
            send, value = coro.throw, exc
        else:
            send = coro.send


async def allow_asyncio(fn: Callable[[Unpack[Ts]], Awaitable[T]], *args: Unpack[Ts]) -> T:
    """Run ``await fn(*args)`` so that *fn* may await Trio and asyncio code unmarked.

    Trio-flavoured. Every asyncio future *fn* awaits is waited for with
    :func:`run_aio_future`; everything else goes to Trio. Caveat: asyncio code inside sees
    :exc:`trio.Cancelled`, not :exc:`asyncio.CancelledError`, when cancelled.
    """
    if _shim_running.get():
        return await fn(*args)
    token = _shim_running.set(True)
    try:
        return await _drive_mixed(fn, *args)  # type: ignore[no-any-return]
    finally:
        _shim_running.reset(token)
