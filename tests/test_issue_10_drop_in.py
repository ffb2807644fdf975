"""Issue 10: what a user swapping trio-asyncio 0.16 for this package hit.

Each test failed before the fix it names; trio-asyncio 0.16's own suite (the referee in
scripts/conformance-016.sh) covers the rest.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_asyncio
from trio_asyncio._policy import TrioPolicy
from trio_asyncio._sync import SyncTrioEventLoop


async def _trio_answer() -> int:
    await trio.sleep(0)
    return 42


# ---------------------------------------------------------------------------------------
# run_trio / run_trio_task / current_loop inside asyncio code on the sync loop
# ---------------------------------------------------------------------------------------


async def _use_trio_from_asyncio() -> tuple[Any, int]:
    loop = asyncio.get_running_loop()
    assert trio_asyncio.current_loop.get() is loop
    done = trio.Event()

    async def background() -> None:
        done.set()
        await trio.sleep_forever()

    handle = trio_asyncio.run_trio_task(background)
    answer = await trio_asyncio.run_trio(_trio_answer)
    await trio_asyncio.trio_as_aio(done.wait)()
    handle.cancel()
    return loop, answer


def test_issue_10_run_trio_under_run_until_complete() -> None:
    loop = asyncio.new_event_loop()
    try:
        seen, answer = loop.run_until_complete(_use_trio_from_asyncio())
        assert seen is loop and answer == 42
    finally:
        loop.close()


def test_issue_10_run_trio_under_asyncio_run() -> None:
    seen, answer = asyncio.run(_use_trio_from_asyncio())
    assert isinstance(seen, SyncTrioEventLoop) and answer == 42


def test_issue_10_run_trio_under_runner() -> None:
    with asyncio.Runner() as runner:
        first = runner.run(_use_trio_from_asyncio())
        second = runner.run(_use_trio_from_asyncio())
    assert first[0] is second[0]


def test_issue_10_run_trio_in_a_plain_callback() -> None:
    # A callback (no task, no context of ours) still finds the running loop.
    loop = asyncio.new_event_loop()
    try:
        fut: asyncio.Future[asyncio.Future[int]] = loop.create_future()
        loop.call_soon(lambda: fut.set_result(trio_asyncio.run_trio(_trio_answer)))
        inner = loop.run_until_complete(fut)
        assert loop.run_until_complete(inner) == 42
    finally:
        loop.close()


def test_issue_10_run_trio_in_ipython_cell() -> None:
    pytest.importorskip("IPython")
    code = textwrap.dedent(
        """
        import trio_asyncio
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell("import trio, trio_asyncio")
        result = shell.run_cell(
            "async def f():\\n    return 6 * 7\\n"
            "x = await trio_asyncio.run_trio(f)\\n"
            "cl = trio_asyncio.current_loop.get() is not None"
        )
        result.raise_error()
        print(shell.user_ns["x"], shell.user_ns["cl"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["42", "True"]


# ---------------------------------------------------------------------------------------
# Misuse errors say what is going on and what to do
# ---------------------------------------------------------------------------------------


def test_issue_10_open_loop_inside_asyncio_run() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop():
            pass  # pragma: no cover

    with pytest.raises(RuntimeError, match=r"asyncio code running on .*SyncTrioEventLoop.*run_trio"):
        asyncio.run(main())


def test_issue_10_open_loop_outside_trio() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop():
            pass  # pragma: no cover

    coro = main()
    with pytest.raises(RuntimeError, match=r"open_loop\(\) must be used in Trio code"):
        coro.send(None)
    coro.close()


def test_issue_10_not_in_loop_message_outside_everything() -> None:
    with pytest.raises(RuntimeError, match="You are not within a trio_asyncio loop: no event loop is running"):
        trio_asyncio.run_trio(_trio_answer)


def test_issue_10_not_in_loop_message_in_trio() -> None:
    async def main() -> None:
        trio_asyncio.run_trio_task(_trio_answer)

    with pytest.raises(RuntimeError, match="this Trio task has none.*open_loop"):
        trio.run(main)


def test_issue_10_not_in_loop_message_on_a_foreign_loop() -> None:
    async def main() -> None:
        trio_asyncio.run_trio(_trio_answer)

    loop = asyncio.SelectorEventLoop()
    try:
        with pytest.raises(RuntimeError, match="SelectorEventLoop, which trio_asyncio did not create.*IPython"):
            loop.run_until_complete(main())
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------
# Far timers on a sync loop that has not started Trio
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [math.inf, 1e10, 30 * 86400.0])
def test_issue_10_far_timer_while_waiting_for_a_thread(delay: float) -> None:
    loop = asyncio.new_event_loop()
    try:

        async def main() -> str:
            parked = asyncio.ensure_future(asyncio.sleep(delay))
            fut = loop.create_future()
            timer = threading.Timer(0.05, loop.call_soon_threadsafe, (fut.set_result, "woken"))
            timer.start()
            try:
                return await fut
            finally:
                timer.join()
                parked.cancel()

        assert loop.run_until_complete(main()) == "woken"
    finally:
        loop.close()


def test_issue_10_far_timer_inside_trio_run() -> None:
    loop = asyncio.new_event_loop()
    try:

        async def main() -> int:
            parked = asyncio.ensure_future(asyncio.sleep(math.inf))
            try:
                return await loop.trio_as_future(_trio_answer)
            finally:
                parked.cancel()

        assert loop.run_until_complete(main()) == 42
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------
# Trio tasks cancelled from asyncio code; close() returns
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("started_trio_first", [False, True])
@pytest.mark.parametrize("yield_before_cancel", [0, 1, 3])
def test_issue_10_cancel_trio_task_handle_then_close(started_trio_first: bool, yield_before_cancel: int) -> None:
    loop = asyncio.new_event_loop()
    if started_trio_first:
        assert loop.run_until_complete(loop.trio_as_future(_trio_answer)) == 42

    async def main() -> bool:
        handle = loop.run_trio_task(trio.sleep_forever)
        for _ in range(yield_before_cancel):
            await asyncio.sleep(0)
        handle.cancel()
        await asyncio.sleep(0)
        return handle.cancelled()

    assert loop.run_until_complete(main())
    loop.close()
    assert loop.is_closed()


@pytest.mark.parametrize("waits_on", ["sleep", "event", "sleep_forever"])
@pytest.mark.parametrize("cancel_from", ["asyncio code", "between runs"])
def test_issue_10_cancel_started_trio_task_from_caller_side(waits_on: str, cancel_from: str) -> None:
    loop = asyncio.new_event_loop()
    seen: list[str] = []
    running = loop.create_future()

    async def trio_task() -> None:
        running.set_result(None)
        try:
            if waits_on == "sleep":
                await trio.sleep(100)
            elif waits_on == "event":
                await trio.Event().wait()
            else:
                await trio.sleep_forever()
        except trio.Cancelled:
            seen.append("cancelled")
            raise

    async def start() -> Any:
        handle = loop.run_trio_task(trio_task)
        await running  # the task started; it blocks in the loop's Trio run
        return handle

    async def cancel(handle: Any) -> None:
        handle.cancel()  # on the caller's stack: outside the loop's Trio run

    async def settle() -> None:
        await asyncio.sleep(0.01)

    try:
        handle = loop.run_until_complete(start())
        if cancel_from == "asyncio code":
            loop.run_until_complete(cancel(handle))
        else:
            handle.cancel()
        loop.run_until_complete(settle())
        assert seen == ["cancelled"]
    finally:
        loop.close()


def test_issue_10_session_fixture_cancels_trio_task_at_teardown(tmp_path: Path) -> None:
    pytest.importorskip("pytest_asyncio")
    (tmp_path / "test_session.py").write_text(textwrap.dedent(
        """
        import asyncio
        import pytest
        import pytest_asyncio
        import trio
        import trio_asyncio

        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def trio_side():
            handle = trio_asyncio.run_trio_task(trio.sleep_forever)
            yield handle
            handle.cancel()

        @pytest.mark.asyncio(loop_scope="session")
        async def test_one(trio_side):
            await asyncio.sleep(0)
            assert trio_asyncio.current_loop.get() is asyncio.get_running_loop()

        @pytest.mark.asyncio(loop_scope="session")
        async def test_two(trio_side):
            assert await trio_asyncio.run_trio(trio.sleep, 0) is None
        """
    ))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = session\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "asyncio",
         "-p", "no:trio", "test_session.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


# ---------------------------------------------------------------------------------------
# open_loop: one exception group, cancellation, stop(), the policy outside Trio
# ---------------------------------------------------------------------------------------


def test_issue_10_body_error_is_one_group() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop():
            raise ValueError("from the body")

    with pytest.raises(BaseExceptionGroup) as info:
        trio.run(main)
    assert [type(e) for e in info.value.exceptions] == [ValueError]


def test_issue_10_loop_error_is_one_group() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            loop.call_soon(lambda: 1 / 0)
            await trio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as info:
        trio.run(main)
    assert [type(e) for e in info.value.exceptions] == [ZeroDivisionError]


def test_issue_10_cancelled_block_without_checkpoint_ends_normally() -> None:
    async def main() -> bool:
        with trio.CancelScope() as scope:
            scope.cancel()
            async with trio_asyncio.open_loop():
                pass
        return scope.cancelled_caught

    assert trio.run(main) is False


def test_issue_10_cancellation_cuts_asyncgen_finalisation_short() -> None:
    finalised: list[str] = []

    async def agen() -> Any:
        try:
            yield 1
        finally:
            try:
                await asyncio.sleep(100)
                finalised.append("slept")
            except asyncio.CancelledError:
                finalised.append("cancelled")

    holder: list[Any] = []

    async def first_item() -> None:
        gen = agen()
        holder.append(gen)
        await gen.asend(None)

    async def main() -> float:
        start = trio.current_time()
        with trio.move_on_after(1):
            async with trio_asyncio.open_loop() as loop:
                await loop.run_aio_coroutine(first_item())
        return trio.current_time() - start

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == 1
    assert finalised == ["cancelled"]


@pytest.mark.parametrize("times", range(4))
def test_issue_10_block_cancelled_before_exit_still_starts_finalisers(times: int) -> None:
    finalised: list[str] = []
    holder: list[Any] = []

    async def agen() -> Any:
        try:
            yield 1
        finally:
            try:
                await asyncio.sleep(10)
                finalised.append("slept")
            except asyncio.CancelledError:
                finalised.append("cancelled")

    async def first_item() -> None:
        gen = agen()
        holder.append(gen)
        await gen.asend(None)

    async def main() -> bool:
        with trio.CancelScope() as scope:
            async with trio_asyncio.open_loop() as loop:
                await loop.run_aio_coroutine(first_item())
                # Keep the loop busy (its driver not parked) when the block exits.
                spins = [times * 50]

                def spin() -> None:
                    if spins[0] > 0:
                        spins[0] -= 1
                        loop.call_soon(spin)

                loop.call_soon(spin)
                scope.cancel()
        return scope.cancelled_caught

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert finalised == ["cancelled"]


def test_issue_10_stop_runs_callbacks_queued_before_it() -> None:
    async def main() -> list[str]:
        result: list[str] = []
        async with trio_asyncio.open_loop() as loop:

            def callback() -> None:
                result.append("ran")
                loop.stop()  # a second stop() while one is pending

            loop.call_soon(callback)
            await loop.stop().wait()
        return result

    assert trio.run(main) == ["ran"]


def test_issue_10_trio_task_group_keeps_its_shape() -> None:
    async def trio_task() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise ValueError("hi")

    async def main() -> BaseException | None:
        async with trio_asyncio.open_loop() as loop:
            fut = loop.trio_as_future(trio_task)
            await trio.testing.wait_all_tasks_blocked()
            return fut.exception()

    error = trio.run(main)
    assert isinstance(error, ExceptionGroup)
    assert [type(e) for e in error.exceptions] == [ValueError]


def test_issue_10_policy_outside_trio_is_not_trio_policy() -> None:
    policy = asyncio.get_event_loop_policy()
    assert not isinstance(policy, TrioPolicy)
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, SyncTrioEventLoop)
        policy.set_event_loop(loop)
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()

    async def inside() -> bool:
        return isinstance(asyncio.get_event_loop_policy(), TrioPolicy)

    assert trio.run(inside)
    asyncio.set_event_loop_policy(policy)  # setting it back means "the default"
    assert asyncio.get_event_loop_policy() is policy


