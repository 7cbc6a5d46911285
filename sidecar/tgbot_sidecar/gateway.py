"""The sidecar's policy: which request gets which answer, and forwarding the valid ones.

Check order (each check runs only when the previous ones passed; none of the rejected
requests reaches the dispatcher):

1. path           -> 404 (cheapest, and tells a misrouted request apart from an attack)
2. method         -> 405 with ``Allow: POST``
3. address        -> 403 (peer, or X-Forwarded-For when the peer is a trusted proxy)
4. secret token   -> 401 (constant time, current and previous token)
5. size           -> 413 (Content-Length up front, counted while reading a chunked body)
6. shape          -> 400 (a JSON object with an integer ``update_id``)

Steps 1-5 run on the request head, before the body is read, so an unauthenticated client
cannot make the sidecar buffer a body. Only step 6 needs the body.

Then: a recent duplicate is answered 200 with an empty body; a duplicate of an update in
flight waits for the first one's outcome; beyond ``max_in_flight`` -> 503; otherwise the body
is forwarded unchanged. The dispatcher's 2xx becomes our 200 with its body and Content-Type
(the webhook reply). Everything else makes Telegram retry: any non-2xx status -> 502 (a 4xx
too: it means the dispatcher refused the update - most likely a misconfiguration such as a
secret_token set on aiogram's handler - and dropping the update silently would hide that),
cannot connect -> 503 with Retry-After, no answer in time -> 504, connection lost -> 502.
An update that keeps failing is given up after ``--max-delivery-attempts`` (see poison.py):
answered 200 once its dead letter is written, so its chat moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import orjson

from . import metrics as m
from .addresses import Address, NetworkSet, client_address
from .deadletter import DeadLetterSink, dead_letter_line
from .dedup import Deduplicator
from .http1 import RequestHead
from .metrics import SidecarMetrics
from .pathcheck import PathCheck
from .poison import DeliveryAttempts
from .responses import (
    BAD_GATEWAY,
    BAD_UPDATE,
    DUPLICATE,
    FORBIDDEN,
    GATEWAY_TIMEOUT,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    OVERLOADED,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE_ANSWER,
    webhook_reply,
)
from .tokens import TokenStore
from .upstream import OK, RESET, TIMEOUT, UNAVAILABLE, UpstreamPool, UpstreamResult

log = logging.getLogger(__name__)

_BY_STATUS = {
    0: DUPLICATE,
    502: BAD_GATEWAY,
    503: UNAVAILABLE_ANSWER,
    504: GATEWAY_TIMEOUT,
}


class Connection(Protocol):
    """What the gateway needs from a client connection."""

    peer: Address | None
    peer_trusted: bool
    peer_allowed: bool

    def respond(self, payload: bytes, close: bool = False) -> None: ...


class Gateway:
    """Checks requests and forwards updates; knows nothing about sockets."""

    def __init__(
        self,
        *,
        path: str,
        allow: NetworkSet,
        trusted: NetworkSet,
        tokens: TokenStore,
        max_body_bytes: int,
        max_in_flight: int,
        dedup: Deduplicator,
        upstream: UpstreamPool,
        metrics: SidecarMetrics,
        attempts: DeliveryAttempts | None = None,
        dead_letters: DeadLetterSink | None = None,
        path_check: PathCheck | None = None,
    ) -> None:
        self.path = path.encode()
        self.allow = allow
        self.trusted = trusted
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.dedup = dedup
        self.upstream = upstream
        self.metrics = metrics
        # `is None`, not `or`: an empty DeliveryAttempts is falsy (it has a __len__).
        self.attempts = DeliveryAttempts(0) if attempts is None else attempts
        self.dead_letters = DeadLetterSink(None) if dead_letters is None else dead_letters
        self.path_check = PathCheck(upstream.target.describe(), "/") if path_check is None else path_check
        self.draining = False
        self.drained = asyncio.Event()
        self._forwarded_cache: dict[tuple[str, ...], bool] = {}

    def start_draining(self) -> None:
        """From now on close connections after answering; ``drained`` fires at zero in flight."""
        self.draining = True
        if self.metrics.in_flight == 0:
            self.drained.set()

    def release(self) -> None:
        """A forward ended (and its dead letter, if any, was written)."""
        metrics = self.metrics
        metrics.in_flight -= 1
        if self.draining and metrics.in_flight == 0:
            self.drained.set()

    def classify_peer(self, peer: Address | None) -> tuple[bool, bool]:
        """(is a trusted proxy, may deliver itself) - computed once per connection."""
        return peer is not None and peer in self.trusted, peer is not None and peer in self.allow

    def _address_allowed(self, connection: Connection, head: RequestHead) -> bool:
        if not connection.peer_trusted or not head.forwarded_for:
            return connection.peer_allowed
        # A proxy's keep-alive connection carries many updates with few distinct chains.
        cache = self._forwarded_cache
        allowed = cache.get(head.forwarded_for)
        if allowed is None:
            client = client_address(connection.peer, head.forwarded_for, self.trusted)
            allowed = client is not None and client in self.allow
            if len(cache) >= 1024:
                cache.clear()
            cache[head.forwarded_for] = allowed
        return allowed

    def check_head(self, connection: Connection, head: RequestHead) -> bytes | None:
        """Checks 1-5; the rejection to send, or None to go on and read the body."""
        requests = self.metrics.requests
        target = head.target
        if target != self.path and target.split(b"?", 1)[0] != self.path:
            requests[m.REJECT_NOT_FOUND] += 1
            return NOT_FOUND
        if head.method != b"POST":
            requests[m.REJECT_METHOD] += 1
            return METHOD_NOT_ALLOWED
        if not self._address_allowed(connection, head):
            requests[m.REJECT_ADDRESS] += 1
            log.debug("rejected address", extra={"peer": str(connection.peer)})
            return FORBIDDEN
        if not self.tokens.verify(head.secret_token):
            requests[m.REJECT_TOKEN] += 1
            return UNAUTHORIZED
        if head.content_length is not None and head.content_length > self.max_body_bytes:
            requests[m.REJECT_TOO_LARGE] += 1
            return TOO_LARGE
        return None

    def handle(self, connection: Connection, body: bytes) -> None:
        """Check 6, deduplication and the forward; answers through ``connection.respond``."""
        metrics = self.metrics
        try:
            # Strict RFC 8259 JSON in UTF-8 (no NaN/Infinity, no lone surrogates, integers within
            # 64 bits, nesting under 1024 levels) - what the Bot API sends - at a third of the
            # cost of json.loads.
            update = orjson.loads(body)
        except orjson.JSONDecodeError:
            update = None
        update_id = update.get("update_id") if type(update) is dict else None
        if type(update_id) is not int:  # type() is deliberate: bool is an int subclass
            metrics.requests[m.REJECT_SHAPE] += 1
            connection.respond(BAD_UPDATE)
            return
        now = time.monotonic()
        dedup = self.dedup
        if dedup.is_done(update_id, now):
            metrics.requests[m.DUPLICATE] += 1
            connection.respond(DUPLICATE)
            return
        if not dedup.begin(update_id):
            dedup.wait(update_id, _Waiter(metrics, connection).wake)
            return
        if metrics.in_flight >= self.max_in_flight:
            dedup.finish(update_id, 503, now)
            metrics.requests[m.OVERLOADED] += 1
            connection.respond(OVERLOADED)
            return
        metrics.in_flight += 1
        self.upstream.forward(body, _Forward(self, connection, update_id, now, body).done)


class _Waiter:
    """A duplicate parked behind the delivery in flight."""

    __slots__ = ("connection", "metrics")

    def __init__(self, metrics: SidecarMetrics, connection: Connection) -> None:
        self.metrics = metrics
        self.connection = connection

    def wake(self, status: int) -> None:
        self.metrics.requests[m.DUPLICATE] += 1
        # Success: empty 200, never the reply again (Telegram would execute it twice).
        self.connection.respond(_BY_STATUS.get(status, BAD_GATEWAY))


class _Forward:
    __slots__ = ("attempts", "body", "connection", "gateway", "reason", "started", "update_id")

    def __init__(
        self, gateway: Gateway, connection: Connection, update_id: int, started: float, body: bytes
    ) -> None:
        self.gateway = gateway
        self.connection = connection
        self.update_id = update_id
        self.started = started
        self.body = body  # attempts and reason are set only when giving up

    def done(self, result: UpstreamResult) -> None:
        gateway = self.gateway
        metrics = gateway.metrics
        now = time.monotonic()
        metrics.observe_forward(now - self.started)
        status = result.status
        if result.error == OK and 200 <= status < 300:
            metrics.in_flight -= 1  # release(), inlined on the path every update takes
            if gateway.draining and metrics.in_flight == 0:
                gateway.drained.set()
            metrics.requests[m.FORWARDED] += 1
            gateway.dedup.finish(self.update_id, 0, now)
            if gateway.attempts.failing:  # plain attribute checks: usually nothing is failing
                gateway.attempts.succeeded(self.update_id)
            if gateway.path_check.status:
                gateway.path_check.succeeded()
            self.connection.respond(webhook_reply(result.content_type, result.body))
            return
        outcome, answer, code = _failure(result)
        metrics.requests[outcome] += 1
        log.warning(
            "update not delivered to the bot",
            extra={"update_id": self.update_id, "reason": outcome[1], "upstream_status": status},
        )
        if result.error == OK:
            gateway.path_check.answered(status, now)
        attempts = gateway.attempts.failed(self.update_id, outcome, now)
        if attempts:
            self.attempts, self.reason = attempts, outcome[1]
            line = dead_letter_line(self.update_id, self.body, attempts, self.reason)
            gateway.dead_letters.write(line, self.given_up)
            return
        gateway.release()
        gateway.dedup.finish(self.update_id, code, now)
        self.connection.respond(answer)

    def given_up(self, written: bool) -> None:
        """The dead letter is on disk (or there is no file): answer 200 so the chat moves on."""
        gateway = self.gateway
        gateway.release()
        now = time.monotonic()
        if not written:  # nothing may be lost silently: let Telegram retry
            gateway.dedup.finish(self.update_id, 502, now)
            self.connection.respond(BAD_GATEWAY)
            return
        gateway.metrics.dead_letters += 1
        log.error(
            "giving up on an update the bot keeps failing",
            extra={"update_id": self.update_id, "reason": self.reason, "attempts": self.attempts},
        )
        gateway.dedup.finish(self.update_id, 0, now)
        self.connection.respond(DUPLICATE)


def _failure(result: UpstreamResult) -> tuple[tuple[str, str], bytes, int]:
    if result.error == UNAVAILABLE:
        return m.UPSTREAM_UNAVAILABLE, UNAVAILABLE_ANSWER, 503
    if result.error == TIMEOUT:
        return m.UPSTREAM_TIMEOUT, GATEWAY_TIMEOUT, 504
    if result.error == RESET:
        return m.UPSTREAM_RESET, BAD_GATEWAY, 502
    if 400 <= result.status < 500:
        return m.UPSTREAM_4XX, BAD_GATEWAY, 502
    if 500 <= result.status < 600:
        return m.UPSTREAM_5XX, BAD_GATEWAY, 502
    return m.UPSTREAM_OTHER, BAD_GATEWAY, 502
