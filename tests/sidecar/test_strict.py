"""End to end: what llhttp's request suite refuses never reaches the dispatcher.

Each request here carries the right token and a valid update from an allowed address; only
its framing is wrong. The hand-written parser forwarded all of them.
"""

from __future__ import annotations

import pytest

from .conftest import TOKEN, FakeUpstream, MakeSidecar, raw_request, update

BODY = update(1)
N = b"%x" % len(BODY)
L = b"%d" % len(BODY)
CASES = {
    "VT before chunked": (b"Transfer-Encoding: \x0bchunked\r\n\r\n" + N + b"\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "FF after chunked": (b"Transfer-Encoding: chunked\x0c\r\n\r\n" + N + b"\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "VT before Content-Length": b"Content-Length: \x0b" + L + b"\r\n\r\n" + BODY,
    "FF after Content-Length": b"Content-Length: " + L + b"\x0c\r\n\r\n" + BODY,
    "control character in a header value": b"X-A: b\x01c\r\nContent-Length: " + L + b"\r\n\r\n" + BODY,
    "bad chunk extension": b"Transfer-Encoding: chunked\r\n\r\n"
    + N
    + b';a="\x01"\r\n'
    + BODY
    + b"\r\n0\r\n\r\n",
    "unchecked trailer": b"Transfer-Encoding: chunked\r\n\r\n"
    + N
    + b"\r\n"
    + BODY
    + b"\r\n0\r\nBad trailer\r\n\r\n",
}


@pytest.mark.parametrize("rest", CASES.values(), ids=CASES.keys())
async def test_refused_by_llhttp(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar, rest: bytes):
    running = await make_sidecar()
    host, port = running.sidecar.webhook_address
    head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n".encode()
    answer = await raw_request(host, port, head + rest, read_timeout=2)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert fake_upstream.bodies == []


async def test_control_character_in_the_target(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    host, port = running.sidecar.webhook_address
    head = f"POST /webhook?\x01 HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n".encode()
    answer = await raw_request(
        host, port, head + b"Content-Length: " + L + b"\r\n\r\n" + BODY, read_timeout=2
    )
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert fake_upstream.bodies == []


async def test_chunked_on_http_1_0(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    host, port = running.sidecar.webhook_address
    head = f"POST /webhook HTTP/1.0\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n".encode()
    wire = head + b"Transfer-Encoding: chunked\r\n\r\n" + N + b"\r\n" + BODY + b"\r\n0\r\n\r\n"
    answer = await raw_request(host, port, wire, read_timeout=2)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert fake_upstream.bodies == []


async def test_no_100_continue_to_http_1_0(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    host, port = running.sidecar.webhook_address
    head = f"POST /webhook HTTP/1.0\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\nExpect: 100-continue\r\n"
    answer = await raw_request(host, port, head.encode() + b"Content-Length: " + L + b"\r\n\r\n" + BODY)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]  # the answer, and nothing before it
    assert len(fake_upstream.bodies) == 1