# ---------------------------------------------------------------------------------------
# The default executor leaves no thread behind
# ---------------------------------------------------------------------------------------


def test_issue_10_asyncio_run_joins_default_executor_threads() -> None:
    async def main() -> list[threading.Thread]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(
            *(loop.run_in_executor(None, threading.current_thread) for _ in range(4))
        ))

    workers = asyncio.run(main())
    assert threading.current_thread() not in workers
    assert [t.name for t in workers if t.is_alive()] == []


def test_issue_10_trio_executor_shutdown_wait_joins_its_threads() -> None:
    async def main() -> threading.Thread:
        executor = trio_asyncio.TrioExecutor()
        assert await executor.submit(pow, 3, 2) == 9
        worker = await executor.submit(threading.current_thread)
        await trio.to_thread.run_sync(executor.shutdown, True)
        with pytest.raises(RuntimeError, match="shutdown"):
            await executor.submit(pow, 3, 2)
        return worker

    worker = trio.run(main)
    assert worker is not threading.current_thread()
    assert not worker.is_alive()


def test_issue_10_trio_executor_honours_its_limiter() -> None:
    limiter = trio.CapacityLimiter(2)
    running = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Event()

    def job() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        executor = trio_asyncio.TrioExecutor(limiter=limiter)
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(executor.submit, job)
        executor.shutdown(wait=True)

    trio.run(main)
    assert most == 2


