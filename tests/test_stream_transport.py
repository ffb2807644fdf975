"""The native stream transport (``_stream_transport.py`` + ``src/transport/``): asyncio's
transport contract, on stock asyncio (the reference) and on both our loops with the native
transport switched on.

Each test body is an asyncio coroutine function run by the ``run`` fixture; on our loops the
fixture also asserts that every stream transport the body created was a
``NativeSocketTransport``, so a test cannot silently pass on asyncio's transport.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from trio_asyncio import _stream_transport
from trio_asyncio._stream_transport import NativeSocketTransport

from conftest import AioRunner

HOST = "127.0.0.1"
MiB = 1 << 20


@pytest.fixture(params=["stock", "sync", "async"])
def run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[AioRunner]:
    """Run a body on stock asyncio, or on one of our loops with the native transport on."""
    made: list[int] = []  # fds only: holding the transports would keep them alive
    if request.param != "stock":
        monkeypatch.setattr(_stream_transport, "enabled", True)
        original = NativeSocketTransport.__init__

        def counting_init(self: NativeSocketTransport, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            made.append(self._sock_fd)

        monkeypatch.setattr(NativeSocketTransport, "__init__", counting_init)
    runner = AioRunner(request.param)
    yield runner
    if runner.ours:
        assert made, "the body made no native transport"
    made.clear()


def native(tr: asyncio.BaseTransport) -> bool:
    return isinstance(tr, NativeSocketTransport)


class Recorder(asyncio.Protocol):
    """Records every protocol callback, in order."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.events: list[str] = []
        self.data = bytearray()
        self.lost_exc: list[BaseException | None] = []
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self.keep_open_on_eof = False
        self.want = 0
        self.enough: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.enough is not None and len(self.data) >= self.want and not self.enough.done():
            self.enough.set_result(None)

    async def wait_bytes(self, n: int) -> bytes:
        self.want = n
        if len(self.data) < n:
            self.enough = asyncio.get_running_loop().create_future()
            await self.enough
        return bytes(self.data[:n])

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost_exc.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)


