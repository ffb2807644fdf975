"""The native stream socket transport and the loop mixin that hands it out.

``NativeSocketTransport`` is what protocols see for TCP and Unix stream sockets on our loops
when the native transport is on: a Python class (so ``isinstance`` checks against asyncio's
transport classes hold) whose state and I/O live in ``_engine.StreamTransportCore``. Every
stateful method is one call into the core; ``write`` and friends are the core's bound
methods themselves. See ``design/transports.md``.

Switch: on by default. ``TRIO_ASYNCIO_NATIVE_TRANSPORT=0`` in the environment at import (or
``_stream_transport.enabled = False``, read per new connection) gives every connection
asyncio's ``_SelectorSocketTransport`` instead, as before issue 13.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import warnings
from asyncio import base_events, constants, futures, selector_events, sslproto, transports, trsock
from typing import TYPE_CHECKING, Any

from ._engine import StreamTransportCore
from ._versions import PY312

if TYPE_CHECKING:
    import asyncio

#: Whether our loops hand out ``NativeSocketTransport`` (read per new connection).
enabled: bool = os.environ.get("TRIO_ASYNCIO_NATIVE_TRANSPORT", "1").strip() != "0"

# asyncio's Server._attach/_detach take the transport from 3.13 on.
_SERVER_TAKES_TRANSPORT = sys.version_info >= (3, 13)


def _as_size_limit(limit: Any) -> int:
    """The int limit *n* with ``size > limit == size > n`` for every int size."""
    return sys.maxsize if limit >= sys.maxsize else math.floor(limit)


class NativeSocketTransport(transports._FlowControlMixin):
    """A stream socket transport whose buffering and I/O run in Rust.

    Same contract as asyncio's ``_SelectorSocketTransport``: ``write`` sends at once what the
    socket takes and buffers the rest; ``close`` flushes first; ``connection_lost`` is called
    exactly once, from the loop.
    """

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    max_size = 256 * 1024

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        # _FlowControlMixin.__init__ is not called: its state lives in the core.
        self._extra = {} if extra is None else extra
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock_fd = sock.fileno()
        core = StreamTransportCore(loop, sock, protocol, self, server)
        self._core = core
        # Limits given as something other than ints (asyncio compares whatever it is given):
        # what get_write_buffer_limits() answers; the core holds their integer equivalents.
        self._limits: tuple[Any, Any] | None = None
        # The hot methods are the core's own (no Python frame per call).
        self.write = core.write  # type: ignore[method-assign]
        self.is_closing = core.is_closing  # type: ignore[method-assign]
        self.is_reading = core.is_reading  # type: ignore[method-assign]
        self.pause_reading = core.pause_reading  # type: ignore[method-assign]
        self.resume_reading = core.resume_reading  # type: ignore[method-assign]
        self.get_write_buffer_size = core.get_write_buffer_size  # type: ignore[method-assign]
        if server is not None:
            if _SERVER_TAKES_TRANSPORT:
                server._attach(self)
            else:
                server._attach()
        loop._transports[self._sock_fd] = self  # type: ignore[attr-defined]
        base_events._set_nodelay(sock)  # type: ignore[attr-defined]
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(core._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)  # type: ignore[attr-defined]

    # -- the state asyncio's own code and tests read ------------------------------------

    @property
    def _loop(self) -> Any:
        return self._core._loop

    @property
    def _sock(self) -> socket.socket | None:
        return self._core._sock  # type: ignore[no-any-return]

    @property
    def _protocol(self) -> Any:
        return self._core.get_protocol()

    @property
    def _server(self) -> Any:
        return self._core._server

    @property
    def _closing(self) -> bool:
        return self._core._closing

    @property
    def _eof(self) -> bool:
        return self._core._eof

    @property
    def _paused(self) -> bool:
        return self._core._paused

    @property
    def _conn_lost(self) -> int:
        return self._core._conn_lost

    @property
    def _protocol_paused(self) -> bool:
        return self._core._protocol_paused

    @property
    def _high_water(self) -> Any:
        return self.get_write_buffer_limits()[1]

    @property
    def _low_water(self) -> Any:
        return self.get_write_buffer_limits()[0]

    @property
    def _empty_waiter(self) -> Any:
        return self._core._empty_waiter

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        core = self.__dict__.get("_core")
        loop = None if core is None else core._loop
        if core is None or core._sock is None:
            info.append("closed")
        elif core._closing:
            info.append("closing")
        info.append(f"fd={self.__dict__.get('_sock_fd')}")
        if loop is not None and not loop.is_closed():
            fd = self._sock_fd
            sel = loop._selector
            reading = selector_events._test_selector_event(sel, fd, 1)  # type: ignore[attr-defined]
            info.append("read=polling" if reading else "read=idle")
            writing = selector_events._test_selector_event(sel, fd, 2)  # type: ignore[attr-defined]
            state = "polling" if writing else "idle"
            size = 0 if core is None else core.get_write_buffer_size()
            info.append(f"write=<{state}, bufsize={size}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        core = self.__dict__.get("_core")
        sock = None if core is None else core._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()

    # -- the transport API ---------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._core.write(data)

    def writelines(self, list_of_data: Any) -> None:
        if not PY312:
            self._core.writelines(list_of_data)  # 3.11: write(b"".join(list_of_data))
            return
        # 3.12+ asyncio: state checks first, then a memoryview of each item (its TypeError
        # for a bad one).
        core = self._core
        if core._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if core._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if not list_of_data:
            return
        core.writelines([memoryview(data) for data in list_of_data])

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self._core.close()

    def abort(self) -> None:
        self._core.abort()

    def is_closing(self) -> bool:
        return self._core.is_closing()

    def is_reading(self) -> bool:
        return self._core.is_reading()

    def pause_reading(self) -> None:
        self._core.pause_reading()

    def resume_reading(self) -> None:
        self._core.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._core.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._core.get_protocol()  # type: ignore[no-any-return]

    def get_write_buffer_size(self) -> int:
        return self._core.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[Any, Any]:
        limits = self._limits
        return self._core.get_write_buffer_limits() if limits is None else limits

    def set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        self._set_write_buffer_limits(high, low)

    def _set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        if (high is None or type(high) is int) and (low is None or type(low) is int):
            self._core.set_write_buffer_limits(high, low)
            self._limits = None
            return
        # Floats, Fractions, ...: asyncio's own defaults and check (and so its errors), then
        # the integer limits that pause and resume at the same buffer sizes (sizes are ints).
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._core.set_write_buffer_limits(_as_size_limit(high), _as_size_limit(low))
        self._limits = (low, high)

    def _maybe_pause_protocol(self) -> None:
        self._core._maybe_pause_protocol()

    def _maybe_resume_protocol(self) -> None:
        self._core._maybe_resume_protocol()

    # -- the private API asyncio's loop code calls (sendfile, errors) ---------------------

    def _make_empty_waiter(self) -> asyncio.Future[None]:
        return self._core._make_empty_waiter()  # type: ignore[no-any-return]

    def _reset_empty_waiter(self) -> None:
        self._core._reset_empty_waiter()

    def _force_close(self, exc: BaseException | None) -> None:
        self._core._force_close(exc)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        self._core._fatal_error(exc, message)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        self._core._call_connection_lost(exc)

    def _read_ready(self) -> None:
        self._core._read_ready()

    def _write_ready(self) -> None:
        self._core._write_ready()


class NativeStreamTransportMixin:
    """Listed first among the loop's bases: hands out ``NativeSocketTransport`` for stream
    sockets when :data:`enabled`, asyncio's transport otherwise."""

    __slots__ = ()

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> transports.Transport:
        if not enabled:
            return super()._make_socket_transport(  # type: ignore[misc, no-any-return]
                sock, protocol, waiter, extra=extra, server=server
            )
        if sys.version_info >= (3, 12):
            self._ensure_fd_no_transport(sock)  # type: ignore[attr-defined]
        return NativeSocketTransport(self, sock, protocol, waiter, extra, server)  # type: ignore[arg-type]

    def _make_ssl_transport(
        self,
        rawsock: socket.socket,
        protocol: asyncio.BaseProtocol,
        sslcontext: Any,
        waiter: asyncio.Future[None] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = constants.SSL_SHUTDOWN_TIMEOUT,
    ) -> transports.Transport:
        # asyncio's selector loop builds its socket transport here directly, not through
        # _make_socket_transport: the TLS layer (SSLProtocol) runs over ours the same way.
        if not enabled:
            return super()._make_ssl_transport(  # type: ignore[misc, no-any-return]
                rawsock,
                protocol,
                sslcontext,
                waiter,
                server_side=server_side,
                server_hostname=server_hostname,
                extra=extra,
                server=server,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        if sys.version_info >= (3, 12):
            self._ensure_fd_no_transport(rawsock)  # type: ignore[attr-defined]
        tls = sslproto.SSLProtocol(
            self,  # type: ignore[arg-type]
            protocol,
            sslcontext,
            waiter,  # type: ignore[arg-type]
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        NativeSocketTransport(self, rawsock, tls, extra=extra, server=server)  # type: ignore[arg-type]
        return tls._app_transport
