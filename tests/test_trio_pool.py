"""Trio jobs of a loop run by resident worker tasks (``_trio_pool``): what each job keeps."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
import sniffio
import trio

import trio_asyncio
from trio_asyncio import trio_as_aio

var: contextvars.ContextVar[str] = contextvars.ContextVar("test_trio_pool_var", default="unset")


def run_aio(fn: Any) -> Any:
    async def main() -> Any:
        async with trio_asyncio.open_loop() as loop:
            return await loop.run_aio_coroutine(fn())

    return trio.run(main)


def test_sequential_jobs_reuse_a_worker_but_not_its_context() -> None:
    async def job(tag: str) -> tuple[str, object, str]:
        seen = var.get()
        var.set(f"set by {tag}")
        return seen, trio.lowlevel.current_task(), sniffio.current_async_library()

    async def main() -> list[tuple[str, object, str]]:
        results = []
        for tag in ("a", "b", "c"):
            var.set(f"caller before {tag}")
            results.append(await trio_as_aio(job)(tag))
            assert var.get() == f"caller before {tag}"  # the job's set() stays in the job
        return results

    results = run_aio(main)
    # Each job saw the caller's value at call time, never an earlier job's.
    assert [seen for seen, _, _ in results] == [
        "caller before a", "caller before b", "caller before c",
    ]
    assert {library for _, _, library in results} == {"trio"}
    # The jobs did run in one resident task (what this test is about).
    assert len({id(task) for _, task, _ in results}) == 1


def test_concurrent_blocking_jobs_each_get_a_worker() -> None:
    async def main() -> list[int]:
        arrived = 0
        all_here = trio.Event()

        async def job(i: int) -> int:
            nonlocal arrived
            arrived += 1
            if arrived == 5:
                all_here.set()
            await all_here.wait()  # deadlocks if a job waits behind another one
            return i

        return await asyncio.gather(*(trio_as_aio(job)(i) for i in range(5)))

    assert run_aio(main) == [0, 1, 2, 3, 4]


def test_worker_serves_jobs_after_a_cancelled_and_a_failed_job() -> None:
    async def main() -> tuple[int, int]:
        started = asyncio.Event()

        async def blocked() -> None:
            started.set()  # asyncio event: set from Trio, it only queues a wake-up
            await trio.sleep_forever()

        fut = trio_as_aio(blocked)()
        await started.wait()
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut

        async def fails() -> None:
            await trio.sleep(0)
            raise KeyError("job")

        with pytest.raises(KeyError, match="job"):
            await trio_as_aio(fails)()

        async def add(a: int, b: int) -> int:
            await trio.sleep(0)
            return a + b

        return await trio_as_aio(add)(1, 2), await trio_as_aio(add)(3, 4)

    assert run_aio(main) == (3, 7)


def test_job_cancel_scope_is_its_own() -> None:
    # A job cancelled through its future leaves the worker's later jobs uncancelled, and a
    # job's own cancel scope works inside the worker.
    async def main() -> str:
        async def cancels_itself() -> str:
            with trio.move_on_after(0):
                await trio.sleep_forever()
            await trio.sleep(0)
            return "moved on"

        return await trio_as_aio(cancels_itself)()

    assert run_aio(main) == "moved on"


def test_long_chain_of_instant_jobs_lets_other_trio_tasks_run() -> None:
    async def noop() -> None:
        pass

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.sleep(0)

        async def chain() -> int:
            for _ in range(500):
                await trio_as_aio(noop)()
            return ticks

        async with trio_asyncio.open_loop() as loop:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.sleep(0)
                start = ticks
                result = await loop.run_aio_coroutine(chain())
                nursery.cancel_scope.cancel()
            return result - start

    assert trio.run(main) > 5


def test_loop_close_cancels_parked_workers() -> None:
    async def job() -> int:
        await trio.sleep(0)
        return 1

    async def main() -> int:
        with trio.fail_after(10):  # the block must not wait for the parked workers
            async with trio_asyncio.open_loop() as loop:
                # Several workers, then all parked when the block ends.
                results = await loop.run_aio_coroutine(
                    asyncio.gather(*(trio_as_aio(job)() for _ in range(3)))
                )
        return sum(results)

    assert trio.run(main) == 3


def test_sync_loop_jobs_run_in_workers_too() -> None:
    async def job(x: int) -> tuple[int, str]:
        await trio.sleep(0)
        return x * 2, var.get()

    loop = asyncio.new_event_loop()
    try:
        for i in range(3):
            var.set(f"v{i}")
            assert loop.run_until_complete(trio_as_aio(job, loop=loop)(i)) == (2 * i, f"v{i}")
    finally:
        loop.close()


def test_crossings_do_not_wake_the_parked_driver() -> None:
    # The calling Trio task runs the work it queues itself (_claim_driver + _drive_inline):
    # no wake-up write to the poller per crossing, and no poll to consume one.
    async def trio_noop() -> None:
        pass

    async def aio_noop() -> None:
        pass

    async def main() -> tuple[int, int]:
        async with trio_asyncio.open_loop() as loop:
            await trio_asyncio.aio_as_trio(aio_noop)()  # warm-up: the driver parks
            await trio.sleep(0.01)
            before = loop.statistics()
            for _ in range(50):
                await trio_asyncio.aio_as_trio(aio_noop)()

            async def chain() -> None:
                for _ in range(50):
                    await trio_as_aio(trio_noop)()

            await trio_asyncio.aio_as_trio(chain)()
            after = loop.statistics()
            return after.wakeups - before.wakeups, after.polls - before.polls

    wakeups, polls = trio.run(main)
    assert wakeups <= 5, wakeups
    assert polls <= 20, polls


def test_cancel_after_a_jobs_last_checkpoint_does_not_reach_the_next_job() -> None:
    # The worker's cancel scope is shared by its jobs: a cancel() that lands after the job's
    # last checkpoint must not cancel the next job the same worker runs.
    async def main() -> tuple[str, str]:
        holder: list[asyncio.Future[str]] = []

        async def cancels_own_future_then_returns() -> str:
            await trio.sleep(0)
            assert holder[0].cancel()
            return "finished anyway"  # no checkpoint after the cancel

        async def next_job() -> str:
            await trio.sleep(0)  # Cancelled here if the shared scope were still cancelled
            return "next ran"

        fut = trio_as_aio(cancels_own_future_then_returns)()
        holder.append(fut)
        try:
            first = await fut
        except asyncio.CancelledError:
            first = "cancelled"
        return first, await trio_as_aio(next_job)()

    first, second = run_aio(main)
    assert first in ("finished anyway", "cancelled")
    assert second == "next ran"
