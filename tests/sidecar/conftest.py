"""Fixtures for the sidecar: a real aiogram dispatcher on a Unix socket, fake upstreams, the sidecar."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tgbot_localdev.secretmount import write_version
from tgbot_sidecar import Settings, Sidecar

REPO = Path(__file__).resolve().parents[2]
TOKEN = "current-token_0123456789"
OLD_TOKEN = "previous-token_9876543210"

#: For tests that wait on asyncio timers (a connection's deadline, the upstream timeout, a drain's
#: grace, the emulator's retry backoff): they run on looptime's virtual clock, which jumps to the
#: next timer whenever nothing is ready to run, so waiting costs no wall time. Socket I/O stays
#: real (it is polled before time moves). Not for waits on threads or the wall clock.
VIRTUAL_TIME = pytest.mark.looptime


def load_echo_bot() -> Any:
    """examples/echo-bot/bot.py as a module (its folder name is not importable)."""
    spec = importlib.util.spec_from_file_location("echo_bot", REPO / "examples" / "echo-bot" / "bot.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def update(update_id: int, text: str | None = "hello") -> bytes:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Ada"},
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return json.dumps({"update_id": update_id, "message": message}).encode()


class KubeletSecret:
    """A directory laid out like a mounted Secret: files are symlinks through ``..data``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: dict[str, str]) -> None:
        """Atomically replace the whole content, as the kubelet does (symlink swap of ..data)."""
        write_version(
            self.root, {name: content.encode() for name, content in files.items()}, keep_history=False
        )

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def secret(tmp_path: Path) -> KubeletSecret:
    store = KubeletSecret(tmp_path / "webhook")
    store.write({"secret-token": TOKEN})
    return store


@pytest.fixture
def bot_socket(short_dir: Path) -> Path:
    return short_dir / "bot.sock"


@dataclass
class EchoBot:
    socket: Path
    updates: list[int] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        echo = load_echo_bot()
        dispatcher = echo.build_dispatcher()

        async def count(handler: Any, event: Any, data: dict[str, Any]) -> Any:
            self.updates.append(event.update_id)
            return await handler(event, data)

        dispatcher.update.outer_middleware.register(count)

        # The webhook reply path makes no API call; a dead API address proves it.
        bot = echo.build_bot("123456:TEST-token", "http://127.0.0.1:9")
        self.runner = web.AppRunner(echo.build_app(dispatcher, bot), access_log=None)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket)).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def echo_bot(bot_socket: Path) -> AsyncIterator[EchoBot]:
    bot = EchoBot(bot_socket)
    await bot.start()
    yield bot
    await bot.stop()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeUpstream:
    """A scripted dispatcher: ``handler`` decides each answer; ``bodies`` records what arrived."""

    socket: Path
    handler: Handler | None = None
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        self.headers.append(dict(request.headers))
        if self.handler is not None:
            return await self.handler(request)
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket)).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def fake_upstream(bot_socket: Path) -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream(bot_socket)
    await upstream.start()
    yield upstream
    await upstream.stop()


def base_settings(secret: KubeletSecret, bot_socket: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "secret_token_file": secret.path("secret-token"),
        "previous_secret_token_file": secret.path("previous-secret-token"),
        "upstream": "http://bot/webhook",
        "upstream_unix_socket": bot_socket,
        "allow_network": ["127.0.0.0/8"],
        "reload_interval": 0.05,
        "upstream_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Running:
    sidecar: Sidecar
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        host, port = self.sidecar.webhook_address
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.sidecar.tls is not None else "http"
        return f"{scheme}://{host}:{port}/webhook"

    @property
    def admin_url(self) -> str:
        host, port = self.sidecar.admin_address
        return f"http://{host}:{port}"

    async def post(
        self,
        body: bytes,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with self.session.post(url or self.url, data=body, headers=all_headers) as response:
            return response.status, dict(response.headers), await response.read()

    async def metrics(self) -> str:
        async with self.session.get(self.admin_url + "/metrics") as response:
            return await response.text()


MakeSidecar = Callable[..., Awaitable[Running]]


@pytest.fixture
async def make_sidecar(secret: KubeletSecret, bot_socket: Path) -> AsyncIterator[MakeSidecar]:
    started: list[Running] = []

    async def make(**overrides: Any) -> Running:
        sidecar = Sidecar(base_settings(secret, bot_socket, **overrides))
        await sidecar.start()
        running = Running(sidecar, aiohttp.ClientSession())
        started.append(running)
        return running

    yield make
    for running in started:
        await running.session.close()
        await running.sidecar.drain(grace=1.0)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def raw_request(host: str, port: int, data: bytes, read_timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes (or the timeout)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        async with asyncio.timeout(read_timeout):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    except TimeoutError:
        pass
    writer.close()
    return b"".join(chunks)
