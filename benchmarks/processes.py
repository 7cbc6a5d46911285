"""Starting and stopping the processes under test (only those we started, by pid)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# The demo's and the test cluster's process handle and port picker serve the benchmarks too.
from tgbot_localdev.controlplane import LocalProcess as Proc
from tgbot_localdev.controlplane import free_port as free_port

__all__ = ["BIN", "PYTHON", "REPO", "Group", "Proc", "free_port", "start", "wait_listening"]

PYTHON = sys.executable
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def start(name: str, argv: Sequence[str], logdir: Path, env: dict[str, str] | None = None) -> Proc:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
    return Proc(name, popen, log)


def _connectable(address: str | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True


def wait_listening(proc: Proc, address: str | tuple[str, int], timeout: float = 30.0) -> None:
    """Until ``address`` (a Unix socket path or host/port) accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        if _connectable(address):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} does not listen on {address} after {timeout}s:\n{proc.tail()}")


class Group:
    """Processes started together and stopped in reverse order."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        listen: str | tuple[str, int] | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        proc = start(name, argv, self.logdir, env)
        self.procs.append(proc)
        if listen is not None:
            wait_listening(proc, listen)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        self.procs.clear()

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
