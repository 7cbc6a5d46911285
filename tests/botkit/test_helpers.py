"""The helpers' edges in-process: environment, the webhook guard, PTB's socket server, log masking."""

from __future__ import annotations

import ast
import asyncio
import logging
import sys
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer

import tgbot_aiogram
from tgbot_ptb.http import UnixHttpServer
from tgbot_ptb.logs import MASK, keep_tokens_out_of_logs

REPO = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAH-helpers_TOKEN_is_35_characters_x"


def test_environment_defaults_and_checks():
    env = tgbot_aiogram.BotEnvironment.from_env({"BOT_TOKEN": TOKEN})
    assert (env.socket, env.webhook_path, env.api_server) == ("/run/tgbot/bot.sock", "/webhook", None)
    assert TOKEN not in repr(env)
    with pytest.raises(tgbot_aiogram.ContractError, match="BOT_WEBHOOK_PATH"):
        tgbot_aiogram.BotEnvironment.from_env({"BOT_WEBHOOK_PATH": "webhook"})
    with pytest.raises(tgbot_aiogram.ContractError, match="BOT_API_SERVER"):
        tgbot_aiogram.BotEnvironment.from_env({"BOT_API_SERVER": "localhost:8081"})
    with pytest.raises(tgbot_aiogram.ContractError, match="BOT_TOKEN is not set"):
        tgbot_aiogram.BotEnvironment.from_env({}).require_token()


async def test_make_bot_uses_the_api_server():
    env = tgbot_aiogram.BotEnvironment.from_env({"BOT_TOKEN": TOKEN, "BOT_API_SERVER": "http://127.0.0.1:9/"})
    bot = tgbot_aiogram.make_bot(env)
    try:
        assert bot.session.api.api_url(TOKEN, "getMe") == f"http://127.0.0.1:9/bot{TOKEN}/getMe"
    finally:
        await bot.session.close()


async def test_serve_refuses_set_webhook_and_points_a_default_bot_at_the_api_server(tmp_path: Path):
    socket = Path("/tmp") / f"bk-guard-{tmp_path.name[-8:]}.sock"
    env = tgbot_aiogram.BotEnvironment(socket=str(socket), api_server="http://127.0.0.1:9", token=TOKEN)
    bot = Bot(TOKEN)
    own_server = TelegramAPIServer.from_base("http://127.0.0.1:10")
    own = Bot(TOKEN, session=AiohttpSession(api=own_server))
    dispatcher = Dispatcher()
    errors: list[BaseException] = []

    @dispatcher.startup()
    async def register(bot: Bot) -> None:
        try:
            await bot.set_webhook("https://example.org/webhook")
        except tgbot_aiogram.WebhookOwnedByOperatorError as exc:
            errors.append(exc)
        stop.set()

    for candidate, expected in ((bot, "http://127.0.0.1:9"), (own, "http://127.0.0.1:10")):
        errors.clear()
        stop = asyncio.Event()
        assert candidate.session.api == (PRODUCTION if candidate is bot else own_server)
        await asyncio.wait_for(tgbot_aiogram.serve(dispatcher, candidate, environment=env, stop=stop), 30)
        assert candidate.session.api.api_url("t", "m").startswith(expected)
        assert len(errors) == 1
        assert "operator" in str(errors[0])
        assert not socket.exists()


