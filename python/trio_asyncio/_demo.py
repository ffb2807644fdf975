"""Demo: ``python -m trio_asyncio --demo`` runs asyncio and Trio code on both loops."""

from __future__ import annotations

import asyncio

import trio

import trio_asyncio


async def aio_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


async def trio_mul(a: int, b: int) -> int:
    await trio.sleep(0.01)
    return a * b


def sync_loop_demo() -> None:
    loop = asyncio.new_event_loop()
    print(f"asyncio.new_event_loop() -> {type(loop).__name__}")
    for i in range(3):
        print(f"  run_until_complete(aio_add({i}, {i})) = {loop.run_until_complete(aio_add(i, i))}")
    product = loop.run_until_complete(trio_asyncio.trio_as_aio(trio_mul, loop=loop)(6, 7))
    print(f"  Trio code on the same loop: trio_mul(6, 7) = {product}")
    loop.close()


async def async_loop_demo() -> None:
    async with trio_asyncio.open_loop() as loop:
        print(f"open_loop() -> {type(loop).__name__}")
        total = await trio_asyncio.aio_as_trio(aio_add)(2, 3)
        print(f"  Trio awaits asyncio: aio_add(2, 3) = {total}")

        async def aio_calls_trio() -> int:
            return await trio_asyncio.trio_as_aio(trio_mul)(4, 5)

        print(f"  asyncio awaits Trio: trio_mul(4, 5) = {await trio_asyncio.aio_as_trio(aio_calls_trio)()}")


def main() -> None:
    print(f"trio_asyncio {trio_asyncio.__version__} (trio-asyncio-rs)")
    sync_loop_demo()
    trio.run(async_loop_demo)
