"""Answers of the webhook port, built as complete byte strings so each leaves in one ``write``."""

from __future__ import annotations

from http import HTTPStatus


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def build_response(
    status: int,
    body: bytes = b"",
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: bytes = b"",
    close: bool = False,
) -> bytes:
    """A complete response in one buffer, so it leaves in one ``write``.

    ``extra`` is preformatted header lines, each ending in CRLF.
    """
    head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason(status), len(body))
    if body:
        head += b"Content-Type: " + content_type + b"\r\n"
    if close:
        head += b"Connection: close\r\n"
    return head + extra + b"\r\n" + body


def add_close(payload: bytes) -> bytes:
    # Tell the client before it reuses the connection (keep-alive off, or the server drains).
    head_end = payload.find(b"\r\n\r\n")
    if b"\r\nConnection: close\r\n" in payload[: head_end + 2]:
        return payload
    status_line, sep, rest = payload.partition(b"\r\n")
    return status_line + sep + b"Connection: close\r\n" + rest


def webhook_reply(content_type: bytes, body: bytes) -> bytes:
    """Our 200 carrying the dispatcher's answer (the webhook reply) with its Content-Type."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    if content_type:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + b"\r\n" + body


RETRY_AFTER = b"Retry-After: 1\r\n"

# Answers that do not depend on the request, built once.
# The connection's own (server.py):
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: The answer beyond --max-connections: built once, written without reading the request.
TOO_MANY_CONNECTIONS = build_response(503, b"too many connections\n", extra=RETRY_AFTER, close=True)
REQUEST_TIMEOUT = build_response(408, b"request not received in time\n", close=True)
# The gateway's checks (gateway.py):
NOT_FOUND = build_response(404, b"not found\n", close=True)
METHOD_NOT_ALLOWED = build_response(405, b"method not allowed\n", extra=b"Allow: POST\r\n", close=True)
FORBIDDEN = build_response(403, b"forbidden\n", close=True)
UNAUTHORIZED = build_response(401, b"unauthorized\n", close=True)
TOO_LARGE = build_response(413, b"body too large\n", close=True)
BAD_UPDATE = build_response(400, b"not a Telegram update\n")
# Deliveries' outcomes (gateway.py; app.py answers UNAVAILABLE_ANSWER to what a drain cuts off):
DUPLICATE = build_response(200)
OVERLOADED = build_response(503, b"too many updates in flight\n", extra=RETRY_AFTER)
BAD_GATEWAY = build_response(502, b"the bot did not accept the update\n")
UNAVAILABLE_ANSWER = build_response(503, b"the bot is not reachable\n", extra=RETRY_AFTER)
GATEWAY_TIMEOUT = build_response(504, b"the bot did not answer in time\n")
