"""Local processes of the demo: started with their logs in files, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ProcessFailedError(RuntimeError):
    """A process exited or did not become ready."""


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
