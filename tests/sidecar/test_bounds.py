"""Resource bounds of the webhook port: deadlines, the connection cap, back-pressure, sizes, EOF.

Timeouts are set small through the settings; the tests assert what happens (an answer, a closed
connection, a bounded buffer), never how long it took - and those that wait for a deadline run
on virtual time (looptime), so they do not sleep through it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from .conftest import (
    TOKEN,
    VIRTUAL_TIME,
    EchoBot,
    FakeUpstream,
    MakeSidecar,
    Running,
    raw_request,
    update,
    wait_for,
)
from .test_files import write_pair

HEAD = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n".encode()
SHORT = {"head_timeout": 0.3, "body_timeout": 0.3, "idle_timeout": 0.3, "send_timeout": 0.3}


def request(body: bytes, extra: bytes = b"") -> bytes:
    return HEAD + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def connect(running: Running, **sockopts: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = running.sidecar.webhook_address
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for name, value in sockopts.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock)


async def drip(
    writer: asyncio.StreamWriter, first: bytes, byte: bytes, reader: asyncio.StreamReader
) -> bytes:
    """Send ``first``, then one ``byte`` every 50 ms until the sidecar closes; what it answered.

    The client is never quiet for long, so only a deadline for the whole head or body ends it.
    """
    writer.write(first)
    answer = b""

    async def read_all() -> None:
        nonlocal answer
        while chunk := await reader.read(65536):
            answer += chunk

    reading = asyncio.ensure_future(read_all())
    async with asyncio.timeout(10):
        while not reading.done():
            try:
                writer.write(byte)
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        await reading
    writer.close()
    return answer


@VIRTUAL_TIME
async def test_a_slow_head_without_a_token_is_closed(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(**SHORT)
    reader, writer = await connect(running)
    answer = await drip(writer, b"POST /webhook HTTP/1.1\r\nX-Slow: ", b"a", reader)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 'outcome="rejected",reason="timeout"} 1.0' in await running.metrics()
    assert fake_upstream.bodies == []


@VIRTUAL_TIME
async def test_a_slow_body_is_closed(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(**SHORT)
    reader, writer = await connect(running)
    answer = await drip(writer, HEAD + b"Content-Length: 100000\r\n\r\n{", b" ", reader)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert fake_upstream.bodies == []


@VIRTUAL_TIME
async def test_a_trailer_drip_is_closed(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(**SHORT)
    reader, writer = await connect(running)
    body = update(1)
    chunked = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Trailer: " % (len(body), body)
    answer = await drip(writer, HEAD + chunked, b"a", reader)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert fake_upstream.bodies == []


@VIRTUAL_TIME
async def test_an_idle_keep_alive_connection_is_closed(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar(**SHORT)
    reader, writer = await connect(running)
    writer.write(request(update(1)))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" not in head.lower()
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    await reader.readexactly(length)
    # Nothing more is sent: the sidecar closes the connection without another answer.
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert len(running.sidecar.connections) == 0
    writer.close()


@VIRTUAL_TIME
async def test_a_connection_that_sends_nothing_is_closed(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(**SHORT)
    reader, writer = await connect(running)
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_connections_beyond_the_cap_get_a_503(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar(max_connections=3)
    held = [await connect(running) for _ in range(3)]
    for _, writer in held:
        writer.write(b"POST /webhook HTTP/1.1\r\n")  # half a head: each holds a connection
    await asyncio.sleep(0.1)
    reader, writer = await connect(running)
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b"Connection: close" in answer
    writer.close()
    assert 'outcome="overloaded",reason="max_connections"} 1.0' in await running.metrics()
    held.pop()[1].close()
    await asyncio.sleep(0.1)
    status, _, _ = await running.post(update(7))  # a freed slot serves updates again
    assert status == 200
    for _, writer in held:
        writer.close()


# Real socket buffers filled on real time (a drain that stays blocked for a second; a send timeout
# raced against the kernel's buffers), seconds each: not the unit layer, the full suite.
@pytest.mark.slow
async def test_a_client_that_never_reads_cannot_grow_the_write_buffer(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(send_timeout=60.0)
    # Small socket buffers, so the kernel holds little and the sidecar's own buffer would show.
    reader, writer = await connect(running, SO_RCVBUF=4096, SO_SNDBUF=4096)
    # Answered at once (400, kept alive) without the upstream: pipelined, they make answers
    # as fast as the client sends - and this client never reads them.
    batch = request(b"{}") * 1000
    sent = 0
    try:
        while sent < 64 << 20:
            writer.write(batch)
            await asyncio.wait_for(writer.drain(), 1.0)
            sent += len(batch)
    except TimeoutError:
        pass
    buffered = sum(c.transport.get_write_buffer_size() for c in running.sidecar.connections if c.transport)
    assert sent < 64 << 20, "the sidecar read everything: no back-pressure"
    assert buffered < 1 << 20, f"{buffered} bytes of answers wait for a client that does not read"
    # Once the client reads, the answers flow again, in order.
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert first.startswith(b"HTTP/1.1 400 ")
    writer.transport.abort()
    status, _, _ = await running.post(update(8))
    assert status == 200


# Real time: the send timeout races real socket buffers filling up, which virtual time would skip past.
@pytest.mark.slow
async def test_a_client_that_never_reads_is_cut_off_after_the_send_timeout(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(send_timeout=0.3)
    _, writer = await connect(running, SO_RCVBUF=4096, SO_SNDBUF=4096)
    batch = request(b"{}") * 1000
    cut_off = False
    async with asyncio.timeout(10):
        while not cut_off:
            try:
                writer.write(batch)
                await asyncio.wait_for(writer.drain(), 0.5)
            except TimeoutError:
                await asyncio.sleep(0.1)  # blocked: the sidecar stopped reading; keep not reading
            except ConnectionError:
                cut_off = True
            if writer.transport.is_closing():
                cut_off = True
    assert cut_off
    assert len(running.sidecar.connections) == 0
    writer.transport.abort()


async def test_half_closed_after_the_request_still_gets_the_answer(
    echo_bot: EchoBot, make_sidecar: MakeSidecar
):
    running = await make_sidecar()
    reader, writer = await connect(running)
    writer.write(request(update(3)))
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"Connection: close" in answer
    assert echo_bot.updates == [3]
    writer.close()


async def test_a_tls_client_that_closes_leaves_no_warning(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    ca = trustme.CA()
    cert, key, _ = write_pair(ca, tmp_path)
    running = await make_sidecar(tls_cert=cert, tls_key=key)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    host, port = running.sidecar.webhook_address
    caplog.set_level(logging.WARNING, logger="asyncio")
    reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname="localhost")
    writer.write(request(update(9)))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    writer.close()  # close_notify: the sidecar sees EOF on a TLS transport
    await wait_for(lambda: not running.sidecar.connections)
    assert "eof_received" not in caplog.text


async def test_half_closed_in_the_middle_of_a_body_is_400(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar()
    reader, writer = await connect(running)
    writer.write(HEAD + b"Content-Length: 100\r\n\r\n{")
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert fake_upstream.bodies == []
    writer.close()


async def sidecar_answer(running: Running, data: bytes) -> bytes:
    host, port = running.sidecar.webhook_address
    return await raw_request(host, port, data)


async def test_a_complete_head_above_the_limit_in_one_write_is_431(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar()
    answer = await sidecar_answer(running, request(update(1), extra=b"X-Big: " + b"a" * 100_000 + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert fake_upstream.bodies == []
    small = await make_sidecar(max_head_bytes=2048)
    answer = await sidecar_answer(small, request(update(2), extra=b"X-Big: " + b"a" * 3000 + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


def chunked(body: bytes, extension: bytes = b"", trailers: bytes = b"") -> bytes:
    wire = b"%x%s\r\n%s\r\n0\r\n%s\r\n" % (len(body), extension, body, trailers)
    return HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + wire


async def test_huge_chunk_lines_and_trailers_are_refused(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar()
    cases: list[tuple[bytes, Any]] = [
        (chunked(update(1), extension=b";x=" + b"a" * 100_000), 431),
        (chunked(update(2), trailers=b"X-T: " + b"a" * 100_000 + b"\r\n"), 431),
        (chunked(update(3), trailers=b"".join(b"X-%d: a\r\n" % i for i in range(5000))), 431),
        (chunked(update(4), extension=b";x=1", trailers=b"X-T: a\r\n"), 200),  # modest ones pass
    ]
    for wire, status in cases:
        answer = await sidecar_answer(running, wire)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:80]
    assert len(fake_upstream.bodies) == 1
