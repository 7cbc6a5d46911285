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

Why one module of ~350 lines: it is one state machine. Every asyncio callback and helper
below reads and sets the same flags (``_busy``, ``_pumping``, ``_queue``, ``_refused``...);
split over modules (mixins, or a helper object per concern), each part would need the whole
state anyway, and the hot path would pay an attribute hop per call. What is not this state
machine already lives elsewhere: parsing (http1.py), deadlines (limits.py), the prebuilt
answers (responses.py) and every decision about a request (gateway.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast

from . import metrics as m
from .addresses import Address, parse_address
from .gateway import Gateway
from .http1 import HttpError, RequestHead, RequestParser
from .limits import Deadline, Limits
from .responses import CONTINUE, REQUEST_TIMEOUT, TOO_MANY_CONNECTIONS, add_close, build_response

log = logging.getLogger(__name__)

#: Stop reading from a client that sends more than this while its request is being forwarded.
MAX_PENDING = 16 * 1024
#: One read at most (the event loop's own reads take up to 256 KiB). Connections share the
#: buffer: the loop fills it and hands it over in one go (get_buffer, recv_into, buffer_updated).
READ_SIZE = 64 * 1024
_READ_BUFFER = memoryview(bytearray(READ_SIZE))
#: How long a refused client may still send (dropped) before the connection is cut.
LINGER = 2.0
#: The answers a client that does not read may leave in our buffer before reading it stops.
WRITE_HIGH_WATER = 16 * 1024

_REQUEST, _ANSWER = range(2)
#: Requests one connection gets answered per event-loop turn (pipelining must not starve others).
_BURST = 16
# What the connection waits for, which decides the deadline that applies.
_IDLE, _HEAD_PHASE, _BODY_PHASE, _BUSY = range(4)


class WebhookConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "_busy", "_closed", "_connections", "_deadline", "_eof", "_gateway", "_keep_alive", "_limits",
        "_loop", "_parser", "_pending", "_phase", "_pumping", "_queue", "_read_paused", "_refused",
        "_tls", "_write_paused", "_yielded", "peer", "peer_allowed", "peer_trusted", "transport",
    )  # fmt: skip

    def __init__(self, gateway: Gateway, connections: set[WebhookConnection], limits: Limits) -> None:
        self._gateway = gateway
        self._connections = connections
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._parser = RequestParser(
            self._on_head, self._on_request, gateway.max_body_bytes, limits.max_head_bytes
        )
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.peer_trusted = False
        self.peer_allowed = False
        self._phase = _HEAD_PHASE  # a new connection gets the head timeout from the accept
        self._deadline = Deadline(self._loop, limits.tick, self._expire)
        # Parsed requests (and refusals) not answered yet, in order: (bytes, kind, keep-alive).
        self._queue: deque[tuple[bytes, int, bool]] = deque()
        # _yielded: busy only until the next loop turn (see _BURST); _refused: an answer that
        # closes the connection is due, nothing more is read.
        self._busy = self._yielded = self._pumping = self._closed = self._refused = False
        self._eof = self._tls = self._read_paused = self._write_paused = False
        self._keep_alive = True
        self._pending = bytearray()

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._tls = transport.get_extra_info("sslcontext") is not None
        if len(self._connections) >= self._limits.max_connections:
            # Refuse before reading anything: a constant answer, no parsing, no timer.
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
        self._deadline.set(self._limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._connections.discard(self)
        self._deadline.cancel()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        # No copy: llhttp reads the shared buffer in place; what is kept (body, headers, the
        # unparsed rest) is copied out of it by the parser or into _pending.
        self.data_received(_READ_BUFFER[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._closed or self._refused:
            return
        if self._busy or self._write_paused or self._pumping or self._queue:
            self._pending += data
            self._update_reading()
            return
        self._pump(data)

    def eof_received(self) -> bool:
        """The client finished sending: answer what it sent, then close."""
        if self._closed:
            return False  # after a lingering close: now it may close
        self._eof = True
        if not (self._busy or self._write_paused or self._pumping):
            self._pump()
        # Keep the transport open for the answers; _pump closes it after them. asyncio's TLS
        # transport closes after EOF whatever we say (and warns when asked to stay open).
        return not self._tls

    def pause_writing(self) -> None:
        # The client does not read our answers: stop reading its requests until it does.
        self._write_paused = True
        self._deadline.set(self._limits.send_timeout)
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()
        if self._busy:
            self._deadline.clear()
        else:
            self._phase = -1  # whatever it waits for now, its deadline starts again
            self._pump()

    # -- deadlines ---------------------------------------------------------------------------

    def _expire(self) -> None:
        transport = self.transport
        if self._closed or transport is None:
            return
        if self._write_paused:
            self._closed = True
            transport.abort()  # close() would wait to flush to a client that does not read
            return
        if self._phase != _IDLE and self._parser.mid_request:
            self._gateway.metrics.requests[m.REJECT_TIMEOUT] += 1
            transport.write(REQUEST_TIMEOUT)
        # else: keep-alive timeout, or a connection that never sent a byte: close quietly
        self._shut()

    def _await_bytes(self) -> None:
        """Nothing to answer: the deadline is that of what the client is sending (or of nothing)."""
        parser = self._parser
        limits = self._limits
        if not parser.mid_request:
            phase, timeout = _IDLE, limits.idle_timeout
        elif parser.head_done:
            phase, timeout = _BODY_PHASE, limits.body_timeout
        else:
            phase, timeout = _HEAD_PHASE, limits.head_timeout
        if phase != self._phase:
            self._phase = phase
            self._deadline.set(timeout)

    def _update_reading(self) -> None:
        paused = self._write_paused or self._yielded or len(self._pending) > MAX_PENDING
        if paused != self._read_paused and not self._closed and self.transport is not None:
            self._read_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # -- requests ----------------------------------------------------------------------------

    def _pump(self, data: bytes | memoryview | None = None) -> None:
        """Parse and dispatch until blocked: on bytes, on the upstream, or on a client that does not read."""
        self._pumping = True
        burst = _BURST
        try:
            while not self._closed and not self._busy and not self._write_paused:
                if self._queue:
                    if not burst:
                        # A pipelining client gets a turn, not the loop: the rest waits for the
                        # next iteration, after every other connection's callbacks.
                        self._loop.call_soon(self._next_turn)
                        self._yielded = self._busy = True
                        self._update_reading()
                        break
                    burst -= 1
                    self._dispatch(*self._queue.popleft())
                    continue
                if data is None:
                    if not self._pending or self._refused:
                        break
                    data = bytes(self._pending)
                    self._pending.clear()
                    self._update_reading()
                self._parse(data)
                data = None
        finally:
            self._pumping = False
        if self._closed or self._busy or self._write_paused:
            return
        if self._eof:
            if self._parser.mid_request and not self._refused:
                self.respond(self._refusal(HttpError(400, "request incomplete")), close=True)
            else:
                self.close()
            return
        self._await_bytes()

    def _next_turn(self) -> None:
        self._yielded = self._busy = False
        self._update_reading()
        if not self._closed:
            self._pump()

    def _parse(self, data: bytes | memoryview) -> None:
        step = self._limits.max_head_bytes
        try:
            if len(data) <= step:  # the usual case: a whole request, or a good part of one
                self._parser.feed(data)
                return
            # Slice by slice, and no further once requests are complete: what waits for an
            # answer (a pipelining client that does not read them) stays within one slice.
            view = memoryview(data)
            for start in range(0, len(data), step):
                if self._refused:
                    return  # the rest of a refused connection is never read
                if self._queue:
                    self._pending[:0] = view[start:]
                    self._update_reading()
                    return
                self._parser.feed(view[start : start + step])
        except HttpError as exc:
            self._queue.append((self._refusal(exc), _ANSWER, False))

    def _on_head(self, head: RequestHead) -> bool:
        """A complete head: checks 1-5 before its body is kept; False stops reading."""
        rejection = self._gateway.check_head(self, head)
        if rejection is not None:
            # Unread body bytes follow; closing is simpler and safer than skipping them.
            self._refused = True
            self._queue.append((rejection, _ANSWER, False))
            return False
        if head.expect_continue and not self._busy and not self._queue and self.transport is not None:
            self.transport.write(CONTINUE)  # not while an earlier answer is due: answers go in order
        return True

    def _on_request(self, body: bytes, keep_alive: bool) -> None:
        self._queue.append((body, _REQUEST, keep_alive))

    def _dispatch(self, data: bytes, kind: int, keep_alive: bool) -> None:
        if kind == _ANSWER:
            self.respond(data, close=True)
            return
        self._keep_alive = keep_alive
        self._busy = True
        self._phase = _BUSY
        self._deadline.clear()  # the upstream's timeout bounds a forward
        self._gateway.handle(self, data)

    def _refusal(self, exc: HttpError) -> bytes:
        self._refused = True
        requests = self._gateway.metrics.requests
        requests[m.REJECT_TOO_LARGE if exc.status == 413 else m.REJECT_MALFORMED] += 1
        log.debug("malformed request: %s", exc)
        return build_response(exc.status, str(exc).encode() + b"\n", close=True)

    # -- answering ---------------------------------------------------------------------------

    def respond(self, payload: bytes, close: bool = False) -> None:
        """Send a complete response; then go on with the next request or close."""
        transport = self.transport
        if self._closed or transport is None:
            return  # the client left; the forward still counted and was deduplicated
        self._busy = False
        if (
            close
            or not self._keep_alive
            or self._gateway.draining
            or (self._eof and not self._queue and not self._pending)
        ):
            transport.write(add_close(payload))
            self._shut()
            return
        transport.write(payload)  # may call pause_writing, which sets the send deadline
        if self._pumping or self._write_paused:
            return  # the pump goes on by itself (or when the client reads again)
        if self._queue or self._pending or self._eof:
            self._pump()
        else:
            self._await_bytes()  # the usual case: wait for the next request

    def _shut(self) -> None:
        """Close after flushing - but not longer than the send timeout for a client that does not read."""
        self._closed = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if (self._refused or self._parser.mid_request) and not self._eof and transport.can_write_eof():
            # Lingering close: the client may still be sending. Closing with its bytes unread
            # makes the kernel reset the connection, which can destroy our answer before the
            # client reads it. So: FIN after the answer, drop what still arrives, close soon.
            transport.write_eof()
            if self._read_paused:
                self._read_paused = False
                transport.resume_reading()
            self._loop.call_later(LINGER, _cut, transport)
            return
        transport.close()
        if transport.get_write_buffer_size():
            self._loop.call_later(self._limits.send_timeout, _cut, transport)

    @property
    def busy(self) -> bool:
        """A request of this connection is being handled (forwarded or waiting)."""
        return self._busy and not self._yielded

    @property
    def idle(self) -> bool:
        """Between requests, with nothing half-read: safe to close while draining."""
        return not self._busy and not self._queue and not self._pending and not self._parser.mid_request

    def close(self) -> None:
        if not self._closed:
            self._shut()


def _cut(transport: asyncio.Transport) -> None:
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()
