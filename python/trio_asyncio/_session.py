"""An interactive session: one sync loop whose Trio run lives across top-level awaits.

Shared by the IPython extension (``_ipython``) and the console (``_repl``). Each piece of
top-level code (an IPython cell, a console statement) is a coroutine; :meth:`run` drives
it to the end in a new Trio task of the session's :class:`SyncTrioEventLoop`, under
:func:`allow_asyncio`, so it may await Trio and asyncio code alike. Between two pieces the
loop is stopped and its Trio run is suspended in the loop's fiber, with every Trio task
and asyncio task frozen where it was; the next piece resumes them all.

The session also keeps a Trio nursery open across pieces (:attr:`nursery`): tasks started
in it keep running in later pieces. If one of them raises, the error is reported to the
loop's exception handler and a new nursery replaces the failed one at the next piece.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from ._adapter import allow_asyncio
from ._factory import new_event_loop
from ._sync import SyncTrioEventLoop

T = TypeVar("T")


class InteractiveSession:
    """One sync loop and one long-lived Trio nursery for top-level ``await``."""

    def __init__(self, loop: SyncTrioEventLoop | None = None) -> None:
        self.loop = new_event_loop() if loop is None else loop
        self._nursery: trio.Nursery | None = None
        self._nursery_future: asyncio.Future[None] | None = None
        #: Called with the new nursery whenever one is opened (each piece starts with
        #: an open one).
        self.on_new_nursery: Callable[[trio.Nursery], None] | None = None
        self._close_requested = False
        self._current: asyncio.Future[Any] | None = None
        self._interrupted = False

    @property
    def nursery(self) -> trio.Nursery:
        """A Trio nursery that stays open across top-level pieces of code."""
        if self._nursery is None or self._nursery_future is None or self._nursery_future.done():
            self._open_nursery()
        assert self._nursery is not None
        return self._nursery

    def _open_nursery(self) -> None:
        loop = self.loop
        ready: asyncio.Future[trio.Nursery] = loop.create_future()

        async def host() -> None:
            async with trio.open_nursery() as nursery:
                ready.set_result(nursery)
                await trio.sleep_forever()

        future = loop.trio_as_future(host)
        future.add_done_callback(self._nursery_done)
        self._nursery_future = future
        self._nursery = loop.run_until_complete(ready)
        if self.on_new_nursery is not None:
            self.on_new_nursery(self._nursery)

    def _nursery_done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.loop.call_exception_handler({
                "message": "A task in the session's Trio nursery failed; "
                "the nursery was closed and a new one opens with the next statement",
                "exception": exc,
            })

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run top-level *coro* to its end on the loop and return its result.

        Synchronous. *coro* runs in a new Trio task under :func:`allow_asyncio`; the
        loop runs until it is done, and with it every Trio and asyncio task of the
        session. In the main thread, SIGINT (Ctrl-C) meanwhile cancels *coro* at its next
        ``await`` and this raises :exc:`KeyboardInterrupt`; the session goes on.
        """
        if self._nursery_future is None or self._nursery_future.done():
            self._open_nursery()

        async def piece() -> T:
            return await coro

        loop = self.loop
        future = loop.trio_as_future(allow_asyncio, piece)
        self._current = future
        self._interrupted = False
        catch_sigint = (
            threading.current_thread() is threading.main_thread()
            and signal.SIGINT not in loop._signal_handlers
        )
        if catch_sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            return loop.run_until_complete(future)
        except asyncio.CancelledError:
            if self._interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            self._current = None
            if catch_sigint and not loop.is_closed():
                handle = loop._signal_handlers.get(signal.SIGINT)
                if getattr(handle, "_callback", None) == self._on_sigint:
                    loop.remove_signal_handler(signal.SIGINT)  # not one the code added
            if not future.done():  # interrupted: do not leave the piece half-run
                future.cancel()
            if self._close_requested:
                self.close()

    @property
    def interrupted(self) -> bool:
        """Whether the running (or last) piece was cancelled by SIGINT."""
        return self._interrupted

    def _on_sigint(self) -> None:
        self._interrupted = True
        self.cancel_current()

    def cancel_current(self) -> None:
        """Cancel the piece of code that is running, if any (at its next ``await``)."""
        if self._current is not None:
            self._current.cancel()

    def close(self) -> None:
        """Cancel the session's tasks (asyncio and Trio) and close the loop.

        Called from code the session runs, it takes effect when that piece ends.
        """
        loop = self.loop
        if loop.is_closed():
            return
        if loop.is_running():
            self._close_requested = True
            return
        self._close_requested = False
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if self._nursery is not None and self._nursery_future is not None:
                self._nursery_future.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            self._nursery = None
            loop.close()
