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


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: The answer beyond --max-connections: built once, written without reading the request.
TOO_MANY_CONNECTIONS = build_response(503, b"too many connections\n", extra=b"Retry-After: 1\r\n", close=True)
REQUEST_TIMEOUT = build_response(408, b"request not received in time\n", close=True)
