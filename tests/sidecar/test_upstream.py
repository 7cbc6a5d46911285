"""The dispatcher's answers as llhttp reads them: framing, interim answers, refusals, connection reuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import MakeSidecar, update


@dataclass
class RawUpstream:
    """A dispatcher that answers every request with ``reply`` (then closes when ``close``)."""

    socket: Path
    reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    close: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                self.requests.append(await reader.readexactly(length))
                writer.write(self.reply)
                await writer.drain()
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, str(self.socket))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def raw_upstream(bot_socket: Path) -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(bot_socket)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize(
    ("reply", "close", "body"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", False, b"{}"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close", True, b"until the close"),
        (b"HTTP/1.0 200 OK\r\n\r\nhttp/1.0", True, b"http/1.0"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n",
            False,
            b"{}",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False, b""),
    ],
    ids=["100-continue", "until-close", "http-1.0", "chunked", "204"],
)
async def test_well_framed_answers_pass(
    raw_upstream: RawUpstream, make_sidecar: MakeSidecar, reply: bytes, close: bool, body: bytes
):
    raw_upstream.reply, raw_upstream.close = reply, close
    running = await make_sidecar()
    status, _, answer = await running.post(update(1))
    assert (status, answer) == (200, body)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX-A: \x01\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"ICY 200 OK\r\n\r\n{}",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["cl-and-te", "te-gzip", "two-lengths", "too-large", "control-char", "http-2", "icy", "status"],
)
async def test_malformed_answers_are_502(raw_upstream: RawUpstream, make_sidecar: MakeSidecar, reply: bytes):
    raw_upstream.reply, raw_upstream.close = reply, True
    running = await make_sidecar()
    status, _, _ = await running.post(update(1))
    assert status == 502
    assert 'outcome="upstream_error",reason="reset"} 1.0' in await running.metrics()


async def test_a_clean_connection_is_reused_and_a_garbled_one_is_not(
    raw_upstream: RawUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar()
    for update_id in (1, 2, 3):
        assert (await running.post(update(update_id)))[0] == 200
    assert raw_upstream.connections == 1
    # Bytes after the answer: the answer counts, the connection's framing is not trusted again.
    raw_upstream.reply += b"HTTP/1.1 200 OK\r\n"
    for update_id in (4, 5, 6):
        assert (await running.post(update(update_id)))[0] == 200
    assert raw_upstream.connections == 3  # 4 on the first connection, then one each for 5 and 6
    assert len(raw_upstream.requests) == 6
