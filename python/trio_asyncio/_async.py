"""``TrioEventLoop``: the asyncio loop that ``open_loop()`` runs inside a Trio task."""

from __future__ import annotations

from typing import Any

import trio

from ._base import BaseTrioEventLoop
from ._engine import LoopCore


class TrioEventLoop(BaseTrioEventLoop):
    """An asyncio event loop running inside Trio, created by :func:`open_loop`.

    Its callbacks run in one Trio task of the ``open_loop`` block; ``run_forever`` and
    ``run_until_complete`` are not available (use :func:`aio_as_trio` or
    :meth:`run_aio_coroutine`). An exception that reaches the default exception handler
    ends the ``open_loop`` block with that exception.
    """

    __slots__ = ("_stop_waiter",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_waiter: trio.Event | None = None

    def _attach(self, nursery: trio.Nursery) -> None:
        """Bind the loop to the current Trio run (called by ``open_loop``)."""
        if self._nursery is not None:
            raise RuntimeError("You can't enter a loop twice")
        self._bind_trio_run(nursery)
        self._set_owner_thread()
        self._adopt_trio_clock()

    def _mark_running(self) -> None:
        """Count the loop as running from now on; :meth:`_main_task` must follow."""
        self._stopped_event = trio.Event()
        self._begin_run()

    async def _main_task(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The Trio task that runs the loop's callbacks until :meth:`stop`.

        ``open_loop`` marks the loop running (:meth:`_mark_running`) and spawns this task
        with ``start_soon``: not with ``nursery.start()``, because a KeyboardInterrupt that
        reaches the caller while it waits in ``start()`` cancels the start, after which this
        shielded task would never be told to stop (Trio keeps it in the cancelled start's
        nursery, which the caller then waits for forever).
        """
        if not self.is_running():
            self._mark_running()
        task_status.started()
        try:
            # Shielded: once started, the loop keeps running callbacks until stop() is
            # called (open_loop's exit does that), so everything scheduled before stop()
            # runs, as asyncio promises.
            with trio.CancelScope(shield=True):
                await self._drive(set_running_loop=True)
        finally:
            self._end_run()
            self._stopped_event.set()
            waiter, self._stop_waiter = self._stop_waiter, None
            if waiter is not None:
                waiter.set()

    def stop(self, waiter: trio.Event | None = None) -> trio.Event:  # type: ignore[override]
        """Ask the loop to stop after the callbacks already queued have run.

        :param waiter: an event to set once the loop has stopped (a new one if omitted).
        :return: the event that is set once the loop has stopped.
        """
        if waiter is None:
            waiter = self._stop_waiter if self._stop_waiter is not None else trio.Event()
        elif waiter.is_set():
            waiter = trio.Event()
        if not self.is_running():
            waiter.set()
            return waiter
        self._stop_waiter = waiter
        LoopCore.stop(self)
        return waiter

    async def _main_loop_exit(self) -> None:
        """Stop the loop for good and release its Trio side (shielded)."""
        if self.is_closed():
            return
        with trio.CancelScope(shield=True):
            self.stop()
            await self.wait_stopped()
        self._unbind_trio_run()

    def _forward_base_exception(self, exc: BaseException) -> bool:
        # A KeyboardInterrupt/SystemExit from asyncio code ends the open_loop block (raised
        # in its nursery) while the loop keeps running callbacks, so that Trio code waiting
        # on asyncio futures is cancelled and unwinds instead of waiting forever.
        nursery = self._nursery
        if nursery is None:
            return False

        async def propagate() -> None:
            raise exc

        nursery.start_soon(propagate)
        return True

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log the error like asyncio, then raise it out of the enclosing ``open_loop``."""
        super().default_exception_handler(context)
        nursery = self._nursery
        if nursery is None:
            return  # the loop is gone (e.g. a __del__ reporting late): logging is all
        exc = context.get("exception")
        if exc is None:
            exc = RuntimeError(context.get("message") or "Unhandled error in event loop")

        async def propagate() -> None:
            raise exc

        nursery.start_soon(propagate)

    def run_forever(self) -> None:
        raise RuntimeError("This is not a sync loop: use 'await trio_asyncio.aio_as_trio(...)'")

    def run_until_complete(self, future: Any) -> Any:
        raise RuntimeError("This is not a sync loop: use 'await trio_asyncio.aio_as_trio(...)'")

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("You need to stop the loop before closing it")
        super().close()

    def __enter__(self) -> Any:
        raise RuntimeError("Use 'async with trio_asyncio.open_loop()', not 'with'.")

    def __exit__(self, *exc: object) -> None:
        raise RuntimeError("Use 'async with trio_asyncio.open_loop()', not 'with'.")

    def __aenter__(self) -> Any:
        raise RuntimeError("Use 'async with trio_asyncio.open_loop()'.")

    def __aexit__(self, *exc: object) -> Any:
        raise RuntimeError("Use 'async with trio_asyncio.open_loop()'.")
