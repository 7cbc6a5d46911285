"""Helpers for emulator tests: a Bot API caller and a programmable webhook receiver."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "123456:TEST_TOKEN_abcdef"
BOT_ID = 123456


class BotApi:
    """Calls /bot<token>/<method> with JSON, form, multipart or query parameters."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str = TOKEN) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def url(self, method: str, token: str | None = None) -> str:
        return f"{self.base_url}/bot{token or self.token}/{method}"

    async def json(self, method: str, token: str | None = None, **params: Any) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(method, token), json=params) as response:
            return response.status, await response.json(content_type=None)

    async def form(self, method: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(method), data=params) as response:
            return response.status, await response.json(content_type=None)

    async def query(self, method: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.url(method), params=params) as response:
            return response.status, await response.json(content_type=None)

    async def multipart(
        self, method: str, files: dict[str, tuple[str, bytes]] | None = None, **params: str
    ) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(key, value)
        for key, (filename, content) in (files or {}).items():
            form.add_field(key, content, filename=filename, content_type="application/x-pem-file")
        async with self.session.post(self.url(method), data=form) as response:
            return response.status, await response.json(content_type=None)

    async def ok(self, method: str, **params: Any) -> Any:
        status, body = await self.json(method, **params)
        assert status == 200, body
        assert body["ok"] is True, body
        return body["result"]


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


Behaviour = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


async def _accept(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=200)


@dataclass
class Receiver:
    """A real webhook endpoint; ``behaviour`` decides each response (default: 200, empty)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    behaviour: Behaviour = _accept
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        update = json.loads(await request.read())
        # The event loop's clock, the one the emulator's retry timers run on: time.monotonic() in a
        # normal test, looptime's virtual clock in a @pytest.mark.looptime one (gaps stay exact).
        self.received.append(Received(update, dict(request.headers), asyncio.get_running_loop().time()))
        self.arrived.set()
        return await self.behaviour(request, update)

    def update_ids(self) -> list[int]:
        return [r.body["update_id"] for r in self.received]

    def texts(self) -> list[str]:
        return [r.body["message"]["text"] for r in self.received if "message" in r.body]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def start_receiver(
    path: str = "/hook", ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context is not None else "http"
    receiver.url = f"{scheme}://{host}:{port}{path}"
    receiver.runner = runner
    return receiver


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, step: float = 0.02) -> None:
    """Poll an async condition until it holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
