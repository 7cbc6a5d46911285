"""Forwarding to the dispatcher: a pool of persistent HTTP/1.1 connections.

Each forward is one ``transport.write`` of precomputed header bytes plus the body, and the
answer is parsed by llhttp (``httptools``) behind a small :class:`asyncio.Protocol` - no task,
stream reader or client session per update. The pool grows on demand (the sidecar's in-flight
limit bounds it) and forgets connections the dispatcher closes, e.g. when it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NamedTuple, cast

import httptools

from .http1 import HttpError, chunked_only
from .target import UpstreamTarget

log = logging.getLogger(__name__)

#: Webhook replies may carry uploaded files (multipart); anything beyond this is a runaway.
MAX_RESPONSE_BYTES = 64 << 20

PROBE_TIMEOUT = 1.0

OK, UNAVAILABLE, TIMEOUT, RESET = range(4)


class UpstreamResult(NamedTuple):
    error: int  # OK, UNAVAILABLE (cannot connect), TIMEOUT, RESET (lost or garbled answer)
    status: int = 0
    content_type: bytes = b""
    body: bytes = b""


Callback = Callable[[UpstreamResult], None]

_UNAVAILABLE = UpstreamResult(UNAVAILABLE)
_TIMEOUT = UpstreamResult(TIMEOUT)
_RESET = UpstreamResult(RESET)


class _Exchange:
    """One forward: survives a retry on a fresh connection, ends exactly once."""

    __slots__ = ("callback", "finished", "request", "retried", "timer")

    def __init__(self, request: bytes, callback: Callback) -> None:
        self.request = request
        self.callback = callback
        self.finished = False
        self.retried = False
        self.timer: asyncio.TimerHandle | None = None

    def finish(self, result: UpstreamResult) -> None:
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.callback(result)


class _Connection(asyncio.Protocol):
    """One persistent connection to the dispatcher; llhttp parses its answers."""

    __slots__ = (
        "_body", "_content_type", "_framed", "_head_done", "_parser", "_pool", "_result", "_reusable",
        "_size", "_te", "exchange", "got_bytes", "reused", "transport",
    )  # fmt: skip

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.reused = False
        self._parser = httptools.HttpResponseParser(self)
        self._result: UpstreamResult | None = None
        self._reusable = False
        self.got_bytes = False
        self._begin()

    def _begin(self) -> None:
        self._head_done = False
        self._framed = False  # Content-Length, chunked or no body: the end is in the bytes
        self._content_type = b""
        self._te: list[bytes] | None = None
        self._body: list[bytes] = []
        self._size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, exchange: _Exchange) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self.transport.write(exchange.request)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.abort()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._result is None:
                log.warning("malformed answer from the upstream: %s", _reason(exc))
                self.abort()
                self._end(_RESET, reusable=False)
                return
            self._reusable = False  # garbage after a complete answer: deliver it, drop the connection
        result = self._result
        if result is not None:
            self._result = None
            self._end(result, self._reusable)

    # -- httptools callbacks (the outcome is delivered after feed_data, never from inside it) --

    def on_message_begin(self) -> None:
        if self._result is not None:
            self._reusable = False  # bytes after the answer: framing no longer trusted
            raise HttpError(502, "bytes after the answer")
        self._begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._content_type = value
        elif name == b"content-length":  # llhttp checked it: one value, digits only
            self._framed = True
            if int(value) > MAX_RESPONSE_BYTES:
                raise HttpError(502, "response too large")
        elif name == b"transfer-encoding":
            self._te = [*(self._te or ()), value]

    def on_headers_complete(self) -> None:
        parser = self._parser
        if parser.get_http_version() not in ("1.1", "1.0"):
            raise HttpError(502, "unsupported HTTP version")
        status = parser.get_status_code()
        if chunked_only(self._te, 502) or status in (204, 304) or 100 <= status < 200:
            self._framed = True
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            raise HttpError(502, "response too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200:
            self._begin()  # interim response (100 Continue); the real one follows
            return
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._result = UpstreamResult(OK, status, self._content_type, body)
        self._reusable = parser.should_keep_alive()

    def _end(self, result: UpstreamResult, reusable: bool) -> None:
        exchange = self.exchange
        self.exchange = None
        self.got_bytes = False
        self._head_done = False  # the next answer starts afresh (on_message_begin resets the rest)
        if reusable and exchange is not None and not exchange.finished:
            self.reused = True
            self._pool.release(self)
        elif self.transport is not None:
            self.transport.close()
        if exchange is not None:
            exchange.finish(result)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool.discard(self)
        exchange = self.exchange
        if exchange is None or exchange.finished:
            return
        if self._head_done and not self._framed:
            # Neither a length nor chunked: the body ends when the upstream closes.
            self._end(UpstreamResult(OK, self._parser.get_status_code(), self._content_type,
                                     b"".join(self._body)), reusable=False)  # fmt: skip
            return
        self.exchange = None
        if self.reused and not self.got_bytes and not exchange.retried:
            # A kept-alive connection the dispatcher closed just as we wrote: it never read the
            # request (it said nothing at all), so one retry on a fresh connection is safe.
            exchange.retried = True
            self._pool.connect_and_send(exchange)
            return
        exchange.finish(_RESET)


def _reason(exc: Exception) -> str:
    context = exc.__context__
    return str(context if isinstance(context, HttpError) else exc)


class UpstreamPool:
    """Persistent connections to one upstream; ``forward`` answers through a callback."""

    def __init__(self, target: UpstreamTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def forward(self, body: bytes, callback: Callback) -> None:
        """Send ``body`` as a JSON POST; ``callback`` gets the outcome exactly once."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        exchange = _Exchange(self.target.request_prefix + b"%d\r\n\r\n" % len(body) + body, callback)
        exchange.timer = loop.call_later(self.timeout, self._expire, exchange)
        idle = self._idle
        while idle:
            connection = idle.pop()  # LIFO: the warmest connection, and idle ones age out
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                connection.send(exchange)
                return
        self.connect_and_send(exchange)

    def _expire(self, exchange: _Exchange) -> None:
        for connection in self._all:
            if connection.exchange is exchange:
                # A late answer must not arrive on a connection we hand to the next update.
                connection.exchange = None
                connection.abort()
                break
        exchange.finish(_TIMEOUT)

    def connect_and_send(self, exchange: _Exchange) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, exchange: _Exchange) -> None:
        loop = asyncio.get_running_loop()
        connection = _Connection(self)
        try:
            if self.target.unix_socket is not None:
                await loop.create_unix_connection(lambda: connection, str(self.target.unix_socket))
            else:
                await loop.create_connection(lambda: connection, self.target.host, self.target.port)
        except OSError as exc:
            log.warning("upstream %s unavailable: %s", self.target.describe(), exc)
            exchange.finish(_UNAVAILABLE)
            return
        if exchange.finished:  # timed out while connecting
            connection.abort()
            return
        self._all.add(connection)
        connection.send(exchange)

    def release(self, connection: _Connection) -> None:
        self._idle.append(connection)

    def discard(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    async def probe(self) -> bool:
        """Does the upstream accept connections right now? (For an optional readiness check.)"""
        try:
            if self.target.unix_socket is not None:
                connect = asyncio.open_unix_connection(str(self.target.unix_socket))
            else:
                connect = asyncio.open_connection(self.target.host, self.target.port)
            _, writer = await asyncio.wait_for(connect, PROBE_TIMEOUT)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    def close(self) -> None:
        for connection in list(self._all):
            connection.abort()
        self._idle.clear()
        for task in self._tasks:
            task.cancel()
