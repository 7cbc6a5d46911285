"""HTTP/1.1 for the sidecar's two hops: llhttp (through ``httptools``) with a stricter policy on top.

llhttp - the parser of Node.js, also behind uvicorn - does the byte-level work in C: request
and status lines, header syntax (no whitespace before the colon, no obs-fold, no control
characters in values or the target), Content-Length digits and duplicates, CL together with
TE, chunk sizes, extensions and trailers. On top of it the sidecar refuses what it has no use
for and what could be read two ways: any Transfer-Encoding but plain ``chunked``, TE on
HTTP/1.0, versions other than 1.0/1.1, protocol upgrades, heads above the size limit (complete
or not), too many header fields, and unbounded chunk extensions or trailers. Two secret-token
headers join into a value no token equals (ambiguity fails closed). The parser only keeps the
handful of headers the sidecar reads; the rest are validated by llhttp and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import httptools

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

_WANTED = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"x-forwarded-for",
        b"x-telegram-bot-api-secret-token",
    }
)


class HttpError(Exception):
    """A message the codec refuses; ``status`` is what to answer."""

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


class _Stop(Exception):
    """Raised from a callback to end parsing (the connection closes after its answers)."""


def chunked_only(values: list[bytes] | None, status: int) -> bool:
    """True for ``Transfer-Encoding: chunked``; any other coding is refused, not interpreted."""
    if values is None:
        return False
    if values != [b"chunked"] and [v.strip().lower() for v in b",".join(values).split(b",")] != [b"chunked"]:
        raise HttpError(status, "unsupported Transfer-Encoding")
    return True


def parser_error(exc: Exception, status: int) -> HttpError:
    """Our HttpError out of whatever httptools raised (a callback's error rides on __context__)."""
    context = exc.__context__
    if isinstance(context, HttpError):
        return context
    if isinstance(exc, httptools.HttpParserCallbackError) and context is not None:
        raise context  # a bug in a callback: let it surface, not pass as a malformed request
    # llhttp's reasons are fixed strings ("Invalid header value char"): safe to answer with.
    return HttpError(status, str(exc) or "malformed message")


OnHead = Callable[[RequestHead], bool]
OnRequest = Callable[[bytes, bool], None]


class RequestParser:
    """One connection's request stream: ``feed`` bytes, get callbacks per head and per request.

    ``on_head(head)`` runs once a head is complete, before any of its body is kept; it returns
    False to stop reading this connection. ``on_request(body, keep_alive)`` runs per complete
    request, in order. ``feed`` raises :class:`HttpError` for a request to refuse.
    """

    __slots__ = (
        "_body", "_body_len", "_chunked", "_chunks", "_clean", "_count", "_headers", "_keep_alive",
        "_max_body", "_max_head", "_on_head", "_on_request", "_parser", "_stopped", "_trailers", "_url",
        "_wire", "_wire_exact",
        "head_done",  # the current request's head is complete, its body is being read
        "mid_request",  # part of a request has arrived, not all of it
    )  # fmt: skip

    def __init__(self, on_head: OnHead, on_request: OnRequest, max_body: int, max_head: int) -> None:
        self._on_head = on_head
        self._on_request = on_request
        self._max_body = max_body
        self._max_head = max_head
        self._parser = httptools.HttpRequestParser(self)
        self.mid_request = False
        self.head_done = False
        self._wire = 0
        self._wire_exact = True
        self._clean = True
        self._stopped = False
        self._begin()

    def feed(self, data: bytes | memoryview) -> None:
        if self._stopped:
            return
        step = self._max_head
        try:
            if len(data) <= step:
                self._feed(data)
                return
            # Slices of at most max_head bytes, so the byte accounting (which cannot see where in
            # a slice one request ends and the next begins) is never off by more than one slice.
            view = memoryview(data)
            for start in range(0, len(data), step):
                self._feed(view[start : start + step])
        except _Stop:
            self._stopped = True

    def _feed(self, data: bytes | memoryview) -> None:
        began_before = self.mid_request
        self._clean = not began_before
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise HttpError(400, "protocol upgrades are not supported") from None
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Stop):
                raise exc.__context__ from None
            raise parser_error(exc, 400) from None
        if not self.mid_request:
            return
        if began_before:
            self._wire += len(data)
        else:
            self._wire = len(data)  # exact when the request began this slice, else an upper bound
        if not self.head_done:
            # >=: a head not complete after max_head bytes will be longer than that. Slices are
            # max_head bytes at most, so a head longer than the limit always ends up here.
            if self._wire >= self._max_head * (1 if self._wire_exact else 2):
                raise HttpError(431, "request head too large")
        elif self._chunked:
            self._check_framing(self._wire)

    def _check_framing(self, wire: int) -> None:
        # Chunk lines beyond their size digits, extensions and trailers: what a chunked body
        # costs us to read besides the body. Up to ~20 bytes per chunk are the syntax itself;
        # the head (at most max_head) is in ``wire`` too.
        framing = wire - self._body_len - 20 * self._chunks
        if framing > self._max_head * (2 if self._wire_exact else 3):
            raise HttpError(431, "chunk extensions or trailers too large")

    def _begin(self) -> None:
        self._url = b""
        self._headers: dict[bytes, list[bytes]] = {}
        self._count = 0
        self._body: list[bytes] = []
        self._body_len = 0
        self._chunks = 0
        self._trailers = 0
        self._chunked = False
        self._keep_alive = True

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._begin()
        self.mid_request = True
        self.head_done = False
        self._wire = 0
        self._wire_exact = self._clean

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # The head's size is judged by its bytes on the wire (in _feed), the count once it is
        # complete: one addition per header here.
        self._count += 1
        if self.head_done:  # a trailer: checked by llhttp, counted here, dropped
            self._trailers += len(name) + len(value) + 4
            if self._count > 2 * MAX_HEADERS or self._trailers > self._max_head:
                raise HttpError(431, "chunk extensions or trailers too large")
            return
        name = name.lower()
        if name in _WANTED:
            value = value.rstrip(b" \t")  # llhttp drops the leading whitespace, not the trailing
            headers = self._headers
            if name in headers:
                headers[name].append(value)
            else:
                headers[name] = [value]

    def on_headers_complete(self) -> None:
        if self._count > MAX_HEADERS:
            raise HttpError(431, "too many header fields")
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise HttpError(505, "unsupported HTTP version")
        if parser.should_upgrade():
            raise HttpError(400, "protocol upgrades are not supported")
        headers = self._headers
        te = headers.get(b"transfer-encoding")
        if te is not None and version == "1.0":
            raise HttpError(400, "Transfer-Encoding on HTTP/1.0")  # RFC 9112 6.1: faulty framing
        chunked = chunked_only(te, 501)
        length = headers.get(b"content-length")  # llhttp checked: one value, digits only
        expect = headers.get(b"expect")
        tokens = headers.get(b"x-telegram-bot-api-secret-token")
        forwarded = headers.get(b"x-forwarded-for")
        self._keep_alive = parser.should_keep_alive()
        self._chunked = chunked
        self.head_done = True
        head = RequestHead(  # positional: the fields in order, as named in RequestHead
            parser.get_method(),
            self._url,
            self._keep_alive,
            int(length[0]) if length else None,
            chunked,
            # 100 Continue is HTTP/1.1; a 1.0 client would read it as the answer.
            expect is not None and version == "1.1" and any(v.lower() == b"100-continue" for v in expect),
            b", ".join(tokens) if tokens is not None else None,
            tuple(v.decode("latin-1") for v in forwarded) if forwarded else (),
        )
        if not self._on_head(head):
            raise _Stop

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self._max_body:  # Content-Length was checked up front; chunked here
            raise HttpError(413, "body too large")
        self._body.append(body)

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_message_complete(self) -> None:
        if self._chunked:
            # Judged on the slices before this one: the rest of this one may be the next request.
            self._check_framing(self._wire)
        self.mid_request = False
        self.head_done = False
        self._clean = False
        parts = self._body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._on_request(body, self._keep_alive)


def parse_request_head(head: bytes) -> RequestHead:
    """Parse one request head (without the blank line) - for tests and tools."""
    found: list[RequestHead] = []

    def keep(parsed: RequestHead) -> bool:
        found.append(parsed)
        return False

    parser = RequestParser(keep, lambda body, keep_alive: None, 1 << 20, MAX_HEAD_BYTES)
    parser.feed(head + b"\r\n\r\n")
    if not found:
        raise HttpError(400, "incomplete request head")
    return found[0]
