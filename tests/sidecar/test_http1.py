"""The minimal HTTP/1.1 codec: strictness examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgbot_sidecar import ChunkedDecoder, HttpError, parse_request_head, parse_response_head

header_names = st.sampled_from(
    [b"Host", b"Content-Length", b"Transfer-Encoding", b"X-Forwarded-For", b"Connection",
     b"X-Telegram-Bot-Api-Secret-Token", b"Expect", b"X-Other", b"Bad Name", b"", b" Host"]
)  # fmt: skip
header_values = st.binary(max_size=30)


@given(st.lists(st.tuples(header_names, header_values), max_size=8), st.binary(max_size=40))
def test_request_head_never_raises_anything_but_http_error(headers: list[tuple[bytes, bytes]], line: bytes):
    for request_line in (b"POST /webhook HTTP/1.1", line):
        head = b"\r\n".join([request_line, *(name + b": " + value for name, value in headers)])
        try:
            parsed = parse_request_head(head)
        except HttpError as exc:
            status = exc.status
            assert 400 <= status < 600
        else:
            assert parsed.content_length is None or parsed.content_length >= 0
            assert not (parsed.chunked and parsed.content_length is not None)


def test_request_head_fields():
    head = parse_request_head(
        b"POST /webhook?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
        b"X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\n"
        b"X-Telegram-Bot-Api-Secret-Token:  tok \r\nExpect: 100-continue"
    )
    assert head.method == b"POST"
    assert head.target == b"/webhook?x=1"
    assert head.content_length == 12
    assert head.forwarded_for == ("1.1.1.1", "2.2.2.2, 3.3.3.3")
    assert head.secret_token == b"tok"
    assert head.keep_alive
    assert head.expect_continue
    assert not parse_request_head(b"POST / HTTP/1.0").keep_alive
    assert parse_request_head(b"POST / HTTP/1.0\r\nConnection: keep-alive").keep_alive
    assert not parse_request_head(b"POST / HTTP/1.1\r\nConnection: close").keep_alive
    # Two token headers never match a single token.
    assert parse_request_head(b"POST / HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: a\r\n"
                              b"X-Telegram-Bot-Api-Secret-Token: a").secret_token == b"a, a"  # fmt: skip


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST /webhook HTTP/2.0", 505),
        (b"POST  /webhook HTTP/1.1", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: -1", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 0x10", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length : 1", 400),
        (b"POST /webhook HTTP/1.1\r\nA: b\r\n folded", 400),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked, gzip", 501),
        (b"POST /webhook HTTP/1.1\r\n" + b"\r\n".join([b"A: b"] * 101), 431),
    ],
)
def test_ambiguous_requests_are_refused(head: bytes, status: int):
    with pytest.raises(HttpError) as caught:
        parse_request_head(head)
    assert caught.value.status == status


def test_repeated_equal_content_length_is_fine():
    assert (
        parse_request_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5").content_length == 5
    )


def test_response_head():
    head = parse_response_head(
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked"
    )
    assert (head.status, head.content_type, head.chunked, head.keep_alive) == (
        200, b"multipart/form-data; boundary=x", True, True,
    )  # fmt: skip
    assert not parse_response_head(b"HTTP/1.1 204 No Content\r\nConnection: close").keep_alive
    with pytest.raises(HttpError):
        parse_response_head(b"ICY 200 OK")


def encode_chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        piece = body[pos : pos + size]
        if not piece:
            break
        out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
        pos += len(piece)
    if pos < len(body):
        out += b"%X\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return out + b"0\r\nTrailer: x\r\n\r\n"


@given(
    st.binary(max_size=300),
    st.lists(st.integers(1, 50), max_size=10),
    st.integers(1, 64),
    st.binary(max_size=8),
)
def test_chunked_roundtrip_in_any_split(body: bytes, sizes: list[int], step: int, after: bytes):
    wire = encode_chunked(body, sizes) + after
    decoder = ChunkedDecoder(limit=1000)
    rest = None
    for i in range(0, len(wire), step):
        assert rest is None
        rest = decoder.feed(wire[i : i + step])
        if rest is not None:
            rest += wire[i + step :]
            break
    assert rest == after
    assert bytes(decoder.body) == body


@given(st.binary(max_size=200))
def test_chunked_garbage_raises_http_error_only(wire: bytes):
    decoder = ChunkedDecoder(limit=100)
    try:
        decoder.feed(wire)
    except HttpError as exc:
        status = exc.status
        assert status in (400, 413)
    assert len(decoder.body) <= 100


def test_chunked_limit():
    decoder = ChunkedDecoder(limit=10)
    with pytest.raises(HttpError) as caught:
        decoder.feed(b"8\r\n12345678\r\n8\r\n")
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "line",
    [b"A: b\nc", b"A: b\rc", b"A: b\x00c", b"A\x00: b", b": b", b"A", b"\tA: b", b"A(: b", b""],
)
def test_malformed_header_lines_are_400(line: bytes):
    for parse in (parse_request_head, parse_response_head):
        start = b"POST / HTTP/1.1" if parse is parse_request_head else b"HTTP/1.1 200 OK"
        with pytest.raises(HttpError) as caught:
            parse(start + b"\r\nHost: a\r\n" + line)
        assert caught.value.status == 400
