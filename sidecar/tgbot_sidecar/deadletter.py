"""The dead-letter sink: updates the sidecar gave up on, as JSON lines appended to a file.

Each line: ``{"time", "update_id", "attempts", "reason", "update"}`` - the update as Telegram
sent it (re-serialised, so a pretty-printed body still is one line). The secret token is a
header and never part of it. Writes happen in one worker thread (the event loop never blocks
on the disk, and lines from concurrent give-ups never interleave); the gateway answers 200
only after the line is on disk, so a failed write makes Telegram retry instead of losing the
update. Without a path only the ERROR log line and the metric remain.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


def dead_letter_line(update_id: int, body: bytes, attempts: int, reason: str) -> bytes:
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "update_id": update_id,
        "attempts": attempts,
        "reason": reason,
        "update": orjson.loads(body),
    }
    return orjson.dumps(record) + b"\n"


def _append(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)  # one write of one line with O_APPEND: never interleaved
    finally:
        os.close(fd)


class DeadLetterSink:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tgbot-dead-letters") if path else None
        )

    def write(self, line: bytes, done: Callable[[bool], None]) -> None:
        """Append ``line``; ``done(written)`` runs on the event loop afterwards."""
        if self.path is None or self._executor is None:
            done(True)
            return
        loop = asyncio.get_running_loop()
        path = self.path

        def finished(future: Future[None]) -> None:
            error = future.exception()
            if error is not None:
                log.error("cannot write the dead-letter file", extra={"path": str(path), "error": str(error)})
            loop.call_soon_threadsafe(done, error is None)

        self._executor.submit(_append, path, line).add_done_callback(finished)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