async def connected_pair(
    server_proto: type[asyncio.BaseProtocol] | Any = Recorder,
) -> tuple[Any, Recorder, Any, Any]:
    """A connected (client transport, client protocol, server protocol, server)."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Any] = loop.create_future()

    def factory() -> asyncio.BaseProtocol:
        p = server_proto()
        accepted.set_result(p)
        return p

    server = await loop.create_server(factory, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    tr, proto = await loop.create_connection(Recorder, HOST, port)
    sproto = await accepted
    await asyncio.sleep(0)
    return tr, proto, sproto, server


def shrink_buffers(client: Any, server_side: Any) -> None:
    """Small kernel buffers, so a 1 MiB write cannot vanish into loopback autotuning."""
    client.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    server_side.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)


async def finish(tr: Any, server: Any) -> None:
    tr.close()
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------------------
# Construction, extra info, argument checks
# ---------------------------------------------------------------------------


def test_extra_info_and_argument_checks(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        assert native(tr) == run.ours
        assert isinstance(tr, asyncio.Transport)
        assert proto.events == ["made"]
        sock = tr.get_extra_info("socket")
        assert type(sock).__name__ == "TransportSocket"
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") == server.sockets[0].getsockname()
        assert tr.get_extra_info("no such key", 42) == 42
        assert tr.get_protocol() is proto
        assert tr.can_write_eof() is True
        assert tr.is_reading() and not tr.is_closing()
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=10)
        assert tr.get_write_buffer_limits() == (10, 40)
        with pytest.raises(ValueError, match=r"^high \(1\) must be >= low \(2\) must be >= 0$"):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(TypeError, match="^data argument must be a bytes-like object, not 'str'$"):
            tr.write("text")
        with pytest.raises(TypeError, match="not 'int'"):
            tr.write(1)
        assert tr.get_write_buffer_size() == 0
        tr.write(b"")  # nothing, no error
        tr.write(bytearray(b"ab"))
        tr.write(memoryview(b"--cd--")[2:4])
        tr.writelines([b"e", bytearray(b"f"), memoryview(b"g")])
        assert await sproto.wait_bytes(7) == b"abcdefg"
        tr.write_eof()
        with pytest.raises(RuntimeError, match="^Cannot call write\\(\\) after write_eof\\(\\)$"):
            tr.write(b"x")
        await sproto.eof
        assert "closed" not in repr(tr) and "fd=" in repr(tr)
        await finish(tr, server)
        await proto.lost
        assert tr.get_extra_info("socket") is sock
        assert "closed" in repr(tr)

    run(body)


def _limits_and_writelines_outcomes(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """What set_write_buffer_limits/writelines answer for odd arguments, on *loop*."""
    a, b = socket.socketpair()

    async def body() -> list[Any]:
        tr, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        out: list[Any] = []
        for args in [(1.5, 1), (None, 2.5), (float("inf"), None), (-1, None), ("x", None)]:
            try:
                tr.set_write_buffer_limits(*args)
                out.append(("ok", tr.get_write_buffer_limits()))
            except Exception as exc:
                out.append((type(exc).__name__, str(exc)))
        tr.set_write_buffer_limits()
        for data in [[b"a", 1], [1], "ab", None, [], iter([b"c", bytearray(b"d")])]:
            try:
                tr.writelines(data)
                out.append("ok")
            except Exception as exc:
                out.append((type(exc).__name__, str(exc)))
        tr.write_eof()
        try:
            tr.writelines([b"late"])
        except Exception as exc:
            out.append((type(exc).__name__, str(exc)))
        out.append(b.recv(100))
        tr.close()
        await asyncio.sleep(0)
        return out

    try:
        return loop.run_until_complete(body())
    finally:
        loop.close()
        b.close()


def test_odd_limits_and_writelines_items_as_stock_asyncio() -> None:
    """Non-int limits are compared as asyncio compares them (floats, infinity) with its
    errors; a bad writelines item gets the running version's asyncio error."""
    stock = _limits_and_writelines_outcomes(asyncio.SelectorEventLoop())
    loop = asyncio.new_event_loop()
    assert type(loop).__name__ == "SyncTrioEventLoop"
    assert _limits_and_writelines_outcomes(loop) == stock
    assert stock[0] == ("ok", (1, 1.5))  # the reference did what this test expects


def test_float_limits_pause_and_resume_at_the_same_sizes(run: AioRunner) -> None:
    """high=0.5, low=0.25 behave as asyncio's comparisons do: any buffered byte pauses the
    protocol, and only an empty buffer resumes it."""

    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        shrink_buffers(tr, sproto.transport)
        tr.set_write_buffer_limits(high=0.5, low=0.25)
        assert tr.get_write_buffer_limits() == (0.25, 0.5)
        sproto.transport.pause_reading()
        payload = os.urandom(MiB)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        assert proto.events == ["made", "pause_writing"]
        sproto.transport.resume_reading()
        assert await sproto.wait_bytes(MiB) == payload
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert proto.events == ["made", "pause_writing", "resume_writing"]
        await finish(tr, server)

    run(body)


