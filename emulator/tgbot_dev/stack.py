"""Emulator + sidecar + the user's bot on this machine, wired as the chart wires a pod."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from .processes import Child, Children, StartError

#: What the chart forwards to (the sidecar's --upstream path) and sets as BOT_WEBHOOK_PATH.
WEBHOOK_PATH = "/webhook"
#: Telegram's alphabet for secret tokens; 64 characters, as the operator generates them.
SECRET_TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
SECRET_TOKEN_LENGTH = 64
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"


def generate_token() -> str:
    """A token shaped like Telegram's: the bot id, a colon, 35 characters."""
    bot_id = 1_000_000_000 + secrets.randbelow(8_999_999_999)
    return f"{bot_id}:" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(35))


def generate_secret_token() -> str:
    return "".join(secrets.choice(SECRET_TOKEN_ALPHABET) for _ in range(SECRET_TOKEN_LENGTH))


def find_sidecar() -> str:
    """``tgbot-sidecar`` beside our interpreter (a venv) or on PATH."""
    here = Path(sys.executable).parent
    found = shutil.which("tgbot-sidecar", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if found is None:
        raise StartError(
            "tgbot-sidecar not found beside this Python or on PATH: install the tgbot-sidecar distribution"
        )
    return found


async def _wait_for_line(child: Child, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
    assert child.log is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        match = pattern.search(child.log.read_text(errors="replace"))
        if match is not None:
            return match
        if not child.running:
            raise StartError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
        if loop.time() > deadline:
            raise StartError(f"{child.name} not ready after {timeout:.0f} s:\n{child.tail()}")
        await asyncio.sleep(0.05)


_EMULATOR_READY = re.compile(r"tgbot-emulator listening on (http://\S+)")
_SIDECAR_READY = re.compile(r'^\{.*"message": ?"sidecar listening".*\}$', re.MULTILINE)


@dataclass
class Stack:
    directory: Path
    token: str = field(default_factory=generate_token, repr=False)
    secret_token: str = field(default_factory=generate_secret_token, repr=False)
    username: str = "dev_bot"
    children: Children = field(default_factory=Children)
    emulator_url: str = ""
    webhook_url: str = ""
    bot: Child | None = None

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @property
    def socket(self) -> Path:
        return self.directory / "bot.sock"

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    async def start_emulator(self, timeout: float) -> None:
        child = await self.children.start(
            "tgbot-emulator",
            [
                sys.executable,
                "-m",
                "tgbot_emulator",
                "--listen=127.0.0.1:0",
                f"--bot={self.token}={self.username}",
                "--allow-local-webhooks",
                # A bot that fails is retried soon enough to watch, not after a minute.
                "--retry-cap=5",
            ],
            log=self.log("emulator"),
        )
        self.emulator_url = (await _wait_for_line(child, _EMULATOR_READY, timeout)).group(1)

    async def start_sidecar(self, timeout: float, drain_timeout: float) -> None:
        secret_file = self.directory / "secret-token"
        secret_file.touch(mode=0o600)
        secret_file.write_text(self.secret_token)
        child = await self.children.start(
            "tgbot-sidecar",
            [
                find_sidecar(),
                "--listen=127.0.0.1:0",
                "--admin-listen=127.0.0.1:0",
                f"--secret-token-file={secret_file}",
                f"--upstream=http://bot{WEBHOOK_PATH}",
                f"--upstream-unix-socket={self.socket}",
                "--allow-network=127.0.0.0/8",
                f"--drain-timeout={drain_timeout}",
                "--json-logs",
            ],
            log=self.log("sidecar"),
        )
        record = json.loads((await _wait_for_line(child, _SIDECAR_READY, timeout)).group(0))
        host, port = str(record["webhook"]).rsplit(":", 1)
        self.webhook_url = f"http://{host}:{port}{WEBHOOK_PATH}"

    def bot_environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "BOT_TOKEN": self.token,
            "BOT_SOCKET": str(self.socket),
            "BOT_WEBHOOK_PATH": WEBHOOK_PATH,
            "BOT_API_SERVER": self.emulator_url,
            "PYTHONUNBUFFERED": "1",
        }

    async def start_bot(self, command: Sequence[str], timeout: float, output: IO[bytes] | None) -> None:
        log = None if output is not None else self.log("bot")
        self.bot = await self.children.start(
            "the bot", command, env=self.bot_environment(), log=log, output=output
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await _accepts(self.socket):
            if not self.bot.running:
                raise StartError(f"the bot exited with {self.bot.process.returncode}:\n{self.bot.tail()}")
            if loop.time() > deadline:
                raise StartError(
                    f"the bot does not serve $BOT_SOCKET ({self.socket}) after {timeout:.0f} s:\n"
                    f"{self.bot.tail()}"
                )
            await asyncio.sleep(0.05)

    async def set_webhook(self, allowed_updates: Sequence[str]) -> None:
        """What the operator sends: its generated secret token, allowed_updates ([] = Telegram's default)."""
        params: dict[str, Any] = {
            "url": self.webhook_url,
            "secret_token": self.secret_token,
            "max_connections": 40,
            "drop_pending_updates": False,
            "allowed_updates": list(allowed_updates),
        }
        url = f"{self.emulator_url}/bot{self.token}/setWebhook"
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.post(url, json=params) as response,
        ):
            body = await response.json(content_type=None)
        if not body.get("ok"):
            raise StartError(f"setWebhook failed: {body.get('description')}")

    async def start(
        self, command: Sequence[str], timeout: float, drain_timeout: float, output: IO[bytes] | None
    ) -> None:
        # The emulator and the sidecar start side by side; the bot after the emulator listens
        # (PTB calls getMe while it starts).
        await asyncio.gather(self.start_emulator(timeout), self.start_sidecar(timeout, drain_timeout))
        await self.start_bot(command, timeout, output)

    async def stop(self) -> None:
        await self.children.stop(first=self.bot)


async def _accepts(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True
