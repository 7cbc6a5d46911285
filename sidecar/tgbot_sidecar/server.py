"""The webhook port: an :class:`asyncio.Protocol` per client connection.

A protocol instead of aiohttp's server because this is the per-update hot path: reading a
request is one ``data_received`` callback that finds the blank line, parses a few headers and
hands the body to the :class:`~tgbot_sidecar.gateway.Gateway` - no task, no request object.
Requests on one connection are answered in order, one at a time (bytes that arrive while a
request is being forwarded wait in a buffer; reading pauses if it grows).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from . import metrics as m
from .addresses import Address, parse_address
from .gateway import Gateway
from .http1 import MAX_HEAD_BYTES, ChunkedDecoder, HttpError, build_response, parse_request_head

log = logging.getLogger(__name__)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Stop reading from a client that sends more than this while its request is being forwarded.
MAX_PENDING = 256 * 1024

_HEAD, _BODY, _CHUNKED = range(3)


class WebhookConnection(asyncio.Protocol):
    __slots__ = (
        "_body", "_buffer", "_busy", "_closed", "_connections", "_decoder", "_gateway", "_keep_alive",
        "_need", "_paused", "_pending", "_state", "last_activity", "peer", "peer_allowed", "peer_trusted",
        "transport",
    )  # fmt: skip

    def __init__(self, gateway: Gateway, connections: set[WebhookConnection]) -> None:
        self._gateway = gateway
        self._connections = connections
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.peer_trusted = False
        self.peer_allowed = False
        self.last_activity = time.monotonic()
        self._state = _HEAD
        self._buffer = b""
        self._body = bytearray()
        self._need = 0
        self._decoder: ChunkedDecoder | None = None
        self._busy = False
        self._closed = False
        self._keep_alive = True
        self._paused = False
        self._pending = bytearray()

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        peername = self.transport.get_extra_info("peername")
        if isinstance(peername, tuple) and peername and isinstance(peername[0], str):
            self.peer = parse_address(peername[0])
        # The peer cannot change for the life of the connection: decide about it once.
        self.peer_trusted, self.peer_allowed = self._gateway.classify_peer(self.peer)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self._busy:
            self._pending += data
            if len(self._pending) > MAX_PENDING and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            return
        self._feed(data)

    # -- request parsing ---------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        gateway = self._gateway
        while not self._closed:
            if self._busy:
                if data:
                    self._pending += data
                return
            if self._state == _HEAD:
                buffer = self._buffer + data if self._buffer else data
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        self._reject(HttpError(431, "request head too large"))
                    else:
                        self._buffer = buffer
                    return
                self._buffer = b""
                data = buffer[end + 4 :]
                try:
                    head = parse_request_head(buffer[:end])
                except HttpError as exc:
                    self._reject(exc)
                    return
                rejection = gateway.check_head(self, head)
                if rejection is not None:
                    # Unread body bytes follow; closing is simpler and safer than skipping them.
                    self.respond(rejection, close=True)
                    return
                self._keep_alive = head.keep_alive
                if head.expect_continue and self.transport is not None:
                    self.transport.write(CONTINUE)
                if head.chunked:
                    self._decoder = ChunkedDecoder(gateway.max_body_bytes)
                    self._state = _CHUNKED
                else:
                    self._need = head.content_length or 0
                    self._state = _BODY
            if self._state == _BODY:
                need = self._need
                if not self._body and len(data) >= need:  # the usual case: one read has it all
                    body, data = data[:need], data[need:]
                else:
                    self._body += data
                    if len(self._body) < need:
                        return
                    body, data = bytes(self._body[:need]), bytes(self._body[need:])
                    self._body = bytearray()
            else:
                decoder = self._decoder
                assert decoder is not None
                try:
                    rest = decoder.feed(data)
                except HttpError as exc:
                    self._reject(exc)
                    return
                if rest is None:
                    return
                body, data = bytes(decoder.body), rest
                self._decoder = None
            self._state = _HEAD
            self._busy = True
            gateway.handle(self, body)

    def _reject(self, exc: HttpError) -> None:
        requests = self._gateway.metrics.requests
        requests[m.REJECT_TOO_LARGE if exc.status == 413 else m.REJECT_MALFORMED] += 1
        log.debug("malformed request: %s", exc)
        self.respond(build_response(exc.status, str(exc).encode() + b"\n", close=True), close=True)

    # -- answering ---------------------------------------------------------------------------

    def respond(self, payload: bytes, close: bool = False) -> None:
        """Send a complete response; then read the next request or close."""
        transport = self.transport
        if self._closed or transport is None:
            return  # the client left; the forward still counted and was deduplicated
        self._busy = False
        if close or not self._keep_alive or self._gateway.draining:
            payload = _add_close(payload)
            transport.write(payload)
            self._closed = True
            transport.close()
            return
        transport.write(payload)
        if self._pending:
            pending = bytes(self._pending)
            self._pending.clear()
            if self._paused:
                self._paused = False
                transport.resume_reading()
            self._feed(pending)

    @property
    def busy(self) -> bool:
        """A request of this connection is being handled (forwarded or waiting)."""
        return self._busy

    @property
    def idle(self) -> bool:
        """Between requests, with nothing half-read: safe to close while draining."""
        return not self._busy and self._state == _HEAD and not self._buffer

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()


def _add_close(payload: bytes) -> bytes:
    # Tell the client before it reuses the connection (keep-alive off, or the server drains).
    head_end = payload.find(b"\r\n\r\n")
    if b"\r\nConnection: close\r\n" in payload[: head_end + 2]:
        return payload
    status_line, sep, rest = payload.partition(b"\r\n")
    return status_line + sep + b"Connection: close\r\n" + rest
