"""A minimal HTTP/1.1 server on a Unix socket, for one peer: the tgbot-sidecar.

PTB has no server of its own besides tornado (an extra), so this is plain asyncio. The
sidecar always sends ``POST <path>`` with ``Content-Length`` and keeps connections alive;
that is all this accepts (anything else gets a clear 4xx/5xx and the connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("tgbot_ptb")

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024  # the sidecar's own limit is 1 MiB by default

Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class _Request:
    method: str
    path: str
    keep_alive: bool
    length: int


def _parse_head(head: bytes) -> _Request:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400) from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or name != name.strip():
            raise _BadRequest(400)
        key = name.lower()
        if key in headers:
            raise _BadRequest(400)  # a repeated framing or connection header is ambiguous
        headers[key] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(501)
    if "content-length" not in headers:
        raise _BadRequest(411)
    text = headers["content-length"]
    if not text.isdigit():
        raise _BadRequest(400)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return _Request(method, target.split("?", 1)[0], keep_alive, int(text))


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    busy: bool = False


@dataclass
class UnixHttpServer:
    """Calls ``handler(body)`` for each ``POST path``; the answer goes out after it returns."""

    path: str
    handler: Handler
    _server: asyncio.Server | None = None
    _connections: dict[asyncio.Task[None], _Connection] = field(default_factory=dict)
    _closing: bool = False

    async def start(self, socket_path: str) -> None:
        self._server = await asyncio.start_unix_server(self._accept, socket_path, limit=MAX_HEAD_BYTES)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(writer)
        self._connections[task] = connection
        try:
            await self._serve(reader, connection)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the peer went away or sent something we cannot frame: just close
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        writer = connection.writer
        while not self._closing:
            head = await reader.readuntil(b"\r\n\r\n")
            connection.busy = True
            try:
                request = _parse_head(head[:-4])
            except _BadRequest as exc:
                writer.write(_response(exc.status, b"", keep_alive=False))
                await writer.drain()
                return
            if request.length > MAX_BODY_BYTES:
                writer.write(_response(413, b"", keep_alive=False))
                await writer.drain()
                return
            body = await reader.readexactly(request.length)
            if request.path != self.path:
                status, answer = 404, b""
            elif request.method != "POST":
                status, answer = 405, b""
            else:
                status, answer = await self.handler(body)
            keep_alive = request.keep_alive and not self._closing
            writer.write(_response(status, answer, keep_alive))
            await writer.drain()
            connection.busy = False
            if not keep_alive:
                return

    async def drain(self, timeout: float) -> None:
        """Stop accepting, close idle connections, let requests in progress finish."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in self._connections.values():
            if not connection.busy:
                connection.writer.close()  # wakes its readuntil with an error: it ends
        tasks = list(self._connections)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d update(s) still in progress after %.0f s: cancelled", len(pending), timeout)
            await asyncio.wait(pending)