class Peer:
    """A raw client of the PTB helper's socket server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(raw)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, body


def post(body: bytes, path: str = "/webhook", extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_ptb_socket_server_framing_and_drain(tmp_path: Path):
    socket = Path("/tmp") / f"bk-http-{tmp_path.name[-8:]}.sock"
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(body: bytes) -> tuple[int, bytes]:
        if body == b"slow":
            started.set()
            await release.wait()
        return 200, b'{"got":' + str(len(body)).encode() + b"}"

    server = UnixHttpServer("/webhook", handler)
    await server.start(str(socket))
    try:
        peer = Peer(*await asyncio.open_unix_connection(str(socket)))
        # Kept alive: several requests on one connection.
        assert (await peer.request(post(b"{}")))[::2] == (200, b'{"got":2}')
        assert (await peer.request(post(b"{}", path="/other")))[0] == 404
        assert (await peer.request(post(b"{}", extra="X: 1\r\n").replace(b"POST", b"PUT")))[0] == 405
        status, headers, _ = await peer.request(post(b"abc", extra="Connection: close\r\n"))
        assert (status, headers["connection"]) == (200, "close")
        assert await peer.reader.read() == b""
        for bad, expected in (
            (b"POST /webhook HTTP/1.1\r\nHost: bot\r\n\r\n", 411),
            (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nx", 501),
            (b"POST /webhook HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
            (b"POST /webhook HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"garbage\r\n\r\n", 400),
        ):
            other = Peer(*await asyncio.open_unix_connection(str(socket)))
            assert (await other.request(bad))[0] == expected, bad
            assert await other.reader.read() == b""  # and the connection is closed

        # Drain: the idle connection closes at once, the busy one is answered, then closed.
        idle = Peer(*await asyncio.open_unix_connection(str(socket)))
        busy = Peer(*await asyncio.open_unix_connection(str(socket)))
        answer = asyncio.create_task(busy.request(post(b"slow")))
        await started.wait()
        draining = asyncio.create_task(server.drain(timeout=10))
        assert await asyncio.wait_for(idle.reader.read(), 5) == b""
        await asyncio.sleep(0.2)
        assert not draining.done()
        release.set()
        status, headers, body = await answer
        assert (status, headers["connection"], body) == (200, "close", b'{"got":4}')
        await asyncio.wait_for(draining, 5)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_unix_connection(str(socket))
    finally:
        socket.unlink(missing_ok=True)


def test_token_shaped_strings_are_masked_in_every_logger(caplog: pytest.LogCaptureFixture):
    keep_tokens_out_of_logs("odd-shaped-secret")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("telegram.ext.ExtBot").debug("Set Bot API URL: http://h/bot%s", TOKEN)
    logging.getLogger("some.child.logger").info("token %s and %s", TOKEN, "odd-shaped-secret")
    logging.getLogger("httpx").info("HTTP Request: POST http://h/bot%s/getMe", TOKEN)
    assert TOKEN not in caplog.text
    assert "odd-shaped-secret" not in caplog.text
    assert caplog.text.count(MASK) == 3
    assert "HTTP Request" not in caplog.text  # httpx stays below INFO
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("integrations/aiogram/tgbot_aiogram", {"aiogram", "aiohttp"}),  # aiohttp comes with aiogram
        ("integrations/ptb/tgbot_ptb", {"telegram"}),
        # tgbot-dev ships with the emulator (and its tgbot-kit command line) and runs the sidecar
        # as a program, never imports it.
        ("emulator/tgbot_dev", {"tgbot_emulator", "tgbot_kit", "aiohttp", "pydantic", "pydantic_settings"}),
    ],
)
def test_a_helper_imports_only_its_framework(package: str, allowed: set[str]):
    """Each helper is its own distribution: nothing but the stdlib and its one dependency."""
    found: set[str] = set()
    for source in (REPO / package).glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    assert found - sys.stdlib_module_names - {"__future__"} <= allowed


def test_the_two_helpers_share_the_contract_code_by_copy():
    """environment.py is the same in both helpers below its docstring (see why in the docstring)."""

    def code(package: str) -> str:
        source = (REPO / "integrations" / package / f"tgbot_{package}" / "environment.py").read_text()
        docstring = ast.get_docstring(ast.parse(source), clean=False)
        assert docstring is not None
        return source.split(f'"""{docstring}"""', 1)[1]

    assert code("aiogram") == code("ptb")
    assert "async def wait_for_stop" in code("aiogram")
