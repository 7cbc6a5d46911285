"""The HTTP/1.1 codec: llhttp plus the sidecar's policy - strictness examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgbot_sidecar.http1 import HttpError, RequestHead, RequestParser, parse_request_head

header_names = st.sampled_from(
    [b"Host", b"Content-Length", b"Transfer-Encoding", b"X-Forwarded-For", b"Connection",
     b"X-Telegram-Bot-Api-Secret-Token", b"Expect", b"X-Other", b"Bad Name", b"", b" Host"]
)  # fmt: skip
header_values = st.binary(max_size=30)


class Collector:
    """A RequestParser with its callbacks recorded."""

    def __init__(self, max_body: int = 1000, accept: bool = True) -> None:
        self.heads: list[RequestHead] = []
        self.requests: list[tuple[bytes, bool]] = []
        self.accept = accept
        self.parser = RequestParser(self.on_head, self.on_request, max_body, 16 * 1024)

    def on_head(self, head: RequestHead) -> bool:
        self.heads.append(head)
        return self.accept

    def on_request(self, body: bytes, keep_alive: bool) -> None:
        self.requests.append((body, keep_alive))

    def feed(self, data: bytes) -> None:
        self.parser.feed(data)


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
        (b"POST /webhook HTTP/0.9", 505),
        (b"POST /webhook HTTP/1.1 x", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked", 400),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400),
        # Equal duplicates are refused too (RFC 9110 allows either; llhttp refuses).
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 5, 5", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: -1", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 0x10", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length : 1", 400),
        (b"POST /webhook HTTP/1.1\r\nA: b\r\n folded", 400),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked, gzip", 400),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", 501),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
        (b"POST /webhook HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket", 400),
        (b"CONNECT example.org:443 HTTP/1.1", 400),
        (b"POST /webhook HTTP/1.1\r\n" + b"\r\n".join([b"A: b"] * 101), 431),
        (b"POST /webhook HTTP/1.1\r\nA: " + b"b" * 17_000, 431),
    ],
)
def test_ambiguous_requests_are_refused(head: bytes, status: int):
    with pytest.raises(HttpError) as caught:
        parse_request_head(head)
    assert caught.value.status == status


# The seven cases of llhttp's own request suite that the hand-written parser accepted.
LLHTTP_CASES = {
    "VT before chunked": b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    "FF after chunked": b"Transfer-Encoding: chunked\x0c\r\n\r\n0\r\n\r\n",
    "VT before Content-Length": b"Content-Length: \x0b2\r\n\r\n{}",
    "FF after Content-Length": b"Content-Length: 2\x0c\r\n\r\n{}",
    "control character in a header value": b"X-A: b\x01c\r\nContent-Length: 2\r\n\r\n{}",
    "DEL in a header value": b"X-A: b\x7fc\r\nContent-Length: 2\r\n\r\n{}",
    "bad chunk extension": b'Transfer-Encoding: chunked\r\n\r\n2;a="\x01"\r\n{}\r\n0\r\n\r\n',
    "space before a chunk extension": b"Transfer-Encoding: chunked\r\n\r\n2 ;a\r\n{}\r\n0\r\n\r\n",
    "trailer without a colon": b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nBad trailer\r\n\r\n",
    "control character in a trailer": b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nT: \x01\r\n\r\n",
}


@pytest.mark.parametrize("rest", LLHTTP_CASES.values(), ids=LLHTTP_CASES.keys())
def test_llhttp_refuses_what_the_old_parser_accepted(rest: bytes):
    collector = Collector()
    with pytest.raises(HttpError) as caught:
        collector.feed(b"POST /webhook HTTP/1.1\r\nHost: a\r\n" + rest)
    assert caught.value.status == 400
    assert collector.requests == []


@pytest.mark.parametrize("target", [b"/web\x01hook", b"/web\x7fhook", b"/web\x00hook"])
def test_control_characters_in_the_target_are_refused(target: bytes):
    with pytest.raises(HttpError) as caught:
        parse_request_head(b"POST " + target + b" HTTP/1.1\r\nHost: a")
    assert caught.value.status == 400


def test_chunked_on_http_1_0_is_refused():
    collector = Collector()
    with pytest.raises(HttpError) as caught:
        collector.feed(b"POST /webhook HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert caught.value.status == 400
    assert collector.requests == []


def test_no_100_continue_for_http_1_0():
    assert not parse_request_head(b"POST / HTTP/1.0\r\nExpect: 100-continue").expect_continue
    assert parse_request_head(b"POST / HTTP/1.1\r\nExpect: 100-Continue").expect_continue


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


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=10), st.integers(1, 64))
def test_chunked_roundtrip_in_any_split(body: bytes, sizes: list[int], step: int):
    wire = b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + encode_chunked(body, sizes)
    wire += b"POST /next HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"  # a pipelined second request
    collector = Collector()
    for i in range(0, len(wire), step):
        collector.feed(wire[i : i + step])
    assert collector.requests == [(body, True), (b"{}", True)]
    assert [h.target for h in collector.heads] == [b"/webhook", b"/next"]


@given(st.binary(max_size=200))
def test_chunked_garbage_raises_http_error_only(wire: bytes):
    collector = Collector(max_body=100)
    try:
        collector.feed(b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + wire)
    except HttpError as exc:
        status = exc.status
        assert status in (400, 413, 431, 505)
    assert all(len(body) <= 100 for body, _ in collector.requests)


def test_chunked_limit():
    collector = Collector(max_body=10)
    with pytest.raises(HttpError) as caught:
        collector.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678")
    assert caught.value.status == 413


def test_a_refused_head_stops_the_parser():
    collector = Collector(accept=False)
    collector.feed(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}POST / HTTP/1.1\r\n\r\n")
    assert len(collector.heads) == 1
    assert collector.requests == []
    collector.feed(b"garbage that would raise")  # ignored: the connection is done


@pytest.mark.parametrize(
    "line",
    [b"A: b\nc", b"A: b\rc", b"A: b\x00c", b"A\x00: b", b": b", b"A", b"\tA: b", b"A(: b"],
)
def test_malformed_header_lines_are_400(line: bytes):
    with pytest.raises(HttpError) as caught:
        parse_request_head(b"POST / HTTP/1.1\r\nHost: a\r\n" + line)
    assert caught.value.status == 400
