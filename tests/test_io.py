"""Network and pipe I/O on both our loops, with stock asyncio's selector loop as reference.

Each test has one body (an asyncio coroutine function) run by the ``aio_run`` fixture on
stock asyncio, our sync loop and our async loop; the fixture also checks that closing the
loop leaves no fd open.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from trio_asyncio._versions import PY313

from conftest import AioRunner

HOST = "127.0.0.1"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class EchoServerProtocol(asyncio.Protocol):
    """Echo everything; record connection_lost."""

    instances: list[EchoServerProtocol]

    def __init__(self, lost: list[BaseException | None] | None = None) -> None:
        self.lost = lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost is not None:
            self.lost.append(exc)


class CollectProtocol(asyncio.Protocol):
    """Collect received bytes; wake a waiter once enough have arrived."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and len(self.buf) >= self.want and not self.waiter.done():
            self.waiter.set_result(None)

    async def read_exactly(self, n: int) -> bytes:
        self.want = n
        if len(self.buf) < n:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        data, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return data

    def eof_received(self) -> bool:
        self.eof.set_result(None)
        return True  # keep the transport open for writing

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(100)
    sock.setblocking(False)
    return sock


# ---------------------------------------------------------------------------
# loop.sock_*
# ---------------------------------------------------------------------------


def test_sock_methods_tcp(aio_run: AioRunner) -> None:
    payload = os.urandom(2_000_000)  # far more than a socket buffer

    async def body() -> None:
        loop = asyncio.get_running_loop()
        with listening_socket() as lsock, socket.socket() as csock:
            csock.setblocking(False)
            accepting = asyncio.ensure_future(loop.sock_accept(lsock))
            await loop.sock_connect(csock, lsock.getsockname())
            ssock, addr = await accepting
            with ssock:
                assert addr == csock.getsockname()
                assert ssock.gettimeout() == 0.0 or not ssock.getblocking()

                async def receive_all(n: int) -> bytes:
                    got = bytearray()
                    while len(got) < n:
                        chunk = await loop.sock_recv(ssock, 65536)
                        assert chunk, "premature EOF"
                        got += chunk
                    return bytes(got)

                sent, received = await asyncio.gather(
                    loop.sock_sendall(csock, payload), receive_all(len(payload))
                )
                assert sent is None
                assert received == payload

                # sock_recv_into, in the other direction
                await loop.sock_sendall(ssock, b"0123456789")
                buf = bytearray(16)
                got = 0
                while got < 10:
                    n = await loop.sock_recv_into(csock, memoryview(buf)[got:])
                    assert n > 0
                    got += n
                assert bytes(buf[:10]) == b"0123456789"

                # EOF: peer closes, recv returns b""
                csock.shutdown(socket.SHUT_WR)
                assert await loop.sock_recv(ssock, 100) == b""

    aio_run(body)