def test_callback_order_and_waiter(run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        a, b = socket.socketpair()

        class P(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                order.append("connection_made")

            def data_received(self, data: bytes) -> None:
                order.append("data")

            def connection_lost(self, exc: BaseException | None) -> None:
                order.append(f"lost {exc!r}")

        b.sendall(b"early")  # readable before the transport exists
        tr, _ = await loop.connect_accepted_socket(P, a)
        order.append("returned")
        assert native(tr) == run.ours
        for _ in range(5):
            await asyncio.sleep(0)
        assert order == ["connection_made", "returned", "data"]
        tr.close()
        tr.close()  # idempotent
        assert tr.is_closing() and not tr.is_reading()
        assert order[-1] == "data", "connection_lost is called soon, not from close()"
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert order == ["connection_made", "returned", "data", "lost None"]
        assert b.recv(10) == b""
        b.close()

    run(body)


# ---------------------------------------------------------------------------
# Writing: buffering and flow control
# ---------------------------------------------------------------------------


def test_one_mib_write_to_slow_reader_pauses_and_resumes(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        shrink_buffers(tr, sproto.transport)
        sproto.transport.pause_reading()
        assert not sproto.transport.is_reading()
        payload = os.urandom(MiB)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0, "1 MiB does not fit the socket buffers"
        assert proto.events == ["made", "pause_writing"]
        assert tr._protocol_paused
        for _ in range(3):
            await asyncio.sleep(0.01)
        assert proto.events == ["made", "pause_writing"], "the reader is paused"
        sproto.transport.resume_reading()
        assert await sproto.wait_bytes(MiB) == payload
        while tr.get_write_buffer_size():
            await asyncio.sleep(0.001)
        assert proto.events == ["made", "pause_writing", "resume_writing"]
        assert not tr._protocol_paused
        await finish(tr, server)
        assert await proto.lost is None

    run(body)


def test_close_flushes_the_buffer_first(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        payload = os.urandom(2 * MiB)
        tr.write(payload)
        tr.close()
        assert tr.is_closing()
        assert await sproto.wait_bytes(len(payload)) == payload
        await sproto.eof
        assert await proto.lost is None
        assert proto.lost_exc == [None]
        assert tr.get_write_buffer_size() == 0
        server.close()
        await server.wait_closed()

    run(body)


def test_abort_drops_buffered_data(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        shrink_buffers(tr, sproto.transport)
        sproto.transport.pause_reading()
        tr.write(b"x" * (4 * MiB))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.get_write_buffer_size() == 0
        assert tr.is_closing()
        tr.abort()
        tr.close()
        tr.write(b"after abort")  # ignored, as asyncio
        assert await proto.lost is None
        await asyncio.sleep(0)
        assert proto.events.count("lost") == 1
        sproto.transport.resume_reading()
        await sproto.lost
        assert len(sproto.data) < 4 * MiB
        server.close()
        await server.wait_closed()

    run(body)


def test_writes_after_connection_lost_warn_after_threshold(
    run: AioRunner, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        tr, proto, _, server = await connected_pair()
        tr.abort()
        await proto.lost
        for _ in range(7):
            tr.write(b"x")
        await finish(tr, server)

    with caplog.at_level("WARNING", logger="asyncio"):
        run(body)
    assert [r.getMessage() for r in caplog.records].count("socket.send() raised exception.") == 3


# ---------------------------------------------------------------------------
# Reading: EOF, pause/resume, BufferedProtocol, set_protocol
# ---------------------------------------------------------------------------


def test_eof_both_ways(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        sproto.keep_open_on_eof = True
        tr.write(b"question")
        tr.write_eof()
        tr.write_eof()  # idempotent
        await sproto.eof
        assert bytes(sproto.data) == b"question"
        assert not sproto.transport.is_closing(), "eof_received() returned True"
        sproto.transport.write(b"answer")
        sproto.transport.write_eof()
        await proto.eof
        assert bytes(proto.data) == b"answer"
        assert await proto.lost is None, "eof_received() returned False: transport closed"
        assert proto.events == ["made", "data", "eof", "lost"]
        sproto.transport.close()
        assert await sproto.lost is None
        server.close()
        await server.wait_closed()

    run(body)


def test_pause_and_resume_reading(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        tr.pause_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        sproto.transport.write(b"held")
        for _ in range(3):
            await asyncio.sleep(0.01)
        assert proto.data == b""
        tr.resume_reading()
        tr.resume_reading()
        assert tr.is_reading()
        assert await proto.wait_bytes(4) == b"held"
        tr.close()
        assert not tr.is_reading()
        tr.resume_reading()  # no effect once closing
        assert not tr.is_reading()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(body)


def test_close_from_inside_data_received(run: AioRunner) -> None:
    class Closer(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.transport.write(b"bye")
            self.transport.close()
            self.transport.close()

    async def body() -> None:
        tr, proto, sproto, server = await connected_pair(Closer)
        tr.write(b"hello")
        assert await sproto.lost is None
        assert sproto.events == ["made", "data", "lost"]
        await proto.eof
        assert bytes(proto.data) == b"bye"
        assert await proto.lost is None
        server.close()
        await server.wait_closed()

    run(body)


def test_buffered_protocol_reads_into_its_buffer(run: AioRunner) -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.sizes: list[int] = []
            self.lost = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> memoryview:
            assert sizehint == -1
            return memoryview(self.buf)[:700]

        def buffer_updated(self, nbytes: int) -> None:
            assert 0 < nbytes <= 700
            self.sizes.append(nbytes)
            self.got += self.buf[:nbytes]

        def eof_received(self) -> None:
            return None

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def body() -> None:
        tr, proto, sproto, server = await connected_pair(Buffered)
        payload = os.urandom(100_000)
        tr.write(payload)
        tr.close()
        assert await sproto.lost is None
        assert bytes(sproto.got) == payload
        assert max(sproto.sizes) == 700
        server.close()
        await server.wait_closed()

    run(body)


def test_a_full_read_leaves_no_data_behind(run: AioRunner) -> None:
    # Our transports register edge-triggered: a read that fills the buffer must have the
    # socket reported again, since no new data (no new edge) may ever come.
    class Small(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(16)
            self.got = bytearray()
            self.full = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]
            if len(self.got) >= 64 and not self.full.done():
                self.full.set_result(None)

    async def body() -> None:
        tr, proto, sproto, server = await connected_pair(Small)
        tr.write(bytes(range(64)))  # one segment, then silence: the connection stays open
        await asyncio.wait_for(sproto.full, 10)
        assert bytes(sproto.got) == bytes(range(64))
        tr.close()
        await proto.lost
        sproto.transport.close()
        server.close()
        await server.wait_closed()

    run(body)


def test_echo_round_trips_cost_no_rearm(run: AioRunner) -> None:
    # Edge-triggered registration: a round trip on our transports re-arms nothing (the
    # level-triggered emulation re-armed each delivered event: an epoll_ctl per event).
    if not run.ours:
        pytest.skip("loop statistics are our loops' own")

    class Echo(Recorder):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def body() -> None:
        loop: Any = asyncio.get_running_loop()
        tr, proto, sproto, server = await connected_pair(Echo)
        assert native(tr) and native(sproto.transport)
        await asyncio.sleep(0.01)
        before = loop.statistics().rearms
        for i in range(1, 201):
            tr.write(b"x" * 1024)
            await proto.wait_bytes(1024 * i)
        assert loop.statistics().rearms - before < 10
        tr.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(body)


def test_get_buffer_errors_are_fatal(run: AioRunner) -> None:
    class Empty(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return bytearray()

        def buffer_updated(self, nbytes: int) -> None:
            raise AssertionError("not reached")

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, ctx: reports.append(ctx))
        tr, proto, sproto, server = await connected_pair(Empty)
        tr.write(b"x")
        exc = await sproto.lost
        assert isinstance(exc, RuntimeError)
        assert str(exc) == "get_buffer() returned an empty buffer"
        [ctx] = reports
        assert ctx["message"] == "Fatal error: protocol.get_buffer() call failed."
        assert ctx["exception"] is exc
        assert ctx["protocol"] is sproto
        assert isinstance(ctx["transport"], asyncio.Transport)
        await finish(tr, server)

    run(body)


def test_data_received_error_reaches_exception_handler(run: AioRunner) -> None:
    class Boom(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError("boom")

    async def body() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, ctx: reports.append(ctx))
        tr, proto, sproto, server = await connected_pair(Boom)
        tr.write(b"x")
        exc = await sproto.lost
        assert isinstance(exc, ZeroDivisionError)
        assert [r["message"] for r in reports] == [
            "Fatal error: protocol.data_received() call failed."
        ]
        assert sproto.events.count("lost") == 1
        await proto.lost  # the peer was closed
        await finish(tr, server)

    run(body)


def test_set_protocol_switches_read_path(run: AioRunner) -> None:
    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        assert await sproto.wait_bytes(0) == b""
        second = Recorder()
        sproto.transport.set_protocol(second)
        assert sproto.transport.get_protocol() is second
        tr.write(b"to the second")
        assert await second.wait_bytes(13) == b"to the second"
        assert sproto.data == b""
        await finish(tr, server)
        assert await second.lost is None
        assert not sproto.lost.done()

    run(body)


def test_peer_reset_reaches_connection_lost_once(run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(Recorder, a)
        await asyncio.sleep(0)
        b.close()
        assert await proto.eof is None
        assert await proto.lost is None
        for _ in range(10):
            tr.write(b"x" * 1000)
            await asyncio.sleep(0)
        assert proto.events == ["made", "eof", "lost"]

    run(body)


def test_write_error_is_fatal_and_passed_to_connection_lost(run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(Recorder, a)
        proto.keep_open_on_eof = True
        await asyncio.sleep(0)
        b.close()
        await proto.eof
        tr.write(b"x")
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)
        assert proto.lost_exc == [exc]

    run(body)


# ---------------------------------------------------------------------------
# Unix sockets, streams, sendfile, TLS
# ---------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_unix_streams_echo(run: AioRunner) -> None:
    async def body() -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            server = await asyncio.start_unix_server(_echo, path)
            reader, writer = await asyncio.open_unix_connection(path)
            assert native(writer.transport) == run.ours
            assert writer.get_extra_info("peername") == path
            payload = os.urandom(MiB)
            writer.write(payload)
            assert await reader.readexactly(MiB) == payload
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()

    run(body)


def test_sendfile(run: AioRunner, tmp_path: Any) -> None:
    content = os.urandom(300_000)
    f = tmp_path / "data.bin"
    f.write_bytes(content)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        tr, proto, sproto, server = await connected_pair()
        tr.write(b"head:")
        with open(f, "rb") as fh:
            sent = await loop.sendfile(tr, fh, offset=10, count=200_000)
        assert sent == 200_000
        assert tr.is_reading(), "reading resumes after sendfile"
        tr.write(b":tail")
        want = b"head:" + content[10:200_010] + b":tail"
        assert await sproto.wait_bytes(len(want)) == want
        await finish(tr, server)

    run(body)


def test_sendfile_fallback_keeps_protocol(run: AioRunner, tmp_path: Any) -> None:
    content = os.urandom(100_000)
    f = tmp_path / "data.bin"
    f.write_bytes(content)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        tr, proto, sproto, server = await connected_pair()
        with open(f, "rb") as fh:
            assert await loop._sendfile_fallback(tr, fh, 0, None) == len(content)  # type: ignore[attr-defined]
        assert tr.get_protocol() is proto
        assert await sproto.wait_bytes(len(content)) == content
        await finish(tr, server)

    run(body)


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    return server_ctx, client_ctx


def test_start_tls_over_native_transport(
    run: AioRunner, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls_contexts

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        await _echo(reader, writer)

    async def body() -> None:
        server = await asyncio.start_server(handler, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        plain = writer.transport
        assert native(plain) == run.ours
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        payload = os.urandom(MiB)
        writer.write(payload)
        assert await reader.readexactly(MiB) == payload
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(body)


def test_ssl_connection_on_native_transport(
    run: AioRunner, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls_contexts

    async def body() -> None:
        server = await asyncio.start_server(_echo, HOST, 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            HOST, port, ssl=client_ctx, server_hostname="localhost"
        )
        writer.write(b"x" * 100_000)
        assert await reader.readexactly(100_000) == b"x" * 100_000
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(body)


# ---------------------------------------------------------------------------
# Resource warning
# ---------------------------------------------------------------------------


def test_unclosed_transport_warns(run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(asyncio.Protocol, a)
        await asyncio.sleep(0)
        tr.pause_reading()  # no loop registration keeps it alive now
        del tr, proto
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        messages = [str(w.message) for w in caught if w.category is ResourceWarning]
        assert any(m.startswith("unclosed transport <") for m in messages), messages
        assert a.fileno() == -1, "the socket was closed with the transport"
        b.close()

    run(body)


def test_native_switch_is_off_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream_transport, "enabled", False)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        tr, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        assert not native(tr)
        tr.close()
        b.close()
        await asyncio.sleep(0)

    AioRunner("sync")(body)


def test_issue_13_write_after_flushing_close_is_ignored(run: AioRunner) -> None:
    """A flushing ``close()`` ends in the write-ready callback; after that the fd may belong
    to another socket, so a late ``write()`` must not reach it. (Stock asyncio raises
    ``AttributeError`` from ``None.send`` here: ours ignores the write as after any other
    connection loss, so this test runs on our loops only.)"""
    if not run.ours:
        pytest.skip("stock asyncio raises AttributeError here (see the docstring)")

    async def body() -> None:
        tr, proto, sproto, server = await connected_pair()
        shrink_buffers(tr, sproto.transport)
        sproto.transport.pause_reading()
        tr.write(b"x" * MiB)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        sproto.transport.resume_reading()
        assert await proto.lost is None
        a, b = socket.socketpair()  # likely to reuse the closed fd number
        try:
            tr.write(b"must not arrive")
            tr.write_eof()
            await asyncio.sleep(0.01)
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                b.recv(100)
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                a.recv(100)
            assert proto.events.count("lost") == 1
        finally:
            a.close()
            b.close()
        server.close()
        await server.wait_closed()

    run(body)


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("1", True), ("0", False)])
def test_native_switch_default_and_env(value: str | None, expected: bool) -> None:
    """On by default; ``TRIO_ASYNCIO_NATIVE_TRANSPORT=0`` at import turns it off."""
    import subprocess
    import sys as _sys

    env = {k: v for k, v in os.environ.items() if k != "TRIO_ASYNCIO_NATIVE_TRANSPORT"}
    if value is not None:
        env["TRIO_ASYNCIO_NATIVE_TRANSPORT"] = value
    code = (
        "import asyncio, socket, trio_asyncio\n"
        "from trio_asyncio._stream_transport import NativeSocketTransport\n"
        "async def main():\n"
        "    a, b = socket.socketpair()\n"
        "    tr, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, a)\n"
        "    print(isinstance(tr, NativeSocketTransport))\n"
        "    tr.close(); b.close(); await asyncio.sleep(0)\n"
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(main()); loop.close()\n"
    )
    out = subprocess.run(
        [_sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(expected)


def test_pause_writing_error_goes_to_exception_handler(run: AioRunner) -> None:
    class BadFlow(Recorder):
        def pause_writing(self) -> None:
            super().pause_writing()
            raise ZeroDivisionError("pause")

    async def body() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, ctx: reports.append(ctx))
        server = await loop.create_server(Recorder, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(BadFlow, HOST, port)
        shrink_buffers(tr, tr)  # only the client side matters here
        tr.set_write_buffer_limits(high=0)
        tr.write(b"x" * MiB)
        assert proto.events == ["made", "pause_writing"]
        [ctx] = reports
        assert ctx["message"] == "protocol.pause_writing() failed"
        assert isinstance(ctx["exception"], ZeroDivisionError)
        assert ctx["transport"] is tr and ctx["protocol"] is proto
        assert not tr.is_closing(), "a flow-control error is not fatal"
        tr.abort()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(body)
