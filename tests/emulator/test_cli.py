"""The tgbot-emulator command: settings, the ready line, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tgbot_emulator.cli import CliSettings
from tgbot_kit import ListenAddress

TOKEN = "123456:CLI_SECRET_abc"
#: The real program in a subprocess: not the unit layer (which runs no programs), the full suite.
REAL_PROCESS = pytest.mark.slow


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TGBOT_EMULATOR_LISTEN", "0.0.0.0:9000")
    monkeypatch.setenv("TGBOT_EMULATOR_BOT", "1:A=one_bot, 2:B=two_bot")
    monkeypatch.setenv("TGBOT_EMULATOR_ALLOW_LOCAL_WEBHOOKS", "true")
    monkeypatch.setenv("TGBOT_EMULATOR_RETRY_CAP", "5")
    monkeypatch.setenv("TGBOT_EMULATOR_DELIVERY_TIMEOUT", "3")
    monkeypatch.setenv("TGBOT_EMULATOR_EXTRA_CA_FILE", str(tmp_path / "ca.pem"))
    config = CliSettings().to_config()
    assert (config.host, config.port) == ("0.0.0.0", 9000)
    assert [(b.token, b.username) for b in config.bots] == [("1:A", "one_bot"), ("2:B", "two_bot")]
    assert config.allow_local_webhooks is True
    assert config.retry_cap_seconds == 5
    assert config.delivery_timeout_seconds == 3
    assert config.extra_ca_file == tmp_path / "ca.pem"


def test_flags_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBOT_EMULATOR_RETRY_CAP", "5")
    config = CliSettings(retry_cap=7, listen=ListenAddress("[::1]:0")).to_config()
    assert config.retry_cap_seconds == 7
    assert (config.host, config.port) == ("::1", 0)


@REAL_PROCESS
async def test_cli_serves_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tgbot_emulator",
        "--listen",
        "127.0.0.1:0",
        "--bot",
        f"{TOKEN}=cli_bot",
        "--allow-local-webhooks",
        "--retry-cap",
        "1",
        "--log-level",
        "info",
        "--json-logs",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert line.startswith("tgbot-emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/bot{TOKEN}/getMe") as response:
                body = await response.json()
            assert body["result"]["username"] == "cli_bot"
            async with session.get(f"{url}/_emulator/health") as response:
                assert await response.json() == {"ok": True}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    logs = (await process.stderr.read()).decode()
    assert "getMe" in logs  # the access log is on...
    assert "CLI_SECRET" not in logs  # ...and never shows the token


@REAL_PROCESS
async def test_cli_rejects_bad_bot_without_echoing_it() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tgbot_emulator",
        "--bot",
        "999:SUPER_SECRET",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"SUPER_SECRET" not in stderr
