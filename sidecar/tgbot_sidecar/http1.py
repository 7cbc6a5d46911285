"""A deliberately small HTTP/1.1 codec for the sidecar's two hops.

The sidecar speaks to exactly two kinds of peers - Telegram (or the proxy in front of it) and
the dispatcher in the same pod - and per update it needs a handful of headers. A general
parser builds objects (multidicts, URLs, stream readers) the sidecar never looks at, and that
is where most of a naive forwarder's CPU goes. This module parses just enough, strictly: the
classic request-smuggling ambiguities (Content-Length together with Transfer-Encoding,
conflicting lengths, obs-fold, whitespace before the colon) are rejected, not interpreted.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import NamedTuple

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

# RFC 9110 token characters: a method or header name containing anything else is an attack or
# a bug. ``name.translate(None, _TOKEN_CHARS)`` is empty exactly when ``name`` is all token chars.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


_REQUEST_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"expect", b"x-forwarded-for",
     b"x-telegram-bot-api-secret-token"}
)  # fmt: skip
_RESPONSE_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"content-type"})


class HttpError(Exception):
    """A request the codec refuses; ``status`` is what to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class RequestHead(NamedTuple):
    method: bytes
    target: bytes
    keep_alive: bool
    content_length: int | None
    chunked: bool
    expect_continue: bool
    secret_token: bytes | None
    forwarded_for: tuple[str, ...]


class ResponseHead(NamedTuple):
    status: int
    content_type: bytes
    content_length: int | None
    chunked: bool
    keep_alive: bool


def _is_token(name: bytes) -> bool:
    return bool(name) and not name.translate(None, _TOKEN_CHARS)


def _headers(block: bytes, wanted: frozenset[bytes]) -> dict[bytes, list[bytes]]:
    """The ``wanted`` headers of the lines after the start line; everything else is only validated.

    The sidecar forwards the body under its own framing and no client header, so headers it
    does not read cannot confuse the dispatcher. Names must be tokens followed directly by ":"
    (so no "Name :" and no obs-fold line starting with whitespace); values hold no CR, LF or NUL.
    The checks are C-level bytes methods (count, membership, translate), not a regex: the
    regex engine walks the block a byte at a time and was most of the parse's cost.
    """
    lines = block.split(b"\r\n")
    if len(lines) > MAX_HEADERS:
        raise HttpError(431, "too many header fields")
    # With no bare CR or LF, every CR and LF belongs to a line break.
    breaks = len(lines) - 1
    if b"\x00" in block or block.count(b"\r") != breaks or block.count(b"\n") != breaks:
        raise HttpError(400, "malformed header line")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not (name.replace(b"-", b"").isalnum() or _is_token(name)):
            raise HttpError(400, "malformed header line")
        name = name.lower()
        if name in wanted:
            if name in headers:
                headers[name].append(value.strip(b" \t"))
            else:
                headers[name] = [value.strip(b" \t")]
    return headers


def _content_length(values: list[bytes] | None) -> int | None:
    if values is None:
        return None
    if len(values) == 1 and values[0].isdigit() and len(values[0]) <= 18:
        return int(values[0])  # the usual case
    # Several identical values (or one "5, 5") are tolerated by RFC 9110; different ones are not.
    found = {item.strip() for value in values for item in value.split(b",")}
    if len(found) != 1:
        raise HttpError(400, "conflicting Content-Length")
    (text,) = found
    if not text.isdigit() or len(text) > 18:
        raise HttpError(400, "malformed Content-Length")
    return int(text)


def _chunked(values: list[bytes] | None) -> bool:
    if values is None:
        return False
    codings = [item.strip().lower() for value in values for item in value.split(b",")]
    if codings != [b"chunked"]:
        # gzip, chunked and friends: nobody sends them to a webhook, so refuse rather than guess.
        raise HttpError(501, "unsupported Transfer-Encoding")
    return True


