"""The webhook port: an :class:`asyncio.Protocol` per client connection.

A protocol instead of aiohttp's server because this is the per-update hot path: reading a
request is one ``data_received`` callback that parses the head, hands the body to the
:class:`~tgbot_sidecar.gateway.Gateway` - no task, no request object. Requests on one
connection are answered in order, one at a time (bytes that arrive while a request is being
forwarded wait in a buffer; reading pauses if it grows).

Every state a connection can be in is bounded (see :class:`Limits`): waiting for a request
(idle timeout), receiving a head (head timeout and size), a body (body timeout and size),
waiting for a client that does not read our answers (send timeout; reading stops meanwhile,
so such a client cannot make us buffer), and the number of connections itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple, cast

from . import metrics as m
from .addresses import Address, parse_address
from .gateway import Gateway
from .http1 import ChunkedDecoder, HttpError, build_response, parse_request_head
from .settings import Settings

log = logging.getLogger(__name__)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Stop reading from a client that sends more than this while its request is being forwarded.
MAX_PENDING = 256 * 1024
#: The answer beyond --max-connections: built once, written without reading the request.
TOO_MANY_CONNECTIONS = build_response(503, b"too many connections\n", extra=b"Retry-After: 1\r\n", close=True)
REQUEST_TIMEOUT = build_response(408, b"request not received in time\n", close=True)
_NEVER = float("inf")

_HEAD, _BODY, _CHUNKED = range(3)
# What the connection waits for, which decides the deadline that applies.
_IDLE, _HEAD_PHASE, _BODY_PHASE, _BUSY = range(4)


class Limits(NamedTuple):
    """The bounds of every connection (flags of the same names)."""

    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 120.0
    send_timeout: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(s.max_connections, s.max_head_bytes, s.head_timeout, s.body_timeout,
                   s.idle_timeout, s.send_timeout)  # fmt: skip

    @property
    def tick(self) -> float:
        # A connection's timer never sleeps longer than the shortest timeout, so a deadline set
        # later (always at least that far away) is never missed and the timer is never re-armed.
        return min(self.head_timeout, self.body_timeout, self.idle_timeout, self.send_timeout)


class WebhookConnection(asyncio.Protocol):
    __slots__ = (
        "_body", "_buffer", "_busy", "_closed", "_connections", "_deadline", "_decoder", "_eof",
        "_gateway", "_keep_alive", "_limits", "_loop", "_need", "_pending", "_phase", "_read_paused",
        "_state", "_timer", "_write_paused", "peer", "peer_allowed", "peer_trusted", "transport",
    )  # fmt: skip

    def __init__(self, gateway: Gateway, connections: set[WebhookConnection], limits: Limits) -> None:
        self._gateway = gateway
        self._connections = connections
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.peer_trusted = False
        self.peer_allowed = False
        self._state = _HEAD
        self._phase = _HEAD_PHASE  # a new connection gets the head timeout from the accept
        self._deadline = _NEVER
        self._timer: asyncio.TimerHandle | None = None
        self._buffer = b""
        self._body = bytearray()
        self._need = 0
        self._decoder: ChunkedDecoder | None = None
        self._busy = False
        self._closed = False
        self._eof = False
        self._keep_alive = True
        self._read_paused = False
        self._write_paused = False
        self._pending = bytearray()

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        if len(self._connections) >= self._limits.max_connections:
            # Refuse before reading anything: a constant answer, no parser, no timer.
            self._gateway.metrics.requests[m.OVERLOADED_CONNECTIONS] += 1
            self.transport.write(TOO_MANY_CONNECTIONS)
            self._shut()
            return
        peername = self.transport.get_extra_info("peername")
        if isinstance(peername, tuple) and peername and isinstance(peername[0], str):
            self.peer = parse_address(peername[0])
        # The peer cannot change for the life of the connection: decide about it once.
        self.peer_trusted, self.peer_allowed = self._gateway.classify_peer(self.peer)
        self._connections.add(self)
        self._set_deadline(self._limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._busy or self._write_paused:
            self._pending += data
            self._update_reading()
            return
        self._feed(data)

    def eof_received(self) -> bool:
        """The client finished sending: answer what it sent, then close."""
        self._eof = True
        if self._busy or self._pending:
            return True  # keep the transport open for the answer
        if self._state != _HEAD or self._buffer:
            self._reject(HttpError(400, "request incomplete"))
        return False  # nothing to answer: let the transport close

    def pause_writing(self) -> None:
        # The client does not read our answers: stop reading its requests until it does.
        self._write_paused = True
        self._set_deadline(self._limits.send_timeout)
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        limits = self._limits
        phase = self._phase
        if phase == _BUSY:
            self._deadline = _NEVER
        else:
            timeout = {_IDLE: limits.idle_timeout, _HEAD_PHASE: limits.head_timeout}
            self._set_deadline(timeout.get(phase, limits.body_timeout))
        self._update_reading()
        if not self._busy:
            self._continue()

    # -- deadlines ---------------------------------------------------------------------------

    def _set_deadline(self, timeout: float) -> None:
        loop = self._loop
        now = loop.time()
        self._deadline = now + timeout
        if self._timer is None and not self._closed:
            self._timer = loop.call_at(now + min(timeout, self._limits.tick), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._closed or self._deadline == _NEVER:
            return  # the next _set_deadline arms a new timer
        loop = self._loop
        if loop.time() < self._deadline:
            self._timer = loop.call_at(min(self._deadline, loop.time() + self._limits.tick), self._tick)
            return
        transport = self.transport
        assert transport is not None
        if self._write_paused:
            self._closed = True
            transport.abort()  # close() would wait to flush to a client that does not read
            return
        if self._phase != _IDLE and (self._state != _HEAD or self._buffer):
            self._gateway.metrics.requests[m.REJECT_TIMEOUT] += 1
            transport.write(REQUEST_TIMEOUT)
        # else: keep-alive timeout, or a connection that never sent a byte: close quietly
        self._shut()

    def _shut(self) -> None:
        """Close after flushing - but not longer than the send timeout for a client that does not read."""
        transport = self.transport
        if transport is None or transport.is_closing():
            self._closed = True
            return
        self._closed = True
        transport.close()
        if transport.get_write_buffer_size():
            self._loop.call_later(self._limits.send_timeout, transport.abort)

    def _update_reading(self) -> None:
        paused = self._write_paused or len(self._pending) > MAX_PENDING
        if paused != self._read_paused and not self._closed and self.transport is not None:
            self._read_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # -- request parsing ---------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        gateway = self._gateway
        while not self._closed:
            if self._busy or self._write_paused:
                if data:
                    self._pending += data
                    self._update_reading()
                return
            if self._state == _HEAD:
                buffer = self._buffer + data if self._buffer else data
                end = buffer.find(b"\r\n\r\n")
                max_head = self._limits.max_head_bytes
                if end < 0 or end > max_head:
                    if len(buffer) > max_head:
                        self._reject(HttpError(431, "request head too large"))
                        return
                    self._buffer = buffer
                    if buffer and self._phase != _HEAD_PHASE:
                        self._phase = _HEAD_PHASE
                        self._set_deadline(self._limits.head_timeout)
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
                    self._decoder = ChunkedDecoder(gateway.max_body_bytes, max_head)
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
                        self._body_wait()
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
                    self._body_wait()
                    return
                body, data = bytes(decoder.body), rest
                self._decoder = None
            self._state = _HEAD
            self._busy = True
            self._phase = _BUSY
            self._deadline = _NEVER  # the upstream's timeout bounds a forward
            gateway.handle(self, body)

    def _body_wait(self) -> None:
        if self._phase != _BODY_PHASE:
            self._phase = _BODY_PHASE
            self._set_deadline(self._limits.body_timeout)

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
        if close or not self._keep_alive or self._gateway.draining or (self._eof and not self._pending):
            transport.write(_add_close(payload))
            self._shut()
            return
        self._phase = _IDLE
        transport.write(payload)  # may call pause_writing, which sets the send deadline
        if not self._write_paused:
            self._set_deadline(self._limits.idle_timeout)
            self._continue()

    def _continue(self) -> None:
        """Parse what arrived while the previous request was handled (or the client did not read)."""
        if self._pending and not self._closed:
            pending = bytes(self._pending)
            self._pending.clear()
            self._update_reading()
            self._feed(pending)
        if self._eof and not self._busy and not self._closed:
            if self._state != _HEAD or self._buffer:
                self._reject(HttpError(400, "request incomplete"))
            else:
                self.close()

    @property
    def busy(self) -> bool:
        """A request of this connection is being handled (forwarded or waiting)."""
        return self._busy

    @property
    def idle(self) -> bool:
        """Between requests, with nothing half-read: safe to close while draining."""
        return not self._busy and self._state == _HEAD and not self._buffer

    def close(self) -> None:
        if not self._closed:
            self._shut()


def _add_close(payload: bytes) -> bytes:
    # Tell the client before it reuses the connection (keep-alive off, or the server drains).
    head_end = payload.find(b"\r\n\r\n")
    if b"\r\nConnection: close\r\n" in payload[: head_end + 2]:
        return payload
    status_line, sep, rest = payload.partition(b"\r\n")
    return status_line + sep + b"Connection: close\r\n" + rest
