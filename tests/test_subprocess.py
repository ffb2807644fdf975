"""asyncio subprocesses on both our loops, with stock asyncio as the reference.

Our loops learn of a child's exit through a pidfd in the reactor: no thread per child.
The ``aio_run`` fixture also checks that no fd is left open once the loop is closed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
from asyncio.subprocess import DEVNULL, PIPE

import pytest

from trio_asyncio._versions import PY312

from conftest import AioRunner, open_fds

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux process model")


def test_exec_communicate(aio_run: AioRunner) -> None:
    data = os.urandom(1_000_000)  # more than a pipe buffer each way

    async def body() -> None:
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate(data)
        assert out == data
        assert err == b""
        assert proc.returncode == 0
        with pytest.raises(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)  # already reaped by the loop

    aio_run(body)


def test_exec_streams_line_by_line(aio_run: AioRunner) -> None:
    async def body() -> None:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", 'while read x; do echo "got $x"; done; echo done >&2; exit 4',
            stdin=PIPE, stdout=PIPE, stderr=PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        for i in range(20):
            proc.stdin.write(b"%d\n" % i)
            await proc.stdin.drain()
            assert await proc.stdout.readline() == b"got %d\n" % i
        proc.stdin.close()
        await proc.stdin.wait_closed()
        assert await proc.stdout.read() == b""
        assert await proc.stderr.read() == b"done\n"
        assert await proc.wait() == 4
        assert proc.returncode == 4

    aio_run(body)


def test_shell_failing_command(aio_run: AioRunner) -> None:
    async def body() -> None:
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err >&2; exit 7", stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate()
        assert (out, err, proc.returncode) == (b"out\n", b"err\n", 7)

        proc = await asyncio.create_subprocess_exec("false", stdout=DEVNULL)
        assert await proc.wait() == 1

        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/program-xyz")

    aio_run(body)


def test_wait_without_pipes(aio_run: AioRunner) -> None:
    async def body() -> None:
        proc = await asyncio.create_subprocess_exec("sh", "-c", "sleep 0.05; exit 3")
        assert proc.returncode is None
        assert await proc.wait() == 3
        assert await proc.wait() == 3  # idempotent

    aio_run(body)


@pytest.mark.parametrize("how", ["terminate", "kill", "send_signal"])
def test_terminate_kill_long_running_child(aio_run: AioRunner, how: str) -> None:
    expected = {"terminate": -signal.SIGTERM, "kill": -signal.SIGKILL,
                "send_signal": -signal.SIGUSR2}[how]

    async def body() -> None:
        proc = await asyncio.create_subprocess_exec(
            "sleep", "60", stdout=PIPE, stderr=PIPE
        )
        waiting = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        if how == "send_signal":
            proc.send_signal(signal.SIGUSR2)
        else:
            getattr(proc, how)()
        assert await asyncio.wait_for(waiting, 20) == expected
        out, err = await proc.communicate()
        assert (out, err) == (b"", b"")
        # signalling a reaped child is silently ignored (ProcessLookupError inside)
        with pytest.raises(ProcessLookupError):
            proc.kill()

    aio_run(body)


def test_twenty_concurrent_children_no_thread_per_child(aio_run: AioRunner) -> None:
    async def body() -> None:
        threads_before = set(threading.enumerate())
        procs = [
            await asyncio.create_subprocess_exec(
                "sh", "-c", f"read x; echo $x-{i}; exit {i}", stdin=PIPE, stdout=PIPE
            )
            for i in range(20)
        ]
        try:
            # every child is alive, blocked on stdin
            assert all(p.returncode is None for p in procs)
            # (idle threads of other pools may exit meanwhile: count only new threads)
            new_threads = set(threading.enumerate()) - threads_before
            if aio_run.ours or PY312:  # stock 3.12+: a pidfd watcher, no thread either
                assert not new_threads
            else:  # stock asyncio 3.11: ThreadedChildWatcher, one thread per child
                assert len(new_threads) >= 20
            results = await asyncio.gather(*(p.communicate(b"hi\n") for p in procs))
            assert [out for out, _ in results] == [b"hi-%d\n" % i for i in range(20)]
            assert [p.returncode for p in procs] == list(range(20))
        finally:  # on failure, leave no child or pipe behind for the next test
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.communicate()

    aio_run(body)


def test_no_fd_leak_within_a_run(aio_run: AioRunner) -> None:
    async def body() -> None:
        async def one() -> None:
            proc = await asyncio.create_subprocess_exec(
                "cat", stdin=PIPE, stdout=PIPE, stderr=PIPE
            )
            assert await proc.communicate(b"x") == (b"x", b"")

        await one()  # warm-up
        # A sync loop whose runs never had to wait has not started its Trio run yet (and
        # so lacks Trio's own wake-up sockets): make sure it has before counting.
        await asyncio.sleep(0.01)
        gc.collect()
        before = open_fds()
        await asyncio.gather(*(one() for _ in range(10)))
        # Pipe transports close a few loop iterations after the child exits (more of them
        # in debug mode): give them up to 5 s.
        for _ in range(500):
            gc.collect()
            if open_fds() == before:
                break
            await asyncio.sleep(0.01)
        assert open_fds() == before

    aio_run(body)


def test_sync_loop_child_exits_while_loop_stopped() -> None:
    """A child spawned in one run and exiting between runs is reaped in the next run."""
    loop = asyncio.new_event_loop()
    try:
        proc = loop.run_until_complete(
            asyncio.create_subprocess_exec("sh", "-c", "read x; exit 9", stdin=PIPE, stdout=PIPE)
        )
        # let the child exit while the loop is stopped, and wait (outside the loop) until
        # it is a zombie, without reaping it
        assert proc.stdin is not None
        os.write(proc.stdin.transport.get_extra_info("pipe").fileno(), b"go\n")
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        assert proc.returncode is None
        out, _ = loop.run_until_complete(asyncio.wait_for(proc.communicate(), 20))
        assert out == b""
        assert proc.returncode == 9
    finally:
        loop.close()


def test_subprocess_transport_protocol(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        lost = loop.create_future()
        chunks: list[tuple[int, bytes]] = []

        class P(asyncio.SubprocessProtocol):
            def pipe_data_received(self, fd: int, data: bytes) -> None:
                chunks.append((fd, data))

            def process_exited(self) -> None:
                exited.set_result(None)

            def connection_lost(self, exc: BaseException | None) -> None:
                lost.set_result(exc)

        transport, _ = await loop.subprocess_exec(
            P, "sh", "-c", "echo a; echo b >&2; exit 2", stdin=None
        )
        try:
            await exited
            assert transport.get_returncode() == 2
            assert transport.get_pid() > 0
            assert await lost is None  # after both pipes are closed
        finally:
            transport.close()
        assert b"".join(d for fd, d in chunks if fd == 1) == b"a\n"
        assert b"".join(d for fd, d in chunks if fd == 2) == b"b\n"

    aio_run(body)


def test_stderr_to_stdout_and_child_not_reading_stdin(aio_run: AioRunner) -> None:
    async def body() -> None:
        proc = await asyncio.create_subprocess_shell(
            "echo one; echo two >&2", stdout=PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, err = await proc.communicate()
        assert sorted(out.splitlines()) == [b"one", b"two"]
        assert err is None
        # the child exits without reading: the broken pipe is not an error
        proc = await asyncio.create_subprocess_exec("true", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(b"x" * 1_000_000)
        assert (out, proc.returncode) == (b"", 0)

    aio_run(body)


def test_without_pidfd_a_thread_waits(our_aio_run: AioRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where pidfd_open is missing or refused, a waiter thread reaps the child."""

    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)

    async def body() -> None:
        names_before = {t.name for t in threading.enumerate()}
        proc = await asyncio.create_subprocess_exec("sh", "-c", "read x; exit 5", stdin=PIPE)
        waiters = {t.name for t in threading.enumerate()} - names_before
        assert any(str(proc.pid) in name for name in waiters)
        await proc.communicate(b"\n")
        assert proc.returncode == 5

    our_aio_run(body)
