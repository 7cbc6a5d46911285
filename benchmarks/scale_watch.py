"""Watching a run from outside the operator: when each TelegramBot was first seen and first Ready
(``kubectl get -w``), and the operator's own Telegram call counter (its /metrics) to tell when it
has gone quiet."""

from __future__ import annotations

import asyncio
import codecs
import collections
import json
import sys
import time
import urllib.request
from typing import Any

from tgbot_operator.redaction import redact

from .stack import Stack


class ReadyWatch:
    """``kubectl get tgbot -w``: when each bot was first seen and first Ready (monotonic clock)."""

    def __init__(self, s: Stack) -> None:
        self.stack = s
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._spawn()
        self.task = asyncio.create_task(self._follow())

    async def _spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "kubectl", "get", "tgbot", "-n", self.stack.namespace, "-w", "--output-watch-events",
            "-o", "json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.stack.env, limit=16 << 20,
        )  # fmt: skip

    async def _follow(self) -> None:
        """Read kubectl's events; when it exits (the API server ended the watch, a stale discovery
        cache right after the CRD appeared...) say why and watch again: its first events list
        every bot anew, so a bot that turned Ready meanwhile is counted late, never lost."""
        while True:
            await self._read()
            assert self.process is not None
            assert self.process.stderr is not None
            why = (await self.process.stderr.read()).decode(errors="replace").strip()
            code = await self.process.wait()
            self.restarts += 1
            print(
                f"kubectl get -w exited ({code}): {redact(why[-300:])}; watching again",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(1.0)
            await self._spawn()

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        decoder = json.JSONDecoder()
        # Incremental: a 64 KiB chunk can end inside a multi-byte character (the status messages
        # have some), and chunk.decode() then raised in this task - the watch went silent and a
        # 10,000-bot run waited for Ready bots it had stopped reading.
        text = codecs.getincrementaldecoder("utf-8")()
        buffer = ""
        while chunk := await self.process.stdout.read(1 << 16):
            buffer += text.decode(chunk)
            while True:
                buffer = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        obj = event.get("object") or {}
        # kubectl (1.37) prints its initial list as "ADDED" events of whole TelegramBotList pages
        # of 500: read as single objects, every bot Ready before a restart of the watch was lost.
        for item in obj.get("items") or [obj]:
            self._object(item)

    def _object(self, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        self.added.setdefault(name, now)
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == "True":
                self.ready.setdefault(name, now)

    def check(self) -> None:
        """Raise what ended the watch's task, if anything did (it would otherwise go silent)."""
        if self.task is not None and self.task.done() and not self.task.cancelled():
            self.task.result()

    def latencies(self) -> list[float]:
        """Per bot, first seen -> first Ready, sorted."""
        return sorted(self.ready[k] - self.added[k] for k in self.ready if k in self.added)

    def ready_wall(self) -> dict[str, float]:
        """When each bot was first seen Ready, on the wall clock (the emulator's call times)."""
        offset = time.time() - time.monotonic()
        return {name: at + offset for name, at in self.ready.items()}

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def operator_metrics(port: int, attempts: int = 3) -> str:
    """The operator's /metrics text. Its server is a thread of a busy process: at 10,000 bots a
    scrape once took more than 5 s (and ended a 40-minute run), so it gets 30 s, three times."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
                return str(answer.read().decode())
        except (TimeoutError, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def operator_counter(port: int, name: str, label: str, **only: str) -> dict[str, float]:
    """One counter of the operator's /metrics, summed by one of its labels (``only``: the samples
    with these label values)."""
    text = operator_metrics(port)
    found: dict[str, float] = collections.defaultdict(float)
    wanted = [f'{k}="{v}"' for k, v in only.items()]
    for line in text.splitlines():
        if line.startswith(f"{name}_total{{") and f'{label}="' in line and all(w in line for w in wanted):
            labels, _, value = line.rpartition(" ")
            found[labels.split(f'{label}="', 1)[1].split('"', 1)[0]] += float(value)
    return dict(found)


def operator_gauge(port: int, name: str) -> float:
    """One unlabelled gauge of the operator's /metrics (0 when it is not there)."""
    text = operator_metrics(port)
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rpartition(" ")[2])
    return 0.0


def full_collections(port: int) -> dict[str, float]:
    """The operator's full (generation 2) garbage collections so far: how many, their seconds in
    all, and how many stopped it longer than 0.25 s (tgbot_operator_gc_pause_seconds)."""
    text = operator_metrics(port)
    name, label = "tgbot_operator_gc_pause_seconds", 'generation="2"'
    found = {"count": 0.0, "seconds": 0.0, "over_250ms": 0.0}
    within = 0.0
    for line in text.splitlines():
        if label not in line:
            continue
        head, _, value = line.rpartition(" ")
        if head.startswith(f"{name}_count"):
            found["count"] = float(value)
        elif head.startswith(f"{name}_sum"):
            found["seconds"] = float(value)
        elif head.startswith(f"{name}_bucket") and 'le="0.25"' in head:
            within = float(value)
    found["over_250ms"] = found["count"] - within
    return found


def kube_in_flight(port: int) -> float:
    return operator_gauge(port, "tgbot_operator_kube_requests_in_flight")


def operator_calls(port: int) -> dict[str, float]:
    """tgbot_operator_telegram_calls_total by method."""
    return operator_counter(port, "tgbot_operator_telegram_calls", "method")


def status_writes(port: int) -> dict[str, float]:
    """tgbot_operator_status_writes_total by the fields written (what made a PATCH); the writes
    that failed (a timeout, a 5xx: retried later) apart, as "<fields> failed"."""
    ok = operator_counter(port, "tgbot_operator_status_writes", "fields", outcome="ok")
    failed = operator_counter(port, "tgbot_operator_status_writes", "fields", outcome="failed")
    return {**ok, **{f"{k} failed": v for k, v in failed.items()}}


def secret_reads(port: int) -> dict[str, float]:
    """tgbot_operator_secret_reads_total by how they were answered (cache, or why a GET)."""
    return operator_counter(port, "tgbot_operator_secret_reads", "how")


#: Kubernetes calls in flight that still count as quiet: a steady state's checks write their
#: status a few at a time; hundreds are a queue of writes behind a busy API server.
QUIET_IN_FLIGHT = 8


async def quiet(port: int, seconds: float, timeout: float) -> None:
    """Until the operator made no call that changes something at Telegram (set*, delete*) and no
    getMe for ``seconds``, and its Kubernetes calls in flight stayed at most QUIET_IN_FLIGHT, or
    ``timeout``: registration (and a token change) is over, status writes included. Checks and
    read-backs (get*) go on at their own pace - with a short check interval or many bots there is
    never a quiet second - and the look after a setter comes in the same pass. Status writes that
    still queue behind a busy API server belong to the registration, not to the steady window."""

    def calls() -> dict[str, float]:
        return {
            m: n for m, n in operator_calls(port).items() if m.startswith(("set", "delete")) or m == "getMe"
        }

    last, since, deadline = calls(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = calls()
        if now != last or kube_in_flight(port) > QUIET_IN_FLIGHT:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            break


async def checked_all(port: int, bots: int, settle: float, timeout: float) -> bool:
    """Until the operator (a fresh process: its counter starts at 0) has made ``bots``
    getWebhookInfo calls, then ``settle`` seconds more (for what follows a check); False on
    ``timeout``. Every bot checks once after a restart, at once or spread over the interval."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if operator_calls(port).get("getWebhookInfo", 0) >= bots:
            await asyncio.sleep(min(settle, max(0.0, deadline - time.monotonic())))
            return True
        await asyncio.sleep(1.0)
    return False
