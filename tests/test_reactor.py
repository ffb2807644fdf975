"""asyncio's level-triggered ``add_reader``/``add_writer`` contract, on stock asyncio, our
sync loop and our async loop (the reactor under it is mio, edge-triggered, re-armed after
each delivered event: ``src/scheduler/reactor.rs``).

Iterations are counted with a ``call_soon`` ticker: each tick re-schedules itself, so it
runs exactly once per loop iteration on every implementation.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from conftest import AioRunner


class Ticker:
    """Counts loop iterations (one self-rescheduling callback)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.n = 0
        self.handle = loop.call_soon(self.tick)

    def tick(self) -> None:
        self.n += 1
        self.handle = self.loop.call_soon(self.tick)

    def stop(self) -> None:
        self.handle.cancel()


async def iterations(k: int) -> None:
    """Let the loop run ``k`` more iterations (each ``sleep(0)`` is one iteration)."""
    for _ in range(k):
        await asyncio.sleep(0)


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_ten_one_byte_reads_are_ten_callbacks(aio_run: AioRunner) -> None:
    async def body() -> tuple[int, bytes, list[int]]:
        loop = asyncio.get_running_loop()
        a, b = pair()
        got = bytearray()
        at: list[int] = []
        ticker = Ticker(loop)

        def on_readable() -> None:
            got.extend(a.recv(1))
            at.append(ticker.n)

        with a, b:
            loop.add_reader(a, on_readable)
            b.send(b"0123456789")
            await iterations(30)
            loop.remove_reader(a)
            ticker.stop()
        return len(at), bytes(got), at

    calls, got, at = aio_run(body)
    assert calls == 10
    assert got == b"0123456789"
    assert at == sorted(set(at)), "at most once per iteration"
    assert at[-1] - at[0] == 9, "once in each of ten consecutive iterations"


def test_reader_that_does_not_drain_keeps_firing(aio_run: AioRunner) -> None:
    async def body() -> int:
        loop = asyncio.get_running_loop()
        a, b = pair()
        calls = 0
        enough = loop.create_future()

        def on_readable() -> None:
            nonlocal calls
            calls += 1
            if calls == 5:
                enough.set_result(None)

        with a, b:
            loop.add_reader(a, on_readable)
            b.send(b"x")
            await enough
            loop.remove_reader(a)
            await iterations(3)
            assert a.recv(10) == b"x", "never read by the callback"
        return calls

    assert aio_run(body) == 5, "removed: not called again"


def test_writer_keeps_firing_while_writable_and_reader_joins_it(aio_run: AioRunner) -> None:
    async def body() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        a, b = pair()
        log: list[str] = []
        with a, b:
            loop.add_writer(a, log.append, "w")
            await iterations(3)
            first = list(log)
            log.clear()
            loop.add_reader(a, log.append, "r")
            b.send(b"x")
            await iterations(3)
            both = list(log)
            loop.remove_writer(a)
            log.clear()
            await iterations(3)
            assert set(log) == {"r"}, "the reader goes on alone"
            loop.remove_reader(a)
        return first, both

    first, both = aio_run(body)
    assert first.count("w") >= 2
    assert both.count("r") >= 2 and both.count("w") >= 2
    assert both.count("r") <= both.count("w")


def test_removal_from_inside_the_callback(aio_run: AioRunner) -> None:
    async def body() -> tuple[int, list[str]]:
        loop = asyncio.get_running_loop()
        a, b = pair()
        calls = 0
        log: list[str] = []

        def once() -> None:
            nonlocal calls
            calls += 1
            loop.remove_reader(a)  # not drained: still readable

        def reader_removes_writer() -> None:
            log.append("r")
            loop.remove_writer(a)

        with a, b:
            loop.add_reader(a, once)
            b.send(b"x")
            await iterations(5)
            # Both ready in the same iteration: the reader runs first and removes the
            # writer, whose queued callback must not run.
            loop.add_writer(a, log.append, "w")
            loop.add_reader(a, reader_removes_writer)
            await iterations(2)
            loop.remove_reader(a)
            loop.remove_writer(a)
        return calls, log

    calls, log = aio_run(body)
    assert calls == 1
    assert log == ["r"]


def test_replacement_from_inside_the_callback(aio_run: AioRunner) -> None:
    async def body() -> list[str]:
        loop = asyncio.get_running_loop()
        a, b = pair()
        log: list[str] = []

        def first() -> None:
            log.append("first")
            loop.add_reader(a, second)  # not drained: the new callback fires next

        def second() -> None:
            log.append("second")
            a.recv(10)

        with a, b:
            loop.add_reader(a, first)
            b.send(b"x")
            await iterations(5)
            loop.remove_reader(a)
        return log

    assert aio_run(body) == ["first", "second"]


def test_fd_closed_and_reused_between_two_iterations(aio_run: AioRunner) -> None:
    async def body() -> list[str]:
        loop = asyncio.get_running_loop()
        a, b = pair()
        log: list[str] = []
        reused: list[socket.socket] = []

        def old_reader() -> None:
            log.append("old")
            # Remove, close, and get the same fd number for a new socket at once.
            fd = a.fileno()
            loop.remove_reader(a)
            a.close()
            c, d = pair()
            reused.extend((c, d))
            if c.fileno() != fd:  # pragma: no cover  (another thread took the number)
                pytest.skip("fd number not reused")
            loop.add_reader(c, new_reader)

        def new_reader() -> None:
            log.append("new")
            reused[0].recv(10)

        with b:
            loop.add_reader(a, old_reader)
            b.send(b"x")
            await iterations(3)
            assert log == ["old"], "the new socket has no data yet"
            reused[1].send(b"y")
            await iterations(3)
            loop.remove_reader(reused[0])
            for s in reused:
                s.close()
        return log

    assert aio_run(body) == ["old", "new"]


@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_many_fds_each_fire_once_per_iteration(aio_run: AioRunner, direction: str) -> None:
    async def body() -> list[int]:
        loop = asyncio.get_running_loop()
        pairs = [pair() for _ in range(20)]
        counts = [0] * len(pairs)
        add: Callable[..., None] = getattr(loop, f"add_{direction}")
        remove: Callable[..., bool] = getattr(loop, f"remove_{direction}")

        def fired(i: int) -> None:
            counts[i] += 1

        for i, (a, b) in enumerate(pairs):
            b.send(b"x")
            add(a, fired, i)
        await iterations(4)
        for a, b in pairs:
            remove(a)
            a.close()
            b.close()
        return counts

    counts = aio_run(body)
    assert len(set(counts)) == 1, counts
    assert 3 <= counts[0] <= 5
