"""Processes of localdev, each with its log in a file and stopped only by its own pid: the one
process helper. ``LocalProcess``/``spawn``/``wait_ready`` for the synchronous control plane, node
and pod cluster; ``ProcessGroup`` for the demo's coroutines (the same rules, asyncio's process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ProcessFailedError(RuntimeError):
    """A process exited or did not become ready."""


@dataclass
class LocalProcess:
    """A process we started: its log file, and stopping it (only it, by pid)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(10)


def spawn(name: str, argv: Sequence[str], logdir: Path, env: Mapping[str, str] | None = None) -> LocalProcess:
    """Start ``argv`` in a session of its own (a terminal's Ctrl-C reaches only us, and we stop it),
    its output in ``logdir/<name>.log``."""
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    return LocalProcess(name, popen, log)


def wait_ready(
    process: LocalProcess,
    probe: Callable[[], bool],
    timeout: float,
    error: type[Exception] = ProcessFailedError,
) -> None:
    """Until ``probe()`` holds; ``error`` with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise error(f"{process.name} exited:\n{process.tail()}")
        if probe():
            return
        time.sleep(0.25)
    raise error(f"{process.name} not ready after {timeout:.0f}s:\n{process.tail()}")


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """A readiness probe: GET answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


@dataclass
class ManagedProcess:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def stop(self, timeout: float = 10.0) -> int | None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        return self.process.returncode


@dataclass
class ProcessGroup:
    """Starts processes with logs under ``logdir``; ``stop_all`` stops only those."""

    logdir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        ready: Callable[[ManagedProcess], Awaitable[bool]] | None = None,
        ready_line: str | None = None,
        timeout: float = 60.0,
    ) -> ManagedProcess:
        """Start ``argv``; wait until ``ready`` says so or ``ready_line`` (a regex) is logged."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = self.logdir / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=dict(os.environ if env is None else env),
                # Own process group: a terminal Ctrl-C reaches only us, and we stop them in order.
                start_new_session=True,
            )
        managed = ManagedProcess(name, process, log)
        self.processes.append(managed)
        pattern = re.compile(ready_line) if ready_line else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not managed.running:
                raise ProcessFailedError(f"{name} exited with {process.returncode}:\n{managed.tail()}")
            if pattern is not None and pattern.search(log.read_text(errors="replace")):
                return managed
            if ready is not None and await ready(managed):
                return managed
            if pattern is None and ready is None:
                return managed
            await asyncio.sleep(0.2)
        raise ProcessFailedError(f"{name} not ready after {timeout:.0f}s:\n{managed.tail()}")

    async def stop_all(self) -> None:
        # Reverse order: the last started depends on the earlier ones.
        for managed in reversed(self.processes):
            await managed.stop()
        self.processes.clear()
