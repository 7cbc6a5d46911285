"""One size of the scale run, phase by phase: N TelegramBots created at once -> all Ready; a steady
window; a few tokens changed; the operator restarted. Each phase leaves its marks (wall-clock
times, CPU and RSS samples, the API server's counters); the emulator's call log, fetched once at
the end, is cut at those marks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_kit.types import parse_duration

from . import report, scale_apiserver, scale_botapi, tokenscan
from .procstat import cpu_seconds, peak_rss_bytes, rss_bytes
from .scale_watch import (
    ReadyWatch,
    checked_all,
    full_collections,
    kube_in_flight,
    quiet,
    secret_reads,
    status_writes,
)
from .stack import Stack, bot_manifest, is_ready, new_token, token_secret

FIRST_BOT_ID = 700_000_000

#: The profile every bot gets with --profile: five declared items.
PROFILE: dict[str, Any] = {
    "commands": [
        {
            "commands": [
                {"command": "start", "description": "Start the bot"},
                {"command": "help", "description": "Show help"},
            ]
        }
    ],
    "names": [{"name": "Scale"}],
    "descriptions": [{"description": "A bot of the scale benchmark"}],
    "shortDescriptions": [{"shortDescription": "Scale"}],
    "menuButton": {"type": "commands"},
}


@dataclass(frozen=True)
class Sample:
    """The operator process at one moment."""

    cpu_s: float
    rss: int
    peak: int

    @classmethod
    def of(cls, pid: int) -> Sample:
        return cls(cpu_seconds(pid), rss_bytes(pid), peak_rss_bytes(pid))


def net_of_ready_bots(
    window: Mapping[str, int], steady: Mapping[str, int], steady_windows: float
) -> dict[str, float]:
    """The registration window's requests without those of bots already Ready: ``steady_windows``
    is their bot-seconds in the window over the steady window's, which made ``steady``."""
    net = {k: v - steady.get(k, 0) * steady_windows for k, v in window.items()}
    return {k: round(max(0.0, v), 1) for k, v in net.items()}


def counter_growth(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}


