"""``TrioExecutor``: run blocking functions in threads, waited for from Trio."""

from __future__ import annotations

import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

# Why threads of our own and not Trio's (trio.to_thread.run_sync): Trio keeps its worker
# threads in a process-wide cache and retires an idle one only after 10 s, with no public
# way to make it go sooner. A loop's default executor must leave no thread behind once
# shut down (asyncio.run() joins stock asyncio's executor threads; suites that count
# threads after each test fail otherwise), so the threads are this executor's own
# (ThreadPoolExecutor's), joined by shutdown(wait=True). What Trio's threads gave is kept:
# the Trio limiter bounds how many jobs run at once (its token is held until the job ends,
# even when the waiting task was cancelled) and each job runs in a copy of the submitting
# task's context.

#: Pool size: never the bound (the limiter is), just a safety net against runaway growth.
_POOL_THREADS = 512


class TrioExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor whose jobs are awaited from Trio, bounded by a Trio limiter.

    Bases: :class:`concurrent.futures.ThreadPoolExecutor` (its threads run the jobs;
    :meth:`shutdown` with *wait* joins them).

    Pass it to :meth:`asyncio.loop.run_in_executor` of a trio-asyncio loop; it is the default
    executor of every trio-asyncio loop. ``submit`` is Trio-flavoured.

    :param limiter: a :class:`trio.CapacityLimiter` bounding the number of this executor's
        jobs that run at once; default: Trio's default thread limiter.
    :param thread_name_prefix: names of the threads (default ``"TrioExecutor"``).
    :param max_workers: if given and *limiter* is not, a new limiter with this many tokens.
    """

    def __init__(
        self,
        limiter: trio.CapacityLimiter | None = None,
        thread_name_prefix: str | None = None,
        max_workers: int | None = None,
    ) -> None:
        if limiter is None and max_workers is not None:
            limiter = trio.CapacityLimiter(max_workers)
        self._limiter = limiter
        super().__init__(
            max_workers=_POOL_THREADS, thread_name_prefix=thread_name_prefix or "TrioExecutor"
        )

    async def submit(self, func: Callable[..., T], *args: Any) -> T:  # type: ignore[override]
        """Run ``func(*args)`` in a thread and return its result (Trio-flavoured).

        Cancelling the calling Trio task before the job started keeps it from starting;
        once it runs, the cancellation takes effect at once and the job finishes in its
        thread unwaited (a thread cannot be interrupted), as with stock asyncio's
        ``run_in_executor``; :meth:`shutdown` with *wait* still waits for it.

        :raises RuntimeError: if the executor has been shut down.
        """
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        limiter = self._limiter or trio.to_thread.current_default_thread_limiter()
        token = trio.lowlevel.current_trio_token()
        context = contextvars.copy_context()
        # The token is held for the job, not for this task: it is given back when the job
        # ends (or is cancelled before it starts), even if this task stopped waiting.
        borrower = object()
        await limiter.acquire_on_behalf_of(borrower)
        done = trio.Event()

        def back_in_trio() -> None:
            limiter.release_on_behalf_of(borrower)
            done.set()

        def finished(_: object) -> None:
            try:
                token.run_sync_soon(back_in_trio)
            except trio.RunFinishedError:  # pragma: no cover  (the run is gone)
                pass

        try:
            job = concurrent.futures.ThreadPoolExecutor.submit(self, context.run, func, *args)
        except BaseException:
            limiter.release_on_behalf_of(borrower)
            raise
        job.add_done_callback(finished)
        try:
            await done.wait()
        except trio.Cancelled:
            # A job that has not started never will; one that runs is left to finish in
            # its thread, unwaited, as asyncio's run_in_executor futures do (waiting would
            # let a job that never returns hang the loop's close()).
            job.cancel()
            raise
        return job.result()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new jobs; with *wait*, wait for the jobs that started and join the threads.

        Jobs still waiting for the limiter are refused (``RuntimeError``).
        """
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
