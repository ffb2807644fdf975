"""User-style code checked by mypy (``scripts/lint.sh``), not collected by pytest.

Each ``assert_type`` states the type a user gets from trio_asyncio's public API; a wrong
annotation in the package makes mypy fail here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, assert_type

import trio

import trio_asyncio


async def aio_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


async def trio_greet(name: str, *, punct: str = "!") -> str:
    await trio.sleep(0)
    return f"hello {name}{punct}"


@asynccontextmanager
async def aio_resource(size: int) -> AsyncIterator[bytes]:
    yield b"x" * size


async def aio_numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Service:
    @trio_asyncio.aio_as_trio
    async def fetch(self, key: str) -> bytes:
        await asyncio.sleep(0)
        return key.encode()

    @trio_asyncio.trio_as_aio
    async def compute(self, x: float) -> float:
        await trio.sleep(0)
        return x * 2


async def trio_side(loop: trio_asyncio.TrioEventLoop) -> None:
    # aio_as_trio keeps parameters and return type.
    add = trio_asyncio.aio_as_trio(aio_add)
    as_callable: Callable[[int, int], Coroutine[Any, Any, int]] = add
    del as_callable
    assert_type(await add(a=1, b=2), int)  # parameter names are kept too
    assert_type(await add(1, 2), int)
    assert_type(await trio_asyncio.aio_as_trio(aio_add, loop=loop)(1, 2), int)
    # awaitables and futures
    assert_type(await trio_asyncio.aio_as_trio(aio_add(1, 2)), int)
    future: asyncio.Future[str] = loop.create_future()
    assert_type(await trio_asyncio.aio_as_trio(future), str)
    # async context managers and iterators
    async with trio_asyncio.aio_as_trio(aio_resource(3)) as data:
        assert_type(data, bytes)
    async for number in trio_asyncio.aio_as_trio(aio_numbers(3)):
        assert_type(number, int)
    # decorated methods
    assert_type(await Service().fetch("k"), bytes)
    # the other Trio-flavoured helpers
    assert_type(await trio_asyncio.run_aio_coroutine(aio_add(1, 2)), int)
    assert_type(await trio_asyncio.run_aio_future(future), str)
    assert_type(await loop.run_aio_coroutine(aio_add(1, 2)), int)
    async for item in trio_asyncio.run_aio_generator(loop, aio_numbers(2)):
        assert_type(item, int)
    assert_type(await trio_asyncio.allow_asyncio(aio_add, 1, 2), int)


async def aio_side() -> None:
    loop = asyncio.get_running_loop()  # an AbstractEventLoop is accepted as loop=
    greet = trio_asyncio.trio_as_aio(trio_greet, loop=loop)
    assert_type(greet("a", punct="?"), asyncio.Future[str])
    assert_type(await trio_asyncio.trio_as_aio(trio_greet)("b"), str)
    assert_type(await Service().compute(1.5), float)
    nursery_cm = trio_asyncio.trio_as_aio(trio.open_nursery())
    assert_type(nursery_cm, AbstractAsyncContextManager[trio.Nursery])
    assert_type(trio_asyncio.run_trio(trio_greet, "c"), asyncio.Future[str])
    assert_type(await trio_asyncio.run_trio(trio_greet, "c"), str)


def sync_side() -> None:
    loop = trio_asyncio.new_event_loop()
    assert_type(loop, trio_asyncio.SyncTrioEventLoop)
    assert_type(loop.run_until_complete(aio_add(1, 2)), int)
    assert_type(loop.trio_as_future(trio_greet, "d"), asyncio.Future[str])
    with asyncio.Runner(loop_factory=trio_asyncio.new_event_loop) as runner:
        assert_type(runner.run(aio_add(1, 2)), int)
    assert_type(trio_asyncio.run(trio_greet, "e"), str)
    factory: Callable[[], asyncio.AbstractEventLoop] = trio_asyncio.new_event_loop
    del factory
    loop.close()


def errors_mypy_must_report(loop: trio_asyncio.TrioEventLoop) -> None:
    async def body() -> None:
        await trio_asyncio.aio_as_trio(aio_add)(1, "2")  # type: ignore[arg-type]
        await trio_asyncio.aio_as_trio(aio_add)(1)  # type: ignore[call-arg]
        trio_asyncio.trio_as_aio(trio_greet)(3)  # type: ignore[arg-type]
        trio_asyncio.run_trio(trio_greet, 3)  # type: ignore[arg-type]
        name: int = await trio_asyncio.trio_as_aio(trio_greet)("x")  # type: ignore[assignment]
        del name

    del body


