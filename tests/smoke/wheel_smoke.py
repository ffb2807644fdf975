"""Smoke test of an installed wheel (run by scripts/wheel-smoke.sh; not a pytest module).

Run from outside the repository, so ``import trio_asyncio`` finds the installed wheel and
not the repository's ``python/``. Exercises both loops, a fiber switch and repeated
``run_until_complete`` start/stop cycles; exits non-zero (with a traceback) on any failure.

    python wheel_smoke.py [--expect-prefix DIR]
"""

from __future__ import annotations

import asyncio
import sys
import time

import trio

import trio_asyncio
from trio_asyncio._fiber import Fiber, FiberExit, suspend


def check_installed_copy() -> None:
    """The package and its extension come from the environment, not a source tree."""
    engine = sys.modules["trio_asyncio._engine"].__file__ or ""
    print(f"trio_asyncio {trio_asyncio.__version__} from {trio_asyncio.__file__}")
    print(f"extension {engine}")
    if "--expect-prefix" in sys.argv:
        prefix = sys.argv[sys.argv.index("--expect-prefix") + 1]
        for path in (trio_asyncio.__file__ or "", engine):
            assert path.startswith(prefix), f"{path} is not under {prefix}"


async def aio_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.001, fut.set_result, a + b)
    return await fut


async def noop() -> None:
    pass


def sync_loop() -> None:
    """asyncio.new_event_loop() is our restartable sync loop; run it again and again."""
    loop = asyncio.new_event_loop()
    try:
        assert type(loop).__name__ == "SyncTrioEventLoop", type(loop)
        for i in range(5):
            assert loop.run_until_complete(aio_add(i, 1)) == i + 1
        task = loop.create_task(aio_add(20, 22))
        assert loop.run_until_complete(task) == 42
        # Start/stop cycles: each run_until_complete starts and stops the loop.
        for _ in range(200):
            loop.run_until_complete(noop())
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert not loop.is_running()
    finally:
        loop.close()
    assert loop.is_closed()
    # Create/close cycles.
    for _ in range(20):
        other = asyncio.new_event_loop()
        assert other.run_until_complete(aio_add(2, 3)) == 5
        other.close()
    print("sync loop: run_until_complete x206, run_forever/stop, new_event_loop/close x20")


def async_loop() -> None:
    """trio.run + open_loop: asyncio code awaited from Trio and Trio code from asyncio."""

    async def trio_double(x: int) -> int:
        await trio.sleep(0)
        return 2 * x

    async def main() -> tuple[int, int]:
        async with trio_asyncio.open_loop() as loop:
            assert type(loop).__name__ == "TrioEventLoop", type(loop)
            a = await trio_asyncio.aio_as_trio(aio_add)(2, 3)

            async def aio_side() -> int:
                doubled: int = await trio_asyncio.trio_as_aio(trio_double)(21)
                return doubled

            b = await trio_asyncio.aio_as_trio(aio_side)()
            return a, b

    for _ in range(3):
        assert trio.run(main) == (5, 42)
    print("async loop: trio.run + open_loop, aio_as_trio and trio_as_aio x3")


def fiber_switch() -> None:
    """A fiber round trip: switch in, suspend out, values both ways, then a kill."""

    def body(first: int) -> str:
        got = first
        for _ in range(3):
            got = suspend(got + 1)
        return f"done {got}"

    fiber = Fiber(body, 1)
    assert not fiber.started
    assert fiber.switch() == 2
    assert fiber.switch(10) == 11
    assert fiber.switch(20) == 21
    assert fiber.switch(30) == "done 30"
    assert fiber.dead

    def forever() -> None:
        while True:
            suspend()

    other = Fiber(forever)
    other.switch()
    n = 10_000
    start = time.perf_counter()
    for _ in range(n):
        other.switch()
    per_switch = (time.perf_counter() - start) / n
    try:
        other.throw(FiberExit())
    except FiberExit:
        pass
    assert other.dead
    print(f"fiber: values both ways, FiberExit; {n} round trips, {per_switch * 1e9:.0f} ns each")


def asyncio_run() -> None:
    """asyncio.run() in compatibility mode."""
    assert asyncio.run(aio_add(4, 5)) == 9
    print("asyncio.run: ok")


def main() -> None:
    print(f"CPython {sys.version.split()[0]} ({sys.executable})")
    check_installed_copy()
    sync_loop()
    async_loop()
    fiber_switch()
    asyncio_run()
    print("smoke OK")


if __name__ == "__main__":
    main()
