"""``run_in_executor`` and the default executor on both our loops and stock asyncio, and
an fd-leak check over a loop that used every kind of I/O."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
import socket
import sys
import threading
from asyncio.subprocess import PIPE

import pytest

import trio_asyncio
from conftest import AioRunner, open_fds


def test_default_executor(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        main = threading.get_ident()
        ident = await loop.run_in_executor(None, threading.get_ident)
        assert ident != main
        assert await loop.run_in_executor(None, pow, 2, 10) == 1024
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(None, divmod, 1, 0)
        if aio_run.ours:
            assert isinstance(loop._default_executor, trio_asyncio.TrioExecutor)
        # jobs run concurrently: five jobs wait for each other
        barrier = threading.Barrier(5, timeout=20)
        results = await asyncio.gather(
            *(loop.run_in_executor(None, barrier.wait) for _ in range(5))
        )
        assert sorted(results) == list(range(5))

    aio_run(body)


def test_explicit_thread_pool_executor(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="explicit") as pool:
            name = await loop.run_in_executor(pool, lambda: threading.current_thread().name)
            assert name.startswith("explicit")
            with pytest.raises(KeyError):
                await loop.run_in_executor(pool, {}.__getitem__, "missing")
            # cancelling the asyncio future of a queued job cancels the job
            gate = threading.Event()
            blockers = [loop.run_in_executor(pool, gate.wait, 20) for _ in range(2)]
            queued = loop.run_in_executor(pool, threading.get_ident)
            await asyncio.sleep(0)
            queued.cancel()
            gate.set()
            assert await asyncio.gather(*blockers) == [True, True]
            with pytest.raises(asyncio.CancelledError):
                await queued

    aio_run(body)


def test_set_default_executor(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TypeError):
            loop.set_default_executor(object())  # type: ignore[arg-type]
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="default-pool")
        loop.set_default_executor(pool)
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        assert name.startswith("default-pool")
        # shutdown_default_executor waits for running jobs, then refuses new ones
        gate = threading.Event()
        job = loop.run_in_executor(None, gate.wait, 20)
        loop.call_later(0.01, gate.set)
        await loop.shutdown_default_executor()
        assert job.done() and job.result() is True
        assert pool._shutdown  # the loop shut our pool down
        with pytest.raises(RuntimeError, match="shutdown"):
            loop.run_in_executor(None, print)
        # an explicit executor still works
        with concurrent.futures.ThreadPoolExecutor(1) as other:
            assert await loop.run_in_executor(other, int, "7") == 7

    aio_run(body)


def test_shutdown_default_executor(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        await loop.shutdown_default_executor()  # never created: fine
        with pytest.raises(RuntimeError, match="shutdown"):
            await loop.run_in_executor(None, print)

    aio_run(body)

    async def body2() -> None:
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, abs, -3) == 3
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="shutdown"):
            await loop.run_in_executor(None, abs, -3)

    aio_run(body2)


# ---------------------------------------------------------------------------
# No fd leaks after a loop that did everything
# ---------------------------------------------------------------------------


async def _everything(tmp: str) -> None:
    loop = asyncio.get_running_loop()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        writer.close()
        await writer.wait_closed()

    tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
    unix = await asyncio.start_unix_server(echo, os.path.join(tmp, "s"))
    async with tcp, unix:
        for opener, args in (
            (asyncio.open_connection, tcp.sockets[0].getsockname()),
            (asyncio.open_unix_connection, (os.path.join(tmp, "s"),)),
        ):
            streams = [await opener(*args) for _ in range(5)]
            for reader, writer in streams:
                writer.write(b"abc")
                writer.write_eof()
            for reader, writer in streams:
                assert await reader.read() == b"abc"
                writer.close()
                await writer.wait_closed()

    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    udp.close()

    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"x")
        assert await loop.sock_recv(b, 1) == b"x"

    procs = [
        await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE, stderr=PIPE)
        for _ in range(5)
    ]
    outs = await asyncio.gather(*(p.communicate(b"%d" % i) for i, p in enumerate(procs)))
    assert [o for o, _ in outs] == [b"%d" % i for i in range(5)]

    assert await loop.run_in_executor(None, len, "four") == 4


@pytest.mark.skipif(sys.platform != "linux", reason="counts /proc/self/fd")
def test_no_fd_leak_after_closing_a_busy_loop(aio_run: AioRunner, tmp_path) -> None:
    aio_run(_everything, str(tmp_path))  # also warms up imports and caches
    # the fixture checks open fds across each run; check a few runs in a row as well
    gc.collect()
    before = open_fds()
    for i in range(3):
        d = tmp_path / str(i)
        d.mkdir()
        aio_run(_everything, str(d))
    gc.collect()
    assert open_fds() == before


@pytest.mark.skipif(sys.platform != "linux", reason="counts /proc/self/fd")
def test_no_fd_leak_sync_loop_many_runs(tmp_path) -> None:
    gc.collect()
    before = open_fds()
    loop = asyncio.new_event_loop()
    try:
        for i in range(3):
            d = tmp_path / str(i)
            d.mkdir()
            loop.run_until_complete(asyncio.wait_for(_everything(str(d)), 30))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    gc.collect()
    assert open_fds() == before


def test_shutdown_default_executor_waits_for_running_jobs(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        started = threading.Event()
        gate = threading.Event()
        finished: list[str] = []

        def job() -> str:
            started.set()
            gate.wait(20)
            finished.append("job")
            return "done"

        fut = loop.run_in_executor(None, job)
        await loop.run_in_executor(None, started.wait, 20)
        loop.call_later(0.02, gate.set)
        await loop.shutdown_default_executor()
        assert finished == ["job"]
        assert await fut == "done"

    aio_run(body)