class SizeRun:
    def __init__(self, s: Stack, client: EmulatorClient, n: int, args: argparse.Namespace, port: int) -> None:
        self.s, self.client, self.n, self.args, self.port = s, client, n, args, port
        self.ids = [FIRST_BOT_ID + n * 10_000 + i for i in range(n)]
        self.tokens: dict[int, str] = {}
        self.old_tokens: list[str] = []
        self.interval = parse_seconds(args.check_interval)
        self.token_interval = parse_seconds(args.token_check_interval)
        self.steady = args.steady if args.steady is not None else self.interval

    def _pid(self) -> int:
        assert self.s.operator is not None
        return self.s.operator.process.pid

    async def measure(self) -> dict[str, Any]:
        n, s = self.n, self.s
        await s.start_operator(
            "--metrics-listen", f"127.0.0.1:{self.port}", "--check-interval", self.args.check_interval,
            "--token-check-interval", self.args.token_check_interval, *self.args.operator_arg,
        )  # fmt: skip
        idle, requests_idle = Sample.of(self._pid()), await scale_apiserver.snapshot(s.kubectl)
        reads_idle, gc_idle = secret_reads(self.port), full_collections(self.port)
        first = await self.create_all()
        in_flight_then, quiet_from = kube_in_flight(self.port), time.time()
        await quiet(self.port, 5, 120)
        registered_at, registered = time.time(), Sample.of(self._pid())
        requests_registered = await scale_apiserver.snapshot(s.kubectl)
        writes_registered, reads_registered = status_writes(self.port), secret_reads(self.port)
        gc_registered = full_collections(self.port)
        progress(f"{n} bots: {len(first['watch'].ready)} Ready; steady window of {self.steady:g}s")
        await asyncio.sleep(self.steady)
        steady_end, steady = time.time(), Sample.of(self._pid())
        requests_steady = await scale_apiserver.snapshot(s.kubectl)
        writes_steady, gc_steady = status_writes(self.port), full_collections(self.port)
        pickups = await self.change_tokens()
        await quiet(self.port, 5, 120)
        progress(f"{n} bots: restarting the operator")
        restart = await self.restart()
        bots = await s.bots()
        await first["watch"].stop()
        events = await s.events_json()
        requests_end = await scale_apiserver.snapshot(s.kubectl)
        logs = await scale_botapi.fetch(self.client, self.ids)
        secret_tokens = await self.registered_secret_tokens()
        scan = tokenscan.scan(
            {**s.logs(), "events": events, "TelegramBots": json.dumps(bots)},
            [*self.tokens.values(), *self.old_tokens, *secret_tokens],
        )
        registration = (requests_registered - requests_idle).without("POST", "secrets", n)
        registration = registration.without("POST", "telegrambots", n)  # the benchmark's own creates
        in_steady = requests_steady - requests_registered
        per_interval = self.interval / self.steady
        steady_logs = scale_botapi.between(logs, registered_at, steady_end)
        steady_requests = scale_apiserver.per_bot(in_steady.by_name(watches=False), n, per_interval)
        latencies = first["watch"].latencies()
        # Bots Ready early are checked while later ones register: their checks are steady-state
        # work, not registration (at 3,000 bots the window is minutes long; counted in, they made
        # registration look 2x dearer per bot than at 1,000).
        ready_at = first["watch"].ready_wall()
        own_calls = {bot: [c for c in calls if c.at <= ready_at.get(f"b{bot}", registered_at)]
                     for bot, calls in scale_botapi.between(logs, 0, registered_at).items()}  # fmt: skip
        ready_bot_seconds = sum(max(0.0, registered_at - t) for t in ready_at.values())
        own_requests = net_of_ready_bots(
            registration.by_name(watches=False), in_steady.by_name(watches=False),
            ready_bot_seconds / (self.steady * n),
        )  # fmt: skip
        return {
            "bots": n,
            "profile": bool(self.args.profile),
            "operator_source": str(self.args.operator_source or "installed"),
            "operator_args": list(self.args.operator_arg),
            "check_interval_s": self.interval,
            "token_check_interval_s": self.token_interval,
            "steady_seconds": self.steady,
            "apply_seconds": first["applied"],
            "all_ready_seconds": first["all_ready"],
            "all_ready_after_last_create_s": (
                first["all_ready"] - first["applied"] if first["all_ready"] is not None else None
            ),
            "ready": len(first["watch"].ready),
            # The operator's Kubernetes calls in flight when the last bot was Ready, and how long
            # until they (and setters) were quiet: the steady window starts after.
            "kube_in_flight_at_all_ready": in_flight_then,
            "quiet_wait_s": round(registered_at - quiet_from, 1),
            "ready_watch_restarts": first["watch"].restarts,  # >0: some Ready times are late
            "apply_to_ready_s": {
                "p50": report.percentile(latencies, 0.5),
                "p99": report.percentile(latencies, 0.99),
                "max": latencies[-1] if latencies else None,
            },
            "operator_rss_mb": {
                "idle": idle.rss / 2**20,
                "ready": registered.rss / 2**20,
                "end": steady.rss / 2**20,
                "peak": steady.peak / 2**20,
            },
            "per_bot": {
                "rss_kb": round((steady.peak - idle.rss) / 1024 / n, 1),
                "cpu_ms_registration": round((registered.cpu_s - idle.cpu_s) * 1000 / n, 2),
                "api_requests_registration": round(sum(own_requests.values()) / n, 2),
                "api_requests_registration_window": round(registration.beyond_watches() / n, 2),
                "cpu_ms_steady_per_interval": round(
                    (steady.cpu_s - registered.cpu_s) * 1000 * per_interval / n, 3
                ),
                "api_requests_steady_per_interval": round(sum(steady_requests.values()), 3),
            },
            "calls_per_bot_registration": scale_botapi.per_bot(scale_botapi.methods(own_calls), n),
            "calls_per_bot_registration_window": scale_botapi.per_bot(
                scale_botapi.methods(scale_botapi.between(logs, 0, registered_at)), n
            ),
            "apiserver_registration_per_bot": {k: round(v / n, 3) for k, v in own_requests.items()},
            # How the workers' Secret reads were answered until the steady window: "cache", or the
            # reason for a GET (the ready bots' token checks are in here too: all "cache").
            "secret_reads_per_bot_registration": scale_botapi.per_bot(
                counter_growth(reads_idle, reads_registered), n
            ),
            "apiserver_registration_window_per_bot": scale_apiserver.per_bot(
                registration.by_name(watches=False), n
            ),
            "steady": {
                "apiserver_requests_per_bot_per_interval": steady_requests,
                # What the status PATCHes changed ("webhook": a check's lastCheckTime), per bot.
                "status_writes_per_bot_per_interval": scale_botapi.per_bot(
                    counter_growth(writes_registered, writes_steady), n, per_interval
                ),
                "watch_requests_per_interval": scale_apiserver.per_bot(
                    in_steady.by_name(watches=True), 1, per_interval
                ),
                "calls_per_bot_per_interval": scale_botapi.per_bot(
                    scale_botapi.methods(steady_logs), n, per_interval
                ),
                "checks": scale_botapi.spread(scale_botapi.check_times(steady_logs), n, self.interval),
            },
            # The operator's full garbage collections (gc_freeze): count, seconds, those > 0.25 s.
            "gc_full": {
                "registration": counter_growth(gc_idle, gc_registered),
                "steady": counter_growth(gc_registered, gc_steady),
                "restart": restart.pop("gc_full"),
            },
            "apiserver_errors": (requests_end - requests_idle).errors(),
            "token_pickup_s": pickups,
            "restart": {**restart, **scale_botapi.restart_cost(logs, restart["stopped_at"], self.interval)},
            "calls_per_bot_restart": scale_botapi.per_bot(
                scale_botapi.methods(scale_botapi.between(logs, restart["stopped_at"])), n
            ),
            "ready_after_restart": sum(1 for b in bots if is_ready(b)),
            "token_scan_leaks": len(scan["leaks"]),
            "token_scan": scan,
        }

    async def create_all(self) -> dict[str, Any]:
        """Emulator bots, then every (Secret, TelegramBot) pair "at once": several kubectl
        processes, each creating a slice; until all are Ready (or --timeout)."""
        limit = asyncio.Semaphore(16)

        async def add(bot_id: int) -> None:
            async with limit:
                await self.client.add_bot(self.tokens[bot_id], f"scale_{bot_id}_bot")

        self.tokens = {bot_id: new_token(bot_id) for bot_id in self.ids}
        await asyncio.gather(*(add(i) for i in self.ids))
        docs: list[dict[str, Any]] = []
        for bot_id in self.ids:
            docs.append(token_secret(f"t{bot_id}", self.tokens[bot_id]))
            url = f"http://127.0.0.1:{20000 + bot_id % 40000}/webhook/{bot_id}"
            bot = bot_manifest(f"b{bot_id}", self.s.emulator_url, f"t{bot_id}", url)
            if self.args.profile:
                bot["spec"]["profile"] = PROFILE
            docs.append(bot)
        watch = ReadyWatch(self.s)
        await watch.start()
        chunk = 2 * self.args.apply_chunk
        slices = [docs[i : i + chunk] for i in range(0, len(docs), chunk)]
        parallel = asyncio.Semaphore(self.args.apply_parallel)

        async def create(part: list[dict[str, Any]]) -> None:
            async with parallel:
                await self.s.apply(*part, verb="create")

        t0 = time.monotonic()
        await asyncio.gather(*(create(part) for part in slices))
        applied = time.monotonic() - t0
        while len(watch.ready) < self.n and time.monotonic() < t0 + self.args.timeout:
            watch.check()
            await asyncio.sleep(0.5)
        all_ready = time.monotonic() - t0 if len(watch.ready) >= self.n else None
        return {"watch": watch, "applied": applied, "all_ready": all_ready}

    async def change_tokens(self) -> list[float | None]:
        """A few bots get a new token (the old one revoked at the emulator first, as BotFather
        does): seconds from the Secret's update until the operator's first successful call with
        the new token; None if it never came."""
        count = min(self.args.token_changes, self.n)
        chosen = [self.ids[i * self.n // count] for i in range(count)] if count else []
        changed_at: dict[int, float] = {}
        for bot_id in chosen:
            self.old_tokens.append(self.tokens[bot_id])
            self.tokens[bot_id] = new_token(bot_id)
            await self.client.replace_token(bot_id, self.tokens[bot_id])
            changed_at[bot_id] = time.time()
            await self.s.apply(token_secret(f"t{bot_id}", self.tokens[bot_id]))
        pickups: dict[int, float] = {}
        deadline = time.monotonic() + 2 * self.token_interval + 60
        while len(pickups) < len(chosen) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            pending = [bot_id for bot_id in chosen if bot_id not in pickups]
            for bot_id, calls in (await scale_botapi.fetch(self.client, pending)).items():
                seen = scale_botapi.first_success_after(calls, changed_at[bot_id])
                if seen is not None:
                    pickups[bot_id] = round(seen - changed_at[bot_id], 1)
        return [pickups.get(bot_id) for bot_id in chosen]

    async def restart(self) -> dict[str, Any]:
        """SIGTERM, start again; until the new process has checked every bot (at once or spread
        over the check interval) and then been left alone for --restart-quiet seconds."""
        stopped_at = time.time()
        await self.s.stop_operator()
        await self.s.start_operator()
        started = time.time()
        timeout = self.interval * 1.1 + self.args.restart_quiet + 30
        complete = await checked_all(self.port, self.n, self.args.restart_quiet, timeout)
        return {
            "stopped_at": stopped_at,
            "start_s": round(started - stopped_at, 1),
            "window_s": round(time.time() - stopped_at, 1),
            "checked_all_in_time": complete,
            "cpu_ms_per_bot": round(Sample.of(self._pid()).cpu_s * 1000 / self.n, 2),
            "gc_full": full_collections(self.port),  # the new process's, from its start
        }

    async def registered_secret_tokens(self) -> list[str]:
        """The secret token each bot's webhook has at the emulator (revealed: it is the test's own)."""
        limit = asyncio.Semaphore(16)

        async def one(bot_id: int) -> str:
            async with limit:
                webhook = await self.client.webhook(bot_id, reveal_secrets=True)
            return str(webhook.get("secret_token") or "")

        return [token for token in await asyncio.gather(*(one(i) for i in self.ids)) if token]


def parse_seconds(text: str) -> float:
    """A duration as the operator's flags take it ("30s", "5m", "1h30m", "30"): the kit's parser."""
    return parse_duration(text).total_seconds()


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
