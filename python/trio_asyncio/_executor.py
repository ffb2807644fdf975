"""``TrioExecutor``: run blocking functions in Trio's worker threads."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class TrioExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each job in a Trio worker thread.

    Bases: :class:`concurrent.futures.ThreadPoolExecutor` (for ``isinstance`` checks only:
    no thread pool of its own is created).

    Pass it to :meth:`asyncio.loop.run_in_executor` of a trio-asyncio loop; it is the default
    executor of every trio-asyncio loop. ``submit`` is Trio-flavoured.

    :param limiter: a :class:`trio.CapacityLimiter` bounding the number of threads used by
        this executor's jobs; default: Trio's global thread limiter.
    :param thread_name_prefix: accepted for compatibility, unused.
    :param max_workers: if given and *limiter* is not, a new limiter with this many tokens.
    """

    def __init__(
        self,
        limiter: trio.CapacityLimiter | None = None,
        thread_name_prefix: str | None = None,
        max_workers: int | None = None,
    ) -> None:
        # Deliberately not calling ThreadPoolExecutor.__init__: no pool, no threads.
        self._running = True
        self._jobs = 0  # submitted and not finished; shutdown(wait=True) waits for 0
        self._idle = threading.Condition()
        if limiter is None and max_workers is not None:
            limiter = trio.CapacityLimiter(max_workers)
        self._limiter = limiter

    async def submit(self, func: Callable[..., T], *args: Any) -> T:  # type: ignore[override]
        """Run ``func(*args)`` in a Trio worker thread and return its result (Trio-flavoured).

        :raises RuntimeError: if the executor has been shut down.
        """
        if not self._running:
            raise RuntimeError("cannot schedule new futures after shutdown")
        started = False

        def job() -> T:
            nonlocal started
            started = True
            try:
                return func(*args)
            finally:
                self._job_done()

        with self._idle:
            self._jobs += 1
        try:
            return await trio.to_thread.run_sync(job, limiter=self._limiter)
        finally:
            if not started:  # cancelled before a thread picked it up
                self._job_done()

    def _job_done(self) -> None:
        with self._idle:
            self._jobs -= 1
            if not self._jobs:
                self._idle.notify_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new jobs; with *wait*, block until the jobs submitted so far finish.

        There is no pool to tear down: the threads are Trio's. *cancel_futures* is
        ignored. Waiting for jobs still queued for a thread needs the loop's Trio run to
        make progress, so call it with *wait* from another thread (as
        ``loop.shutdown_default_executor()`` does), not from the loop's own thread.
        """
        self._running = False
        if wait:
            with self._idle:
                while self._jobs:
                    self._idle.wait()
