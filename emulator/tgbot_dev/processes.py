"""Child processes of tgbot-dev: each in its own session, stopped by us in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class StartError(RuntimeError):
    """A process exited or did not become ready; the message says which and why."""


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path | None

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def tail(self, lines: int = 20) -> str:
        if self.log is None:
            return ""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal(self, signum: int) -> None:
        # The whole process group (its own, from start_new_session): a command such as
        # `sh -c ...` or `uv run bot.py` passes nothing on, yet the bot under it must stop too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def stop(self, timeout: float) -> int:
        if self.running:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@dataclass
class Children:
    """Everything tgbot-dev started; ``stop`` ends exactly those, the last started first."""

    children: list[Child] = field(default_factory=list)

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        output: IO[bytes] | None = None,
    ) -> Child:
        """Start ``argv`` with its stdout+stderr in ``log`` (or ``output``, e.g. our stderr)."""
        sink = log.open("ab") if log is not None else output
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(os.environ if env is None else env),
                # Own session: a Ctrl-C in the terminal reaches only tgbot-dev, which then stops
                # the children itself (the bot first, so it can drain).
                start_new_session=True,
            )
        except OSError as exc:
            raise StartError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from None
        finally:
            if log is not None and sink is not None and not isinstance(sink, int):
                sink.close()
        child = Child(name, process, log)
        self.children.append(child)
        return child

    async def stop(self, first: Child | None = None, timeout: float = 30.0) -> None:
        """Stop ``first`` (the bot: it drains while the sidecar still carries its answers), then the rest."""
        if first is not None and first in self.children:
            await first.stop(timeout)
        await asyncio.gather(*(child.stop(timeout) for child in self.children))
        self.children.clear()
