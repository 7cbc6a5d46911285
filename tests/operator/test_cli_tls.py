"""The operator's TLS connections read 32 KiB at a time (cli.small_tls_read_buffers), not 256 KiB."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl
from collections.abc import Iterator

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from tgbot_operator.cli import TLS_READ_BUFFER, small_tls_read_buffers


@pytest.fixture
def small_buffers() -> Iterator[None]:
    before = asyncio.sslproto.SSLProtocol.max_size
    small_tls_read_buffers()
    yield
    asyncio.sslproto.SSLProtocol.max_size = before


async def test_a_large_answer_arrives_whole_through_small_buffers(small_buffers: None) -> None:
    assert asyncio.sslproto.SSLProtocol.max_size == TLS_READ_BUFFER == 32 * 1024
    body = bytes(range(256)) * 4096 * 3  # 3 MiB: ~100 reads
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/", big)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_context)
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context)) as http,
            http.get(f"https://127.0.0.1:{server.port}/") as response,
        ):
            assert response.connection is not None
            ssl_protocol = getattr(response.connection.transport, "_ssl_protocol", None)
            assert isinstance(ssl_protocol, asyncio.sslproto.SSLProtocol)
            buffer = getattr(ssl_protocol, "_ssl_buffer")  # noqa: B009 - private: what each connection holds
            assert len(buffer) == TLS_READ_BUFFER
            assert await response.read() == body
    finally:
        await server.close()


def test_it_never_grows_the_buffer(small_buffers: None) -> None:
    small_tls_read_buffers(10 * 1024 * 1024)
    assert asyncio.sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
