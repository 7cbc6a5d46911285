"""Forwarding to the dispatcher: a pool of persistent HTTP/1.1 connections.

Each forward is one ``transport.write`` of precomputed header bytes plus the body, and the
answer is parsed by a small :class:`asyncio.Protocol` - no task, stream reader or client
session per update. The pool grows on demand (the sidecar's in-flight limit bounds it) and
forgets connections the dispatcher closes, e.g. when it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, cast
from urllib.parse import urlsplit

from .http1 import MAX_HEAD_BYTES, ChunkedDecoder, HttpError, ResponseHead, parse_response_head

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


class UpstreamTarget(NamedTuple):
    host: str
    port: int
    unix_socket: Path | None
    request_prefix: bytes  # request line and fixed headers, up to "Content-Length: "

    @classmethod
    def from_url(cls, url: str, unix_socket: Path | None = None) -> UpstreamTarget:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_header = parts.netloc.rsplit("@", 1)[-1]
        prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode("latin-1")
        return cls(parts.hostname, parts.port or 80, unix_socket, prefix)

    def describe(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"


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
    __slots__ = (
        "_body", "_buffer", "_decoder", "_head", "_need", "_pool", "exchange", "got_bytes", "reused",
        "transport",
    )  # fmt: skip

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.got_bytes = False
        self._buffer = b""
        self._head: ResponseHead | None = None
        self._decoder: ChunkedDecoder | None = None
        self._need: int | None = None
        self._body = bytearray()

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
        exchange = self.exchange
        if exchange is None:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.abort()
            return
        self.got_bytes = True
        try:
            self._parse(data)
        except HttpError as exc:
            log.warning("malformed answer from the upstream: %s", exc)
            self.abort()
            self._end(_RESET, reusable=False)

    def _parse(self, data: bytes) -> None:
        while self._head is None:
            buffer = self._buffer + data if self._buffer else data
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise HttpError(502, "response head too large")
                self._buffer = buffer
                return
            head = parse_response_head(buffer[:end])
            data = buffer[end + 4 :]
            self._buffer = b""
            if 100 <= head.status < 200:
                continue  # interim response (100 Continue); the real one follows
            self._head = head
            if head.status in (204, 304):
                self._complete(b"", reusable=head.keep_alive and not data)
                return
            if head.chunked:
                self._decoder = ChunkedDecoder(MAX_RESPONSE_BYTES)
            elif head.content_length is not None:
                if head.content_length > MAX_RESPONSE_BYTES:
                    raise HttpError(502, "response too large")
                self._need = head.content_length
        head = self._head
        if self._decoder is not None:
            rest = self._decoder.feed(data)
            if rest is not None:
                self._complete(bytes(self._decoder.body), reusable=head.keep_alive and not rest)
            return
        need = self._need
        if need is None:  # no length: the body ends when the upstream closes
            self._body += data
            if len(self._body) > MAX_RESPONSE_BYTES:
                raise HttpError(502, "response too large")
            return
        if not self._body and len(data) >= need:  # the usual case: it all came in one read
            self._complete(data[:need], reusable=head.keep_alive and len(data) == need)
            return
        self._body += data
        if len(self._body) >= need:
            reusable = head.keep_alive and len(self._body) == need
            self._complete(bytes(self._body[:need]), reusable=reusable)

    def _complete(self, body: bytes, reusable: bool) -> None:
        head = self._head
        assert head is not None
        self._end(UpstreamResult(OK, head.status, head.content_type, body), reusable)

    def _end(self, result: UpstreamResult, reusable: bool) -> None:
        exchange = self.exchange
        self.exchange = None
        self._reset()
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
        head = self._head
        if head is not None and self._decoder is None and self._need is None:
            self._complete(bytes(self._body), reusable=False)  # read-until-close body is complete
            return
        self.exchange = None
        if self.reused and not self.got_bytes and not exchange.retried:
            # A kept-alive connection the dispatcher closed just as we wrote: it never read the
            # request (it said nothing at all), so one retry on a fresh connection is safe.
            exchange.retried = True
            self._pool.connect_and_send(exchange)
            return
        exchange.finish(_RESET)


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
