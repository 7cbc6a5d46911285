"""The real processes a bot meets in a pod, on loopback: tgbot-emulator, tgbot-sidecar, the bot."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tgbot_emulator import EmulatorClient
from tgbot_localdev.processes import ManagedProcess, ProcessGroup

HERE = Path(__file__).resolve().parent
BOTS = HERE / "bots"
BIN = Path(sys.executable).parent
TOKEN = "987654321:AAH-botkit_TOKEN_must_never_be_logged"
BOT_ID = 987654321


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="bk-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _sidecar_address(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("message") == "sidecar listening":
                return str(record["webhook"])
    raise AssertionError("the sidecar did not say where it listens")


async def _socket_accepts(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True


@dataclass
class Stack:
    """Emulator and sidecar running; ``start_bot`` adds the bot and registers the webhook."""

    group: ProcessGroup
    directory: Path
    emulator_url: str
    sidecar: ManagedProcess
    sidecar_url: str
    client: EmulatorClient
    bot: ManagedProcess | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "bot.sock"

    def bot_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "BOT_SOCKET": str(self.socket),
            "BOT_WEBHOOK_PATH": "/webhook",
            "BOT_API_SERVER": self.emulator_url,
            "PYTHONUNBUFFERED": "1",
        }

    async def start_bot(self, script: Path) -> ManagedProcess:
        async def ready(_: ManagedProcess) -> bool:
            return await _socket_accepts(self.socket)

        self.bot = await self.group.start(
            "bot", [sys.executable, str(script)], env=self.bot_env(), ready=ready
        )
        await self.set_webhook()
        return self.bot

    async def set_webhook(self) -> None:
        # What the operator sends (SetWebhookParams.fields()).
        params: dict[str, Any] = {
            "url": self.sidecar_url,
            "secret_token": (self.directory / "secret-token").read_text(),
            "max_connections": 40,
            "drop_pending_updates": False,
            "allowed_updates": [],
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.emulator_url}/bot{TOKEN}/setWebhook", json=params) as response,
        ):
            body = await response.json()
        assert body["ok"], body


@pytest.fixture
async def stack(short_dir: Path) -> AsyncIterator[Stack]:
    group = ProcessGroup(short_dir / "logs")
    (short_dir / "secret-token").write_text(secrets.token_urlsafe(32))
    try:
        emulator = await group.start(
            "emulator",
            [
                str(BIN / "tgbot-emulator"),
                "--listen=127.0.0.1:0",
                f"--bot={TOKEN}=botkit_bot",
                "--allow-local-webhooks",
                "--retry-cap=1",
            ],
            ready_line=r"listening on http://",
        )
        match = re.search(r"listening on (http://\S+)", emulator.log.read_text())
        assert match is not None
        sidecar = await group.start(
            "sidecar",
            [
                str(BIN / "tgbot-sidecar"),
                "--listen=127.0.0.1:0",
                "--admin-listen=127.0.0.1:0",
                f"--secret-token-file={short_dir / 'secret-token'}",
                "--upstream=http://bot/webhook",
                f"--upstream-unix-socket={short_dir / 'bot.sock'}",
                "--allow-network=127.0.0.0/8",
                "--drain-timeout=20",
                "--json-logs",
            ],
            ready_line=r"sidecar listening",
        )
        host, port = _sidecar_address(sidecar.log).rsplit(":", 1)
        async with EmulatorClient(match.group(1)) as client:
            yield Stack(
                group,
                short_dir,
                match.group(1),
                sidecar,
                f"http://{host}:{port}/webhook",
                client,
            )
    finally:
        await group.stop_all()


async def wait_for_line(process: ManagedProcess, text: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in process.log.read_text(errors="replace"):
        if loop.time() > deadline:
            raise AssertionError(f"{process.name} never printed {text!r}:\n{process.tail()}")
        if not process.running:
            raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        await asyncio.sleep(0.05)
