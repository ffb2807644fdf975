"""The async loop: open_loop(), run(), shutdown order, clocks, errors, I/O."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading

import pytest
import sniffio
import trio
import trio.testing

import trio_asyncio
from trio_asyncio import aio_as_trio, trio_as_aio


def test_run_returns_value() -> None:
    async def main(x: int) -> int:
        return await aio_as_trio(asyncio.sleep)(0.001, x)

    assert trio_asyncio.run(main, 5) == 5


def test_callbacks_and_timers_in_order() -> None:
    async def main() -> list[str]:
        order: list[str] = []
        async with trio_asyncio.open_loop() as loop:
            done = trio.Event()
            loop.call_later(0.02, order.append, "t2")
            loop.call_later(0.01, order.append, "t1")
            loop.call_soon(order.append, "soon")
            loop.call_later(0.03, done.set)
            await done.wait()
        return order

    assert trio.run(main) == ["soon", "t1", "t2"]


def test_mock_clock_drives_asyncio_timers() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> float:
        async with trio_asyncio.open_loop() as loop:
            start = trio.current_time()
            assert loop.time() == pytest.approx(start)
            await aio_as_trio(asyncio.sleep)(3600)
            return trio.current_time() - start

    assert trio.run(main, clock=clock) == pytest.approx(3600, abs=1e-6)


def test_unhandled_asyncio_error_ends_open_loop() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:

            def bad() -> None:
                raise ValueError("from a callback")

            loop.call_soon(bad)
            await trio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as info:
        trio.run(main)
    assert info.group_contains(ValueError, match="from a callback")


def test_outer_cancellation_exits_cleanly() -> None:
    async def main() -> str:
        with trio.move_on_after(0.05) as scope:
            async with trio_asyncio.open_loop():
                await aio_as_trio(asyncio.sleep)(10)
        assert scope.cancelled_caught
        return "ok"

    assert trio.run(main) == "ok"


def test_cancelled_before_first_checkpoint() -> None:
    async def main() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            async with trio_asyncio.open_loop():
                pass

    trio.run(main)


def test_shutdown_cancels_pending_tasks_of_both_flavours() -> None:
    events: list[str] = []

    async def aio_forever() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            events.append("aio cancelled")
            raise

    async def trio_forever() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            events.append("trio cancelled")
            raise

    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            loop.create_task(aio_forever())
            loop.run_trio_task(trio_forever)
            await trio.sleep(0.01)
            queued: list[int] = []
            loop.call_soon(queued.append, 1)
        assert queued == [1]
        assert loop.is_closed()

    trio.run(main)
    assert sorted(events) == ["aio cancelled", "trio cancelled"]


def test_sniffio_per_flavour() -> None:
    async def aio_side() -> str:
        return sniffio.current_async_library()

    async def trio_side() -> str:
        return sniffio.current_async_library()

    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            assert sniffio.current_async_library() == "trio"
            assert await aio_as_trio(aio_side)() == "asyncio"
            assert await aio_as_trio(lambda: trio_as_aio(trio_side)())() == "trio"
            seen: list[str] = []
            loop.call_soon(lambda: seen.append(sniffio.current_async_library()))
            await loop.synchronize()
            assert seen == ["asyncio"]

    trio.run(main)


def test_contextvars_flow_both_ways() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def trio_reader() -> str:
        return var.get()

    async def aio_reader() -> tuple[str, str]:
        mine = var.get()
        var.set("from-asyncio")
        return mine, await trio_as_aio(trio_reader)()

    async def main() -> None:
        async with trio_asyncio.open_loop():
            var.set("from-trio")
            assert await aio_as_trio(aio_reader)() == ("from-trio", "from-asyncio")
            assert var.get() == "from-trio"

    trio.run(main)


def test_threadsafe_calls_from_eight_threads() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            total = 8 * 2000
            seen: list[int] = []
            done = trio.Event()

            def note(i: int) -> None:
                seen.append(i)
                if len(seen) == total:
                    done.set()

            def worker(base: int) -> None:
                for i in range(2000):
                    loop.call_soon_threadsafe(note, base + i)

            threads = [threading.Thread(target=worker, args=(t * 2000,)) for t in range(8)]
            for t in threads:
                t.start()
            with trio.fail_after(30):
                await done.wait()
            for t in threads:
                t.join()
            assert sorted(seen) == list(range(total))

    trio.run(main)


def test_reader_writer_with_socketpair() -> None:
    async def main() -> bytes:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        async with trio_asyncio.open_loop() as loop:
            got = trio.Event()
            data: list[bytes] = []

            def readable() -> None:
                data.append(a.recv(100))
                loop.remove_reader(a)
                got.set()

            def writable() -> None:
                b.send(b"ping")
                loop.remove_writer(b)

            loop.add_reader(a, readable)
            loop.add_writer(b, writable)
            with trio.fail_after(5):
                await got.wait()
        a.close()
        b.close()
        return data[0]

    assert trio.run(main) == b"ping"


def test_tcp_echo_with_streams() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def aio_main() -> list[bytes]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = []
        for i in range(20):
            msg = f"message {i}".encode()
            writer.write(msg)
            await writer.drain()
            replies.append(await reader.readexactly(len(msg)))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return replies

    async def main() -> list[bytes]:
        async with trio_asyncio.open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == [f"message {i}".encode() for i in range(20)]


def test_subprocess_exec_with_pipes() -> None:
    async def aio_main() -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate(b"through cat")
        return out, proc.returncode or 0

    async def main() -> tuple[bytes, int]:
        async with trio_asyncio.open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == (b"through cat", 0)


def test_run_in_executor_both_kinds() -> None:
    import concurrent.futures

    def work(x: int) -> tuple[int, str]:
        return x * 2, threading.current_thread().name

    async def aio_main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        a, _ = await loop.run_in_executor(None, work, 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            b, _ = await loop.run_in_executor(pool, work, 2)
        return a, b

    async def main() -> tuple[int, int]:
        async with trio_asyncio.open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == (2, 4)


def test_asyncio_async_generator_finalised_by_loop() -> None:
    finalised: list[str] = []

    async def agen() -> "object":
        try:
            yield 1
            yield 2
        finally:
            finalised.append(sniffio.current_async_library())

    async def aio_main() -> int:
        gen = agen()
        async for x in gen:  # abandoned after the first item
            return x  # type: ignore[no-any-return]
        return 0

    async def main() -> int:
        async with trio_asyncio.open_loop():
            return await aio_as_trio(aio_main)()

    assert trio.run(main) == 1
    assert finalised == ["asyncio"]


def test_two_loops_open_at_once_and_nested() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as outer:
            async with trio_asyncio.open_loop() as inner:
                assert trio_asyncio.current_loop.get() is inner
                assert await aio_as_trio(asyncio.sleep, loop=outer)(0, "o") == "o"
                assert await aio_as_trio(asyncio.sleep, loop=inner)(0, "i") == "i"
            assert trio_asyncio.current_loop.get() is outer

    trio.run(main)


def test_keyboard_interrupt_in_asyncio_code_does_not_hang() -> None:
    async def aio_raise() -> None:
        raise KeyboardInterrupt

    async def main() -> None:
        async with trio_asyncio.open_loop():
            with trio.fail_after(5):
                await aio_as_trio(aio_raise)()

    with pytest.raises((KeyboardInterrupt, BaseExceptionGroup)):
        trio.run(main)


def test_raising_call_later_does_not_deadlock_run_aio_future() -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop() as loop:
            fut = loop.create_future()

            def bad() -> None:
                raise RuntimeError("timer went wrong")

            loop.call_later(0.01, bad)
            loop.call_later(0.02, fut.set_result, "ok")
            with trio.fail_after(5):
                await trio_asyncio.run_aio_future(fut)

    with pytest.raises(BaseExceptionGroup) as info:
        trio.run(main)
    assert info.group_contains(RuntimeError, match="timer went wrong")


@pytest.mark.filterwarnings("ignore:Async generator.*garbage collected:ResourceWarning")
def test_trio_async_generator_finalised_by_trio() -> None:
    # Trio warns about abandoned generators (its own behaviour) and still finalises them.
    finalised: list[str] = []

    async def agen() -> "object":
        try:
            yield 1
            yield 2
        finally:
            finalised.append(sniffio.current_async_library())

    async def main() -> None:
        async with trio_asyncio.open_loop():
            gen = agen()
            async for _ in gen:  # abandoned after the first item, in a Trio task
                break
            del gen
            await trio.sleep(0.01)

    trio.run(main)
    assert finalised == ["trio"]