def _connection_tokens(values: list[bytes] | None) -> set[bytes]:
    if values is None:
        return set()
    return {item.strip().lower() for value in values for item in value.split(b",")}


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head (everything before the blank line, without it)."""
    start, crlf, block = head.partition(b"\r\n")
    parts = start.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version == b"HTTP/1.1":
        http11 = True
    elif version == b"HTTP/1.0":
        http11 = False
    else:
        raise HttpError(505, "unsupported HTTP version")
    if method.translate(None, _TOKEN_CHARS):
        raise HttpError(400, "malformed method")
    headers = _headers(block, _REQUEST_HEADERS) if crlf else {}
    chunked = _chunked(headers.get(b"transfer-encoding"))
    content_length = _content_length(headers.get(b"content-length"))
    if chunked and content_length is not None:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    connection = _connection_tokens(headers.get(b"connection"))
    keep_alive = b"close" not in connection if http11 else b"keep-alive" in connection
    tokens = headers.get(b"x-telegram-bot-api-secret-token")
    # Two token headers join into a value no token equals: ambiguity fails closed (401).
    secret = b", ".join(tokens) if tokens is not None else None
    expect = headers.get(b"expect")
    forwarded = headers.get(b"x-forwarded-for", ())
    return RequestHead(
        method=method,
        target=target,
        keep_alive=keep_alive,
        content_length=content_length,
        chunked=chunked,
        expect_continue=expect is not None and b"100-continue" in (v.lower() for v in expect),
        secret_token=secret,
        forwarded_for=tuple(v.decode("latin-1") for v in forwarded),
    )


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse the dispatcher's response head (without the blank line)."""
    start, crlf, block = head.partition(b"\r\n")
    parts = start.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError(502, "malformed status line")
    if not parts[1].isdigit() or len(parts[1]) != 3:
        raise HttpError(502, "malformed status code")
    headers = _headers(block, _RESPONSE_HEADERS) if crlf else {}
    chunked = _chunked(headers.get(b"transfer-encoding"))
    content_length = None if chunked else _content_length(headers.get(b"content-length"))
    connection = _connection_tokens(headers.get(b"connection"))
    keep_alive = b"close" not in connection if parts[0] == b"HTTP/1.1" else b"keep-alive" in connection
    content_type = headers.get(b"content-type")
    return ResponseHead(
        status=int(parts[1]),
        content_type=content_type[0] if content_type else b"",
        content_length=content_length,
        chunked=chunked,
        keep_alive=keep_alive,
    )


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` body decoder with a size cap."""

    __slots__ = ("_buffer", "_framing", "_limit", "_max_framing", "_remaining", "_state", "body")

    _SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)

    def __init__(self, limit: int, max_framing: int = MAX_HEAD_BYTES) -> None:
        self._limit = limit
        # Chunk lines (extensions included) and trailers are read, then dropped: without a bound
        # a client could send them forever without a byte of body.
        self._max_framing = max_framing
        self._framing = 0
        self._buffer = b""
        self._state = self._SIZE
        self._remaining = 0
        self.body = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        """Consume ``data``; return the bytes after the body once it is complete, else ``None``.

        Raises :class:`HttpError` (413 over the limit, 400 when malformed).
        """
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        while True:
            if self._state == self._DATA:
                take = min(self._remaining, len(buffer) - pos)
                self.body += buffer[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
                self._state = self._DATA_END
                continue
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                if self._framing + len(buffer) - pos > self._max_framing + 18:
                    raise HttpError(431, "chunk extensions or trailers too large")
                break
            line = buffer[pos:end]
            pos = end + 2
            if self._state == self._SIZE:
                # Up to 16 size digits do not count (each chunk carries body bytes, bounded by
                # the limit); extensions, padding and trailers do.
                self._framing += max(0, len(line) - 16)
                if self._framing > self._max_framing:
                    raise HttpError(431, "chunk extensions or trailers too large")
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not size_text or len(size_text) > 16 or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise HttpError(400, "malformed chunk size")
                size = int(size_text, 16)
                if len(self.body) + size > self._limit:
                    raise HttpError(413, "body too large")
                if size == 0:
                    self._state = self._TRAILER
                else:
                    self._remaining = size
                    self._state = self._DATA
            elif self._state == self._DATA_END:
                if line:
                    raise HttpError(400, "chunk not followed by CRLF")
                self._state = self._SIZE
            elif line:  # _TRAILER: trailers are read and dropped, within the bound
                self._framing += len(line) + 2
                if self._framing > self._max_framing:
                    raise HttpError(431, "chunk extensions or trailers too large")
            else:  # _TRAILER's blank line ends the message
                self._state = self._DONE
                self._buffer = b""
                return buffer[pos:]
        self._buffer = buffer[pos:]
        return None


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
