"""The sync loop's run/stop life cycle, against stock asyncio where behaviour is shared."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
import trio

import trio_asyncio
from trio_asyncio._sync import SyncTrioEventLoop

from conftest import open_fds, rss_kib


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def test_run_until_complete_returns_and_raises(any_loop: asyncio.AbstractEventLoop) -> None:
    assert any_loop.run_until_complete(add(1, 2)) == 3

    async def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        any_loop.run_until_complete(boom())
    assert any_loop.run_until_complete(add(2, 2)) == 4


def test_many_cycles_on_one_loop(any_loop: asyncio.AbstractEventLoop) -> None:
    for i in range(10_000):
        assert any_loop.run_until_complete(add(i, 1)) == i + 1


def test_run_forever_and_stop_cycles(any_loop: asyncio.AbstractEventLoop) -> None:
    for i in range(1000):
        seen: list[int] = []
        any_loop.call_soon(seen.append, i)
        any_loop.call_soon(any_loop.stop)
        any_loop.run_forever()
        assert seen == [i]


def test_stop_before_run_forever_runs_one_iteration(any_loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []

    def first() -> None:
        calls.append("first")
        any_loop.call_soon(calls.append, "second")

    any_loop.call_soon(first)
    any_loop.stop()
    any_loop.run_forever()
    assert calls == ["first"]
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert calls == ["first", "second"]


def test_stop_inside_run_until_complete(any_loop: asyncio.AbstractEventLoop) -> None:
    async def stopper() -> None:
        any_loop.stop()
        await asyncio.sleep(0.01)

    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        any_loop.run_until_complete(stopper())
    # The loop stays usable, and the abandoned task finishes on the next run.
    assert any_loop.run_until_complete(add(1, 1)) == 2


def test_nested_run_is_refused(any_loop: asyncio.AbstractEventLoop) -> None:
    async def nested() -> None:
        coro = add(1, 1)
        try:
            any_loop.run_until_complete(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="already running"):
        any_loop.run_until_complete(nested())


def test_close_while_running_is_refused(any_loop: asyncio.AbstractEventLoop) -> None:
    async def closer() -> None:
        any_loop.close()

    with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
        any_loop.run_until_complete(closer())


def test_state_queries(any_loop: asyncio.AbstractEventLoop) -> None:
    assert not any_loop.is_running()
    assert not any_loop.is_closed()

    async def probe() -> bool:
        return any_loop.is_running() and asyncio.get_running_loop() is any_loop

    assert any_loop.run_until_complete(probe())
    assert not any_loop.is_running()
    any_loop.close()
    assert any_loop.is_closed()
    any_loop.close()  # idempotent
    coro = add(1, 1)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.call_soon(print)


def test_time_before_first_run_is_monotonic(sync_loop: SyncTrioEventLoop) -> None:
    before = time.monotonic()
    t = sync_loop.time()
    after = time.monotonic()
    assert before <= t <= after


def test_timers_across_runs(any_loop: asyncio.AbstractEventLoop) -> None:
    fired: list[str] = []
    any_loop.call_later(0.02, fired.append, "late")
    any_loop.call_later(0.01, fired.append, "early")
    any_loop.run_until_complete(asyncio.sleep(0.05))
    assert fired == ["early", "late"]


def start_trio_run(loop: SyncTrioEventLoop) -> None:
    """Make the sync loop start its Trio run (on its fiber): run some Trio code on it."""
    loop.run_until_complete(loop.trio_as_future(trio.sleep, 0.0001))
    assert loop._fiber is not None


def test_asyncio_only_runs_need_no_fiber(sync_loop: SyncTrioEventLoop) -> None:
    for i in range(100):
        assert sync_loop.run_until_complete(add(i, 1)) == i + 1
    sync_loop.call_soon(sync_loop.stop)
    sync_loop.run_forever()
    assert sync_loop.run_until_complete(asyncio.sleep(0.001, "waited")) == "waited"
    assert sync_loop._fiber is None  # everything ran and waited on the caller's stack
    start_trio_run(sync_loop)
    # From now on the loop waits inside its Trio run.
    assert sync_loop.run_until_complete(asyncio.sleep(0.001, "waited")) == "waited"


def test_loop_run_in_a_thread_then_closed_by_main_thread() -> None:
    for use_trio in (False, True):
        loop = asyncio.new_event_loop()

        def worker() -> None:
            if use_trio:
                start_trio_run(loop)  # type: ignore[arg-type]
            loop.run_forever()

        thread = threading.Thread(target=worker)
        thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.sleep(0.001, "in thread"), loop)
        assert fut.result(10) == "in thread"
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        assert not thread.is_alive()
        # Run again and close from the main thread (a Trio run left on the worker's fiber
        # is abandoned: fibers only resume on their own thread).
        assert loop.run_until_complete(asyncio.sleep(0.001, "main")) == "main"
        loop.close()


def test_callbacks_while_stopped_need_no_fiber(sync_loop: SyncTrioEventLoop) -> None:
    seen: list[int] = []
    sync_loop.call_soon(seen.append, 1)
    sync_loop.call_later(0, seen.append, 2)
    task = sync_loop.create_task(add(1, 2))
    assert sync_loop._fiber is None  # nothing started the Trio run yet
    sync_loop.run_until_complete(task)
    assert seen == [1, 2]
    assert task.result() == 3


def test_trio_run_between_runs(sync_loop: SyncTrioEventLoop) -> None:
    assert sync_loop.run_until_complete(add(1, 1)) == 2
    # The loop's Trio run is suspended and invisible here.
    with pytest.raises(RuntimeError):
        trio.lowlevel.current_task()

    async def trio_main() -> int:
        await trio.sleep(0.001)
        return 7

    assert trio.run(trio_main) == 7
    assert sync_loop.run_until_complete(add(2, 2)) == 4


def test_several_loops_interleaved() -> None:
    loops = [SyncTrioEventLoop() for _ in range(20)]
    try:
        for round_ in range(5):
            for i, loop in enumerate(loops):
                assert loop.run_until_complete(add(i, round_)) == i + round_
    finally:
        for loop in loops:
            loop.close()


def test_loop_created_and_closed_inside_another_loops_callback(
    sync_loop: SyncTrioEventLoop,
) -> None:
    async def outer() -> str:
        inner = asyncio.new_event_loop()
        try:
            assert isinstance(inner, SyncTrioEventLoop)
            coro = add(1, 1)
            with pytest.raises(RuntimeError, match="another loop is running"):
                inner.run_until_complete(coro)
            coro.close()
        finally:
            inner.close()
        return "ok"

    assert sync_loop.run_until_complete(outer()) == "ok"


def test_loop_run_in_a_thread_from_a_callback(sync_loop: SyncTrioEventLoop) -> None:
    def in_thread() -> int:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(add(20, 22))
        finally:
            loop.close()

    async def outer() -> int:
        return await sync_loop.run_in_executor(None, in_thread)

    assert sync_loop.run_until_complete(outer()) == 42


def test_trio_code_on_the_sync_loop(sync_loop: SyncTrioEventLoop) -> None:
    async def trio_part(x: int) -> int:
        await trio.sleep(0.001)
        return x * 2

    async def aio_part() -> int:
        return await trio_asyncio.trio_as_aio(trio_part)(21)

    assert sync_loop.run_until_complete(aio_part()) == 42
    # trio_as_future called while the loop is stopped starts when it runs.
    fut = sync_loop.trio_as_future(trio_part, 5)
    assert sync_loop.run_until_complete(fut) == 10


def test_call_soon_threadsafe_from_threads(sync_loop: SyncTrioEventLoop) -> None:
    n_threads, per_thread = 8, 2000
    seen: list[int] = []
    done = sync_loop.create_future()

    def note(i: int) -> None:
        seen.append(i)
        if len(seen) == n_threads * per_thread:
            done.set_result(None)

    def worker(base: int) -> None:
        for i in range(per_thread):
            sync_loop.call_soon_threadsafe(note, base + i)

    threads = [threading.Thread(target=worker, args=(t * per_thread,)) for t in range(n_threads)]

    async def main() -> None:
        for t in threads:
            t.start()
        await done

    sync_loop.run_until_complete(main())
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(n_threads * per_thread))


def test_reader_on_socketpair(any_loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        got = any_loop.create_future()

        def on_readable() -> None:
            got.set_result(a.recv(100))
            any_loop.remove_reader(a)

        any_loop.add_reader(a, on_readable)
        any_loop.call_later(0.01, b.send, b"hello")
        assert any_loop.run_until_complete(got) == b"hello"
    finally:
        a.close()
        b.close()


def test_unclosed_loop_warns_and_releases_its_fiber() -> None:
    from trio_asyncio._engine import fiber_statistics

    before = fiber_statistics()["live"]
    loop = SyncTrioEventLoop()
    start_trio_run(loop)
    assert fiber_statistics()["live"] == before + 1
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()
    assert fiber_statistics()["live"] == before


def test_no_fd_leak_over_loop_cycles() -> None:
    for _ in range(5):  # warm-up: Trio's lazily created objects
        loop = asyncio.new_event_loop()
        loop.run_until_complete(add(1, 1))
        loop.close()
    gc.collect()
    before = open_fds()
    for i in range(200):
        loop = asyncio.new_event_loop()
        if i % 2:
            start_trio_run(loop)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0.0001))
        loop.close()
        loop2 = asyncio.new_event_loop()  # never run
        loop2.close()
    gc.collect()
    assert open_fds() == before


def test_memory_flat_over_many_runs(sync_loop: SyncTrioEventLoop) -> None:
    # 100k runs; 20k under -X dev, whose debug allocator and asyncio debug mode make each run
    # several times slower (at 20k runs a leak of ~100 bytes per run still fails the bound).
    runs = 20_000 if sys.flags.dev_mode else 100_000
    for _ in range(5000):
        sync_loop.run_until_complete(add(1, 1))
    gc.collect()
    before = rss_kib()
    for _ in range(runs):
        sync_loop.run_until_complete(add(1, 1))
    gc.collect()
    assert rss_kib() - before < 2048


def test_memory_flat_over_loop_create_close() -> None:
    for _ in range(500):
        loop = asyncio.new_event_loop()
        start_trio_run(loop)  # type: ignore[arg-type]
        loop.close()
    gc.collect()
    before = rss_kib()
    for _ in range(3000):
        loop = asyncio.new_event_loop()
        start_trio_run(loop)  # type: ignore[arg-type]  (starts and ends a Trio run)
        loop.close()
    gc.collect()
    assert rss_kib() - before < 4096


def _run_script(code: str, *, sigint_after: float | None = None) -> subprocess.CompletedProcess[str]:
    # A child started from a non-interactive shell may inherit SIGINT as ignored; give it
    # Python's normal handler first.
    prelude = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if sigint_after is not None:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the script prints "ready" when it is waiting
        assert line.strip() == "ready", line + (proc.stderr.read() if proc.stderr else "")
        time.sleep(sigint_after)
        proc.send_signal(2)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigint_during_run_until_complete_keeps_loop_usable() -> None:
    result = _run_script(
        """
        import asyncio, trio_asyncio
        loop = asyncio.new_event_loop()
        async def forever():
            print("ready", flush=True)
            await asyncio.sleep(100)
        try:
            loop.run_until_complete(forever())
        except KeyboardInterrupt:
            print("interrupted")
        async def after():
            await asyncio.sleep(0.01)
            return "usable"
        print(loop.run_until_complete(after()))
        loop.close()
        """,
        sigint_after=0.2,
    )
    assert result.stdout.split() == ["interrupted", "usable"], result.stderr


def test_sigint_in_asyncio_run_cancels_main_task() -> None:
    result = _run_script(
        """
        import asyncio, trio_asyncio
        async def main():
            assert type(asyncio.get_running_loop()).__name__ == "SyncTrioEventLoop"
            print("ready", flush=True)
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                print("cancelled", flush=True)
                raise
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted")
        """,
        sigint_after=0.2,
    )
    assert result.stdout.split() == ["cancelled", "interrupted"], result.stderr


def test_sigint_while_loop_suspended_raises_in_caller() -> None:
    result = _run_script(
        """
        import asyncio, time, trio_asyncio
        loop = asyncio.new_event_loop()
        loop.run_until_complete(asyncio.sleep(0.001))   # Trio now lives, suspended
        print("ready", flush=True)
        try:
            time.sleep(10)
        except KeyboardInterrupt:
            print("caller-interrupted")
        print(loop.run_until_complete(asyncio.sleep(0.001, "usable")))
        loop.close()
        """,
        sigint_after=0.2,
    )
    assert result.stdout.split() == ["caller-interrupted", "usable"], result.stderr


def test_sys_exit_inside_asyncio_run() -> None:
    result = _run_script(
        """
        import asyncio, sys, trio_asyncio
        async def main():
            sys.exit(3)
        asyncio.run(main())
        """
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr


def test_caller_keeps_its_wakeup_fd_and_asyncgen_hooks(sync_loop: SyncTrioEventLoop) -> None:
    import signal

    def firstiter(agen: object) -> None:
        pass

    def finalizer(agen: object) -> None:
        pass

    old_hooks = sys.get_asyncgen_hooks()
    r, w = socket.socketpair()
    w.setblocking(False)
    try:
        signal.set_wakeup_fd(w.fileno())
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
        # The loop's Trio run installs Trio's own wake-up fd and hooks on the fiber side.
        start_trio_run(sync_loop)
        sync_loop.run_until_complete(asyncio.sleep(0.001))
        assert sys.get_asyncgen_hooks() == (firstiter, finalizer)
        assert signal.set_wakeup_fd(-1) == w.fileno()
    finally:
        signal.set_wakeup_fd(-1)
        sys.set_asyncgen_hooks(*old_hooks)
        r.close()
        w.close()


def test_pytest_trio_runs_beside_a_suspended_sync_loop(tmp_path: "os.PathLike[str]") -> None:
    test_file = os.path.join(str(tmp_path), "test_inner_trio.py")
    with open(test_file, "w") as f:
        f.write(
            textwrap.dedent(
                """
                import asyncio
                import pytest
                import trio
                import trio_asyncio

                LOOP = asyncio.new_event_loop()
                LOOP.run_until_complete(asyncio.sleep(0.001))  # Trio run now suspended

                @pytest.mark.trio
                async def test_trio_side():
                    await trio.sleep(0.001)
                    async with trio_asyncio.open_loop() as loop:
                        assert loop is not LOOP
                        assert await trio_asyncio.aio_as_trio(asyncio.sleep)(0, 5) == 5

                def test_sync_loop_again():
                    assert LOOP.run_until_complete(asyncio.sleep(0.001, "again")) == "again"
                    LOOP.close()
                """
            )
        )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
         test_file],
        capture_output=True, text=True, cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_sync_loop_without_trio_waits_in_one_system_call(sync_loop: SyncTrioEventLoop) -> None:
    # Issue 12: the wait before any Trio code ran is one blocking poll of the core (as stock
    # asyncio's one select), not a Python poll on the core's fd followed by a core poll.
    sync_loop.run_until_complete(asyncio.sleep(0))
    before = sync_loop.statistics().polls
    assert sync_loop.run_until_complete(asyncio.sleep(0.01, "slept")) == "slept"
    assert sync_loop.statistics().polls == before + 1
    assert sync_loop._fiber is None


# ---------------------------------------------------------------------------
# create_task: stock asyncio's behaviour (the sync loop builds tasks itself)
# ---------------------------------------------------------------------------


async def _answer(value: int) -> int:
    return value


def test_create_task_names_contexts_and_errors_match_stock(any_loop: asyncio.AbstractEventLoop) -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")

    async def read_var() -> str:
        return var.get()

    named = any_loop.create_task(_answer(1), name="answer")
    assert named.get_name() == "answer"
    in_ctx = any_loop.create_task(read_var(), context=ctx)
    both = any_loop.create_task(read_var(), name="both", context=ctx)
    results = any_loop.run_until_complete(asyncio.gather(named, in_ctx, both))
    assert list(results) == [1, "in ctx", "in ctx"]
    assert both.get_name() == "both"

    coro = _answer(2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        any_loop.create_task(coro, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        any_loop.create_task()  # type: ignore[call-arg]
    any_loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        any_loop.create_task(coro)
    coro.close()


def test_create_task_in_debug_mode_starts_its_traceback_at_the_caller(
    any_loop: asyncio.AbstractEventLoop,
) -> None:
    any_loop.set_debug(True)
    task = any_loop.create_task(_answer(3))
    last = task._source_traceback[-1]  # type: ignore[attr-defined]
    assert last.name == "test_create_task_in_debug_mode_starts_its_traceback_at_the_caller"
    assert any_loop.run_until_complete(task) == 3


def test_create_task_uses_the_task_factory(any_loop: asyncio.AbstractEventLoop) -> None:
    made: list[object] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> "asyncio.Task[Any]":
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    any_loop.set_task_factory(factory)
    task = any_loop.create_task(_answer(4), name="made")
    assert made == [task]
    assert task.get_name() == "made"
    assert any_loop.run_until_complete(task) == 4


# ---------------------------------------------------------------------------
# run_until_complete: stock asyncio's behaviour for every kind of argument
# ---------------------------------------------------------------------------


class _Awaitable:
    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        return "awaited"


def test_run_until_complete_takes_what_stock_takes(any_loop: asyncio.AbstractEventLoop) -> None:
    assert any_loop.run_until_complete(_answer(5)) == 5
    assert any_loop.run_until_complete(_Awaitable()) == "awaited"
    fut = any_loop.create_future()
    any_loop.call_soon(fut.set_result, "future")
    assert any_loop.run_until_complete(fut) == "future"
    task = any_loop.create_task(_answer(6))
    assert any_loop.run_until_complete(task) == 6
    with pytest.raises(TypeError, match="^An asyncio.Future, a coroutine or an awaitable is required$"):
        any_loop.run_until_complete(42)  # type: ignore[arg-type]
    other = asyncio.new_event_loop()
    try:
        foreign = other.create_future()
        with pytest.raises(ValueError, match="^The future belongs to a different loop"):
            any_loop.run_until_complete(foreign)
    finally:
        other.close()


def test_run_until_complete_leaves_no_callback_and_retrieves_errors(
    any_loop: asyncio.AbstractEventLoop,
) -> None:
    from asyncio import base_events

    fut = any_loop.create_future()
    any_loop.call_soon(any_loop.stop)
    with pytest.raises(RuntimeError, match="^Event loop stopped before Future completed.$"):
        any_loop.run_until_complete(fut)
    # asyncio's own done callback was added, and removed again
    assert fut.remove_done_callback(base_events._run_until_complete_cb) == 0  # type: ignore[attr-defined]

    async def interrupted() -> None:
        raise KeyboardInterrupt

    errors: list[dict[str, Any]] = []
    any_loop.set_exception_handler(lambda loop, context: errors.append(context))
    with pytest.raises(KeyboardInterrupt):
        any_loop.run_until_complete(interrupted())
    gc.collect()
    any_loop.run_until_complete(asyncio.sleep(0))
    assert errors == []  # the task's exception was marked retrieved

    async def stopper() -> None:
        any_loop.stop()
        await asyncio.sleep(10)

    coro = stopper()
    with pytest.raises(RuntimeError, match="^Event loop stopped before Future completed.$"):
        any_loop.run_until_complete(coro)
    pending = [t for t in asyncio.all_tasks(any_loop) if t.get_coro() is coro]
    assert len(pending) == 1 and pending[0]._log_destroy_pending is False  # type: ignore[attr-defined]
    pending[0].cancel()
    any_loop.run_until_complete(asyncio.sleep(0))


def test_run_until_complete_on_a_closed_loop_leaves_the_coroutine_unstarted(
    any_loop: asyncio.AbstractEventLoop,
) -> None:
    any_loop.close()
    coro = _answer(7)
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        any_loop.run_until_complete(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    coro.close()
