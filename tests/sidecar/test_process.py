"""The real ``tgbot-sidecar`` process: environment variables, SIGTERM drain, logs; its --help."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.console import help_text
from tgbot_sidecar import Settings

from .conftest import TOKEN, FakeUpstream, KubeletSecret, update

EXE = Path(sys.executable).with_name("tgbot-sidecar")


#: The real program in a subprocess, seconds each: not the unit layer (which runs no programs), the
#: full suite. --help is the script's entry point in this process (tests/packaging runs the real one).
REAL_PROCESS = pytest.mark.slow


def test_help_lists_every_flag():
    text = help_text("tgbot-sidecar")
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in text, name
        assert "TGBOT_SIDECAR_" + name.upper() in text.replace("\n", "").replace(" ", ""), name
    assert "--no-uvloop" in text


class Process:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[dict[str, object]] = []
        self.raw: list[bytes] = []

    async def listening(self) -> tuple[str, str]:
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = await self.process.stderr.readline()
                assert line, b"".join(self.raw)
                self.raw.append(line)
                record = json.loads(line)
                self.log.append(record)
                if record["message"] == "sidecar listening":
                    return str(record["webhook"]), str(record["admin"])

    async def finish(self) -> int:
        assert self.process.stderr is not None
        rest = await self.process.stderr.read()
        self.raw.append(rest)
        return await self.process.wait()


async def start(env: dict[str, str], *args: str) -> Process:
    process = await asyncio.create_subprocess_exec(
        EXE, *args, env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE
    )
    return Process(process)


@REAL_PROCESS
async def test_environment_variables_configure_everything_and_sigterm_drains(
    fake_upstream: FakeUpstream, secret: KubeletSecret, bot_socket: Path
):
    entered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.sleep(1.0)
        return web.json_response({"method": "sendMessage", "text": "late but here"})

    fake_upstream.handler = slow
    env = {
        "TGBOT_SIDECAR_LISTEN": "127.0.0.1:0",
        "TGBOT_SIDECAR_ADMIN_LISTEN": "127.0.0.1:0",
        "TGBOT_SIDECAR_SECRET_TOKEN_FILE": str(secret.path("secret-token")),
        "TGBOT_SIDECAR_UPSTREAM": "http://bot/webhook",
        "TGBOT_SIDECAR_UPSTREAM_UNIX_SOCKET": str(bot_socket),
        "TGBOT_SIDECAR_ALLOW_NETWORK": "10.0.0.0/8, 127.0.0.0/8",
        "TGBOT_SIDECAR_JSON_LOGS": "true",
        "TGBOT_SIDECAR_LOG_LEVEL": "debug",
    }
    sidecar = await start(env)
    webhook, admin = await sidecar.listening()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{admin}/readyz") as response:
            assert response.status == 200
        headers = {"X-Telegram-Bot-Api-Secret-Token": TOKEN}
        in_flight = asyncio.create_task(
            session.post(f"http://{webhook}/webhook", data=update(1), headers=headers)
        )
        await asyncio.wait_for(entered.wait(), 10)
        sidecar.process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 200
        assert json.loads(await response.read()) == {"method": "sendMessage", "text": "late but here"}
        assert response.headers.get("Connection") == "close"
        response.release()
    assert await asyncio.wait_for(sidecar.finish(), 20) == 0
    logs = b"".join(sidecar.raw)
    assert b"drained" in logs
    # Neither the token nor the update leaves the process, even at DEBUG.
    assert TOKEN.encode() not in logs
    assert b"hello" not in logs


@REAL_PROCESS
async def test_flags_win_over_environment_and_bad_config_exits_2(secret: KubeletSecret, bot_socket: Path):
    bad = await start({"TGBOT_SIDECAR_MAX_IN_FLIGHT": "0"}, "--upstream", "http://x/")
    assert await asyncio.wait_for(bad.finish(), 20) == 2
    errors = b"".join(bad.raw)
    assert b"--max-in-flight" in errors
    assert b"--secret-token-file" in errors

    good = await start(
        {"TGBOT_SIDECAR_LISTEN": "127.0.0.1:1", "TGBOT_SIDECAR_ALLOW_NETWORK": "not-a-cidr"},
        "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--json-logs", "--no-uvloop",
        "--secret-token-file", str(secret.path("secret-token")), "--upstream", "http://bot/webhook",
        "--upstream-unix-socket", str(bot_socket), "--allow-network", "127.0.0.0/8",
    )  # fmt: skip
    webhook, _ = await good.listening()
    assert webhook.startswith("127.0.0.1:")
    assert not webhook.endswith(":1")
    good.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(good.finish(), 20) == 0
