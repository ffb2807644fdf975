"""Flavour adapters: aio_as_trio, trio_as_aio, allow_asyncio, run_aio_* helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

import trio_asyncio
from trio_asyncio import aio_as_trio, allow_asyncio, trio_as_aio


def run_in_loop(fn, *args):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with trio_asyncio.open_loop():
            return await fn(*args)

    return trio.run(main)


async def aio_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def trio_double(x: int) -> int:
    await trio.sleep(0)
    return 2 * x


def test_aio_as_trio_function_and_coroutine() -> None:
    async def main() -> tuple[int, int, int]:
        a = await aio_as_trio(aio_double)(1)
        b = await aio_as_trio(aio_double(2))
        loop = trio_asyncio.current_loop.get()
        assert loop is not None
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 6)
        c = await aio_as_trio(fut)
        return a, b, c

    assert run_in_loop(main) == (2, 4, 6)


def test_aio_as_trio_decorator_on_method() -> None:
    class Thing:
        factor = 3

        @aio_as_trio
        async def scaled(self, x: int) -> int:
            await asyncio.sleep(0)
            return self.factor * x

    async def main() -> int:
        return await Thing().scaled(5)

    assert run_in_loop(main) == 15


def test_aio_as_trio_args_misuse() -> None:
    async def main() -> None:
        wrapper = trio_asyncio._adapter.Asyncio_Trio_Wrapper(aio_double, args=(1,))
        with pytest.raises(RuntimeError, match="aio_as_trio\\(proc\\)\\(\\*args\\)"):
            await wrapper(1)

    run_in_loop(main)


def test_aio_as_trio_context_manager_and_iterator() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def aio_cm() -> AsyncIterator[str]:
        await asyncio.sleep(0)
        log.append("enter")
        yield "value"
        await asyncio.sleep(0)
        log.append("exit")

    async def aio_gen() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    async def main() -> list[int]:
        async with aio_as_trio(aio_cm()) as v:
            assert v == "value"
        return [x async for x in aio_as_trio(aio_gen())]

    assert run_in_loop(main) == [0, 1, 2]
    assert log == ["enter", "exit"]


def test_trio_as_aio_function_cm_iterator() -> None:
    @asynccontextmanager
    async def trio_cm() -> AsyncIterator[str]:
        await trio.sleep(0)
        yield "cm"

    async def trio_gen() -> AsyncIterator[int]:
        for i in range(3):
            await trio.sleep(0)
            yield i

    async def aio_main() -> tuple[int, str, list[int]]:
        a = await trio_as_aio(trio_double)(4)
        async with trio_as_aio(trio_cm()) as v:
            pass
        items = [x async for x in trio_as_aio(trio_gen())]
        return a, v, items

    async def main() -> tuple[int, str, list[int]]:
        return await aio_as_trio(aio_main)()

    assert run_in_loop(main) == (8, "cm", [0, 1, 2])


def test_trio_as_aio_returns_future_and_cancels_trio_task() -> None:
    cancelled: list[bool] = []

    async def trio_forever() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async def aio_main() -> str:
        fut = trio_as_aio(trio_forever)()
        assert isinstance(fut, asyncio.Future)
        await asyncio.sleep(0.01)
        fut.cancel()
        try:
            await fut
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    async def main() -> str:
        return await aio_as_trio(aio_main)()

    assert run_in_loop(main) == "cancelled"
    assert cancelled == [True]


def test_trio_error_propagates_to_asyncio() -> None:
    async def trio_fail() -> None:
        raise KeyError("trio side")

    async def aio_main() -> str:
        try:
            await trio_as_aio(trio_fail)()
        except KeyError as exc:
            return str(exc)
        return "no error"

    async def main() -> str:
        return await aio_as_trio(aio_main)()

    assert run_in_loop(main) == "'trio side'"


def test_trio_cancellation_cancels_asyncio_task() -> None:
    cancelled: list[bool] = []

    async def aio_forever() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> str:
        with trio.move_on_after(0.02) as scope:
            await aio_as_trio(aio_forever)()
        return "moved on" if scope.cancelled_caught else "?"

    assert run_in_loop(main) == "moved on"
    assert cancelled == [True]


def test_allow_asyncio_mixes_flavours() -> None:
    async def mixed() -> int:
        await asyncio.sleep(0)
        await trio.sleep(0)
        return await aio_double(1) + await trio_double(2)

    async def main() -> int:
        return await allow_asyncio(mixed)

    assert run_in_loop(main) == 6


def test_run_trio_and_run_aio_coroutine_forwarders() -> None:
    async def aio_main() -> int:
        return await trio_asyncio.run_trio(trio_double, 10)

    async def main() -> int:
        return await trio_asyncio.run_aio_coroutine(aio_main())

    assert run_in_loop(main) == 20


def test_forwarders_outside_a_loop() -> None:
    async def main() -> None:
        coro = aio_double(1)
        with pytest.raises(RuntimeError, match="not within a trio_asyncio loop"):
            await trio_asyncio.run_aio_coroutine(coro)
        with pytest.raises(RuntimeError, match="not within a trio_asyncio loop"):
            trio_asyncio.run_trio(trio_double, 1)

    trio.run(main)


def test_public_names() -> None:
    expected = {
        "open_loop", "run", "aio_as_trio", "asyncio_as_trio", "trio_as_aio", "trio_as_asyncio",
        "allow_asyncio", "run_aio_future", "run_aio_coroutine", "run_aio_generator", "run_trio",
        "run_trio_task", "current_loop", "BaseTrioEventLoop", "TrioEventLoop", "TrioExecutor",
        "TrioAsyncioDeprecationWarning", "__version__",
    }
    for name in expected:
        assert hasattr(trio_asyncio, name), name
    for method in ("run_aio_future", "run_aio_coroutine", "trio_as_future", "run_trio_task",
                   "synchronize", "autoclose", "no_autoclose", "wait_stopped"):
        assert callable(getattr(trio_asyncio.BaseTrioEventLoop, method)), method


def test_deprecated_names_warn() -> None:
    with pytest.warns(trio_asyncio.TrioAsyncioDeprecationWarning):
        policy_cls = trio_asyncio.TrioPolicy  # type: ignore[attr-defined]
    assert issubclass(policy_cls, asyncio.AbstractEventLoopPolicy)


def test_fast_crossings_do_not_starve_trio_tasks() -> None:
    async def noop() -> None:
        pass

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0)
            start = ticks
            for _ in range(1000):
                await aio_as_trio(noop)()
            nursery.cancel_scope.cancel()
        return ticks - start

    assert run_in_loop(main) >= 10


def test_fast_crossing_checks_cancellation() -> None:
    async def noop() -> str:
        return "done"

    async def main() -> str:
        with trio.CancelScope() as scope:
            scope.cancel()
            await aio_as_trio(noop)()
            return "not cancelled"
        return "cancelled"

    assert run_in_loop(main) == "cancelled"


def test_timer_scheduled_by_a_fast_crossing_wakes_the_loop() -> None:
    async def main() -> str:
        loop = trio_asyncio.current_loop.get()
        assert loop is not None
        fired = trio.Event()

        async def arm() -> None:
            asyncio.get_running_loop().call_later(0.01, fired.set)

        await trio.sleep(0.01)  # let the loop's driver park with no deadline
        await aio_as_trio(arm)()
        with trio.fail_after(5):
            await fired.wait()
        return "fired"

    assert run_in_loop(main) == "fired"


def test_trio_as_aio_many_round_trips() -> None:
    async def trio_inc(x: int) -> int:
        return x + 1

    async def aio_main() -> int:
        x = 0
        for _ in range(500):
            x = await trio_as_aio(trio_inc)(x)
        return x

    async def main() -> int:
        return await aio_as_trio(aio_main)()

    assert run_in_loop(main) == 500


def test_deprecated_child_watcher_still_works() -> None:
    import os

    with pytest.warns(trio_asyncio.TrioAsyncioDeprecationWarning):
        watcher_cls = trio_asyncio.TrioChildWatcher  # type: ignore[attr-defined]
    with pytest.warns(trio_asyncio.TrioAsyncioDeprecationWarning):
        assert trio_asyncio.child.TrioChildWatcher is watcher_cls  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    watcher = watcher_cls()
    watcher.attach_loop(loop)
    try:
        assert watcher.is_active()
        pid = os.spawnlp(os.P_NOWAIT, "sh", "sh", "-c", "exit 3")
        done = loop.create_future()
        watcher.add_child_handler(pid, lambda p, rc: done.set_result((p, rc)))
        assert loop.run_until_complete(asyncio.wait_for(done, 10)) == (pid, 3)
        assert not watcher.remove_child_handler(pid)
    finally:
        watcher.close()
        loop.close()


def test_issue_11_loop_argument_must_be_a_trio_asyncio_loop() -> None:
    import asyncio as _asyncio

    import trio as _trio

    import trio_asyncio as _ta

    stock = _asyncio.SelectorEventLoop()
    try:
        with pytest.raises(TypeError, match="loop must be a trio_asyncio loop, not"):
            _ta.trio_as_aio(_trio.sleep, loop=stock)(0)
        with pytest.raises(TypeError, match="loop must be a trio_asyncio loop, not"):
            _ta.aio_as_trio(_asyncio.sleep, loop=stock).loop
    finally:
        stock.close()


def test_aio_as_trio_async_def_body_runs_in_its_asyncio_task() -> None:
    # aio_as_trio calls an async def function from the Trio side (that only makes the
    # coroutine); its body must still run as asyncio code, in the caller's context.
    import contextvars

    import sniffio

    var: contextvars.ContextVar[str] = contextvars.ContextVar("a2t_direct", default="unset")

    async def probe(x: int) -> tuple[int, bool, str, str]:
        await asyncio.sleep(0)
        return x, asyncio.current_task() is not None, sniffio.current_async_library(), var.get()

    class Thing:
        async def method(self, x: int) -> tuple[int, bool, str, str]:
            return await probe(x)

    async def main() -> list[tuple[int, bool, str, str]]:
        var.set("trio side")
        with pytest.raises(TypeError):
            await aio_as_trio(probe)()  # type: ignore[call-arg]
        return [await aio_as_trio(probe)(1), await aio_as_trio(Thing().method)(2)]

    assert run_in_loop(main) == [
        (1, True, "asyncio", "trio side"), (2, True, "asyncio", "trio side"),
    ]