def test_sock_recv_waits_for_data(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await asyncio.sleep(0.01)
            assert not recv.done()
            loop.call_soon(b.send, b"late")
            assert await recv == b"late"
            # a cancelled sock_recv unregisters its reader: a second one works
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            recv.cancel()
            with pytest.raises(asyncio.CancelledError):
                await recv
            b.send(b"again")
            assert await loop.sock_recv(a, 100) == b"again"

    aio_run(body)


def test_sock_udp_sendto_recvfrom(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(type=socket.SOCK_DGRAM) as a, socket.socket(
            type=socket.SOCK_DGRAM
        ) as b:
            for s in (a, b):
                s.bind((HOST, 0))
                s.setblocking(False)
            receiving = asyncio.ensure_future(loop.sock_recvfrom(b, 1000))
            await asyncio.sleep(0)
            assert await loop.sock_sendto(a, b"datagram", b.getsockname()) == 8
            data, addr = await receiving
            assert (data, addr) == (b"datagram", a.getsockname())
            await loop.sock_sendto(b, b"reply", a.getsockname())
            buf = bytearray(100)
            n, addr = await loop.sock_recvfrom_into(a, buf)
            assert (bytes(buf[:n]), addr) == (b"reply", b.getsockname())

    aio_run(body)


# ---------------------------------------------------------------------------
# create_connection / create_server with protocols
# ---------------------------------------------------------------------------


def test_protocol_echo_round_trips(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        lost: list[BaseException | None] = []
        server = await loop.create_server(lambda: EchoServerProtocol(lost), HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, proto = await loop.create_connection(CollectProtocol, HOST, port)
            assert transport.get_extra_info("peername") == (HOST, port)
            for i in range(100):
                msg = b"ping %d\n" % i
                transport.write(msg)
                assert await proto.read_exactly(len(msg)) == msg
            big = os.urandom(1_000_000)
            transport.write(big)
            assert await proto.read_exactly(len(big)) == big
            transport.close()
            assert await proto.lost is None
            # the server side saw the connection go
            while not lost:
                await asyncio.sleep(0.001)
            assert lost == [None]

    aio_run(body)


def test_many_concurrent_connections(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServerProtocol, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]

            async def client(i: int) -> int:
                reader, writer = await asyncio.open_connection(HOST, port)
                try:
                    for j in range(10):
                        line = b"%d-%d\n" % (i, j)
                        writer.write(line)
                        assert await reader.readline() == line
                finally:
                    writer.close()
                    await writer.wait_closed()
                return i

            results = await asyncio.gather(*(client(i) for i in range(50)))
            assert results == list(range(50))

    aio_run(body)


def test_streams_and_half_close(aio_run: AioRunner) -> None:
    async def body() -> None:
        server_done = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()  # until the client's write_eof
            assert reader.at_eof()
            writer.write(data[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            server_done.set_result(data)

        server = await asyncio.start_server(handle, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(HOST, port)
            assert writer.can_write_eof()
            writer.write(b"hello world")
            writer.write_eof()
            assert await reader.read() == b"dlrow olleh"
            assert await server_done == b"hello world"
            writer.close()
            await writer.wait_closed()

    aio_run(body)


def test_protocol_eof_received_keeps_writing(aio_run: AioRunner) -> None:
    """A protocol returning True from eof_received can still write after the peer's EOF."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[CollectProtocol] = loop.create_future()

        def factory() -> CollectProtocol:
            proto = CollectProtocol()
            accepted.set_result(proto)
            return proto

        server = await loop.create_server(factory, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            ctransport, cproto = await loop.create_connection(CollectProtocol, HOST, port)
            sproto = await accepted
            ctransport.write(b"abc")
            ctransport.write_eof()
            assert await sproto.read_exactly(3) == b"abc"
            await sproto.eof
            sproto.transport.write(b"after eof")  # type: ignore[attr-defined]
            assert await cproto.read_exactly(9) == b"after eof"
            sproto.transport.close()
            await cproto.eof
            assert await sproto.lost is None
            ctransport.close()
            assert await cproto.lost is None

    aio_run(body)


def test_connection_lost_on_peer_close_and_reset(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        with listening_socket() as lsock:
            accepting = asyncio.ensure_future(loop.sock_accept(lsock))
            transport, proto = await loop.create_connection(
                CollectProtocol, sock=None, host=HOST, port=lsock.getsockname()[1]
            )
            peer, _ = await accepting
            peer.send(b"bye")
            peer.close()
            assert await proto.read_exactly(3) == b"bye"
            await proto.eof
            # eof_received returned True: our side is still open until we close it
            assert not transport.is_closing()
            transport.close()
            assert await proto.lost is None

            # an RST from the peer: connection_lost gets the error
            accepting = asyncio.ensure_future(loop.sock_accept(lsock))
            transport, proto = await loop.create_connection(
                CollectProtocol, HOST, lsock.getsockname()[1]
            )
            peer, _ = await accepting
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            peer.close()
            exc = await proto.lost
            assert isinstance(exc, ConnectionResetError)
            assert transport.is_closing()

    aio_run(body)


def test_server_close_and_wait_closed(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServerProtocol, HOST, 0)
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(CollectProtocol, HOST, port)
        transport.write(b"x")
        assert await proto.read_exactly(1) == b"x"
        server.close()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, HOST, port)
        # existing connections survive the server's close
        transport.write(b"y")
        assert await proto.read_exactly(1) == b"y"
        transport.close()
        await proto.lost
        # (from 3.12 wait_closed also waits for the server's connections to end)
        await asyncio.wait_for(server.wait_closed(), 10)

    aio_run(body)


def test_server_start_serving_false_and_serve_forever_cancel(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServerProtocol, HOST, 0, start_serving=False)
        assert not server.is_serving()
        serving = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"q\n")
        assert await reader.readline() == b"q\n"
        writer.close()
        await writer.wait_closed()
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        assert not server.is_serving()
        await server.wait_closed()

    aio_run(body)


def test_create_connection_refused(aio_run: AioRunner) -> None:
    async def body() -> None:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]  # bound, not listening
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(HOST, port)

    aio_run(body)


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------


class DatagramCollector(asyncio.DatagramProtocol):
    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.queue: asyncio.Queue[tuple[bytes, object]] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.echo:
            self.transport.sendto(data.upper(), addr)  # type: ignore[attr-defined]
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait((b"", exc))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(exc)


def test_datagram_endpoints(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        stransport, sproto = await loop.create_datagram_endpoint(
            lambda: DatagramCollector(echo=True), local_addr=(HOST, 0)
        )
        saddr = stransport.get_extra_info("sockname")
        ctransport, cproto = await loop.create_datagram_endpoint(
            DatagramCollector, remote_addr=saddr
        )
        caddr = ctransport.get_extra_info("sockname")
        for i in range(20):
            ctransport.sendto(b"msg %d" % i)
        got = [await cproto.queue.get() for _ in range(20)]
        assert sorted(d for d, _ in got) == sorted(b"MSG %d" % i for i in range(20))
        assert {a for _, a in got} == {saddr}
        server_got = [sproto.queue.get_nowait() for _ in range(20)]
        assert {a for _, a in server_got} == {caddr}
        ctransport.close()
        stransport.close()
        assert await cproto.closed is None
        assert await sproto.closed is None

    aio_run(body)


# ---------------------------------------------------------------------------
# Unix sockets
# ---------------------------------------------------------------------------


def test_unix_server_and_connection(aio_run: AioRunner, tmp_path: Path) -> None:
    path = str(tmp_path / "sock")

    async def body() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_unix_server(handle, path)
        async with server:
            assert os.path.exists(path)
            clients = [await asyncio.open_unix_connection(path) for _ in range(5)]
            for i, (reader, writer) in enumerate(clients):
                writer.write(b"hello %d\n" % i)
            for i, (reader, writer) in enumerate(clients):
                assert await reader.readline() == b"HELLO %d\n" % i
                writer.write_eof()
                assert await reader.read() == b""
                writer.close()
                await writer.wait_closed()
        await server.wait_closed()
        # 3.11/3.12 leave the socket file behind (refused); 3.13 unlinks it at close
        with pytest.raises(FileNotFoundError if PY313 else ConnectionRefusedError):
            await asyncio.open_unix_connection(path)

    aio_run(body)


def test_unix_socketpair_connection(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        ta, pa = await loop.create_unix_connection(CollectProtocol, sock=a)
        tb, pb = await loop.create_unix_connection(CollectProtocol, sock=b)
        ta.write(b"to b")
        tb.write(b"to a")
        assert await pb.read_exactly(4) == b"to b"
        assert await pa.read_exactly(4) == b"to a"
        ta.close()
        await pb.eof
        tb.close()
        assert await pa.lost is None
        assert await pb.lost is None

    aio_run(body)


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


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
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    return server_ctx, client_ctx


async def _upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass


def test_tls_echo(aio_run: AioRunner, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls_contexts

    async def body() -> None:
        server = await asyncio.start_server(_upper_echo, HOST, 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                HOST, port, ssl=client_ctx, server_hostname="localhost"
            )
            ssl_obj = writer.get_extra_info("ssl_object")
            assert ssl_obj is not None
            assert ssl_obj.getpeercert()["subject"] == ((("commonName", "localhost"),),)
            for i in range(20):
                writer.write(b"line %d\n" % i)
                assert await reader.readline() == b"LINE %d\n" % i
            big = b"x" * 60_000 + b"\n"  # under the stream limit
            writer.write(big)
            assert await reader.readline() == big.upper()
            writer.close()
            await writer.wait_closed()

    aio_run(body)


def test_tls_rejects_unknown_certificate(
    aio_run: AioRunner, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, _ = tls_contexts

    async def body() -> None:
        loop = asyncio.get_running_loop()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
            # In debug mode asyncio reports the server side of the failed handshake to the
            # exception handler; on an open_loop loop that would end the loop (by design).
            if "transport creation" not in str(context.get("message")):
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        server = await asyncio.start_server(_upper_echo, HOST, 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(
                    HOST, port, ssl=ssl.create_default_context(), server_hostname="localhost"
                )

    aio_run(body)


def test_start_tls_upgrade(
    aio_run: AioRunner, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls_contexts

    async def body() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            assert writer.get_extra_info("ssl_object") is not None
            await _upper_echo(reader, writer)

        server = await asyncio.start_server(handle, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(HOST, port)
            assert writer.get_extra_info("ssl_object") is None
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await writer.start_tls(client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("ssl_object") is not None
            writer.write(b"secret\n")
            assert await reader.readline() == b"SECRET\n"
            writer.close()
            await writer.wait_closed()

    aio_run(body)


# ---------------------------------------------------------------------------
# sendfile
# ---------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3_000_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def test_sock_sendfile(aio_run: AioRunner, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file

    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with a, b, open(path, "rb") as f:
            a.setblocking(False)
            b.setblocking(False)

            async def receive() -> bytes:
                got = bytearray()
                while chunk := await loop.sock_recv(b, 1 << 16):
                    got += chunk
                return bytes(got)

            async def send() -> int:
                try:
                    return await loop.sock_sendfile(a, f, offset=1000, count=2_000_000)
                finally:
                    a.shutdown(socket.SHUT_WR)

            sent, received = await asyncio.gather(send(), receive())
            assert sent == 2_000_000
            assert received == data[1000:2_001_000]
            assert f.tell() == 2_001_000

    aio_run(body)


def test_transport_sendfile(aio_run: AioRunner, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file

    async def body() -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Future[bytes] = loop.create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read())
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, proto = await loop.create_connection(CollectProtocol, HOST, port)
            transport.write(b"header:")
            with open(path, "rb") as f:
                sent = await loop.sendfile(transport, f)
            assert sent == len(data)
            transport.write(b":trailer")
            transport.write_eof()
            assert await received == b"header:" + data + b":trailer"
            await proto.eof
            transport.close()
            await proto.lost

    aio_run(body)


# ---------------------------------------------------------------------------
# Pipes
# ---------------------------------------------------------------------------


def test_read_and_write_pipes(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        rfile, wfile = os.fdopen(r, "rb", 0), os.fdopen(w, "wb", 0)
        try:
            reader = asyncio.StreamReader()
            rtransport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), rfile
            )
            wtransport, wproto = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, wfile
            )
            writer = asyncio.StreamWriter(wtransport, wproto, None, loop)
            assert wtransport.get_extra_info("pipe") is wfile
            data = os.urandom(1_000_000)  # more than the pipe buffer: needs the reader

            async def write() -> None:
                writer.write(data)
                await writer.drain()
                wtransport.close()

            _, got = await asyncio.gather(write(), reader.read())
            assert got == data
            assert reader.at_eof()
            rtransport.close()
            await asyncio.sleep(0)
            assert rfile.closed and wfile.closed
        finally:
            rfile.close()
            wfile.close()

    aio_run(body)


def test_write_pipe_reader_closed(aio_run: AioRunner) -> None:
    """The write pipe's protocol learns that the read end went away."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        lost: asyncio.Future[BaseException | None] = loop.create_future()

        class P(asyncio.Protocol):
            def connection_lost(self, exc: BaseException | None) -> None:
                lost.set_result(exc)

        wtransport, _ = await loop.connect_write_pipe(P, os.fdopen(w, "wb", 0))
        os.close(r)
        exc = await lost
        assert exc is None or isinstance(exc, BrokenPipeError)
        assert wtransport.is_closing()

    aio_run(body)


# ---------------------------------------------------------------------------
# More corners
# ---------------------------------------------------------------------------


def test_connect_by_name_through_getaddrinfo(aio_run: AioRunner) -> None:
    """A host name is resolved in the default executor (our TrioExecutor)."""

    async def body() -> None:
        server = await asyncio.start_server(_upper_echo, "localhost", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            infos = await asyncio.get_running_loop().getaddrinfo(
                "localhost", port, type=socket.SOCK_STREAM
            )
            assert infos and all(i[4][1] == port for i in infos)
            reader, writer = await asyncio.open_connection(
                "localhost", port, happy_eyeballs_delay=0.25
            )
            writer.write(b"by name\n")
            assert await reader.readline() == b"BY NAME\n"
            writer.close()
            await writer.wait_closed()

    aio_run(body)


def test_connect_accepted_socket(aio_run: AioRunner) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        ta, pa = await loop.connect_accepted_socket(CollectProtocol, a)
        with b:
            b.setblocking(False)
            await loop.sock_sendall(b, b"hi there")
            assert await pa.read_exactly(8) == b"hi there"
            ta.write(b"back")
            assert await loop.sock_recv(b, 10) == b"back"
            ta.close()
            assert await pa.lost is None
            assert await loop.sock_recv(b, 10) == b""

    aio_run(body)


def test_udp_error_received(aio_run: AioRunner) -> None:
    """ICMP port unreachable on a connected UDP socket reaches error_received."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        # Bind our end before picking the dead port: a socket that first binds
        # on connect could be handed the just-freed port and talk to itself.
        ours = socket.socket(type=socket.SOCK_DGRAM)
        ours.bind((HOST, 0))
        with socket.socket(type=socket.SOCK_DGRAM) as closed:
            closed.bind((HOST, 0))
            addr = closed.getsockname()
        ours.connect(addr)
        transport, proto = await loop.create_datagram_endpoint(
            DatagramCollector, sock=ours
        )
        try:
            for _ in range(3):
                transport.sendto(b"anyone?")
                data, exc = await asyncio.wait_for(proto.queue.get(), 10)
                assert data == b""
                assert isinstance(exc, ConnectionRefusedError)
        finally:
            transport.close()
        await proto.closed

    aio_run(body)


def test_tls_sendfile_falls_back(
    aio_run: AioRunner,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    data_file: tuple[Path, bytes],
) -> None:
    server_ctx, client_ctx = tls_contexts
    path, data = data_file

    async def body() -> None:
        loop = asyncio.get_running_loop()
        received = loop.create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.readexactly(len(data)))
            writer.close()
            try:
                await writer.wait_closed()
            except (ssl.SSLError, ConnectionError):
                pass

        server = await asyncio.start_server(handle, HOST, 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, proto = await loop.create_connection(
                CollectProtocol, HOST, port, ssl=client_ctx, server_hostname="localhost"
            )
            with open(path, "rb") as f:
                assert await loop.sendfile(transport, f) == len(data)
            assert await received == data
            transport.close()
            await proto.lost

    aio_run(body)


def test_sync_loop_data_arriving_between_runs() -> None:
    """Bytes that arrive while a sync loop is stopped are read in its next run."""
    loop = asyncio.new_event_loop()
    a, b = socket.socketpair()
    try:
        reader, writer = loop.run_until_complete(asyncio.open_connection(sock=a))
        b.sendall(b"while stopped\n")
        b.shutdown(socket.SHUT_WR)
        assert loop.run_until_complete(asyncio.wait_for(reader.read(), 20)) == b"while stopped\n"
        writer.write(b"reply")
        # the write happened while stopped (it went straight out or was buffered)
        loop.run_until_complete(asyncio.wait_for(writer.drain(), 20))
        writer.close()
        loop.run_until_complete(asyncio.wait_for(writer.wait_closed(), 20))
        b.settimeout(20)
        assert b.recv(100) == b"reply"
        assert b.recv(100) == b""
    finally:
        b.close()
        loop.close()
