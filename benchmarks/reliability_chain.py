"""The chain's own processes in a reliability run: the aiogram bot that is SIGKILLed and restarted,
and the sidecar in front of it reading the mirrored Secret; the sidecar's request counts."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from tgbot_localdev.controlplane import free_port
from tgbot_localdev.processes import ManagedProcess, http_ok

from .processes import PYTHON, child_env, listening
from .setups import sidecar_argv
from .stack import Stack


class Bot:
    """The aiogram dispatcher; ``kill`` is SIGKILL, ``start`` a fresh process on the same socket."""

    def __init__(self, s: Stack, socket: Path, record: Path) -> None:
        self.stack, self.socket, self.record = s, socket, record
        self.process: ManagedProcess | None = None
        self.killed_pids: set[int] = set()
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        argv = [
            PYTHON,
            "-m",
            "benchmarks.servers",
            "aiogram",
            "--unix",
            str(self.socket),
            "--record",
            str(self.record),
        ]
        self.process = await self.stack.group.start(
            f"bot-{self.starts}",
            argv,
            env=child_env(),
            ready=lambda _: asyncio.to_thread(listening, str(self.socket)),
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.killed_pids.add(self.process.process.pid)
        self.process.process.send_signal(signal.SIGKILL)
        await self.process.process.wait()


async def start_sidecar(s: Stack, port: int, folder: Path, socket: Path) -> str:
    """The sidecar on ``port`` in front of the bot's ``socket``, its tokens the files in ``folder``
    (reread every half second); returns its metrics URL."""
    admin = free_port()
    extra = [
        "--previous-secret-token-file",
        str(folder / "previous-secret-token"),
        "--reload-interval",
        "0.5",
    ]
    # The sidecar's default log level: the token scan reads all it says.
    argv = sidecar_argv(
        port,
        folder / "secret-token",
        "http://bot/webhook",
        socket,
        admin_port=admin,
        log_level=None,
        extra=extra,
    )
    readyz = f"http://127.0.0.1:{admin}/readyz"
    await s.group.start("sidecar", argv, ready=lambda _: asyncio.to_thread(http_ok, readyz))
    return f"http://127.0.0.1:{admin}/metrics"


async def sidecar_metrics(url: str) -> dict[str, float]:
    """tgbot_sidecar_requests_total by outcome/reason: what reached the sidecar (not capped)."""
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        text = await answer.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tgbot_sidecar_requests_total{"):
            labels, _, value = line.rpartition(" ")
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            reason = labels.split('reason="', 1)[1].split('"', 1)[0] if 'reason="' in labels else ""
            if float(value):
                out[f"{outcome}/{reason}" if reason else outcome] = float(value)
    return out