def test_issue_10_trio_executor_cancel_before_start_and_while_running() -> None:
    limiter = trio.CapacityLimiter(1)
    gate = threading.Event()

    async def main() -> list[str]:
        executor = trio_asyncio.TrioExecutor(limiter=limiter)
        seen: list[str] = []

        async def blocker() -> None:
            seen.append(await executor.submit(lambda: (gate.wait(20), "finished")[1]))

        async def queued() -> None:
            with trio.CancelScope() as scope:
                scope.cancel()
                await executor.submit(seen.append, "ran")  # pragma: no cover
            seen.append("queued cancelled")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocker)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(queued)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()  # the running job is left to finish, unwaited
        seen.append("left")
        gate.set()
        await trio.to_thread.run_sync(executor.shutdown, True)  # joins it
        return seen

    assert trio.run(main) == ["queued cancelled", "left"]


def test_issue_10_close_does_not_wait_for_a_running_executor_job() -> None:
    gate = threading.Event()
    loop = asyncio.new_event_loop()

    async def main() -> None:
        job = loop.run_in_executor(None, gate.wait, 60)
        await asyncio.sleep(0.01)
        job.cancel()

    try:
        loop.run_until_complete(main())
        loop.close()  # returns although the job still runs
        assert loop.is_closed() and not gate.is_set()
    finally:
        gate.set()
