"""What the operator asked of Telegram, from the emulator's call log (every call of every bot, with
its wall-clock time and answer): calls per bot in a window, how checks spread over seconds, and
the cost of an operator restart. Pure functions over the log, plus the one fetch."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tgbot_emulator import EmulatorClient

CHECK = "getWebhookInfo"
#: Calls that change something at Telegram (setWebhook, setMyCommands, ..., deleteWebhook).
CHANGING_PREFIXES = ("set", "delete")


@dataclass(frozen=True)
class Call:
    method: str
    at: float  # time.time() at the emulator (same machine, same clock as ours)
    status: int | None  # None: the connection was dropped
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Call:
        """One record of the emulator's control API (``/bots/<id>/calls``)."""
        return cls(str(raw["method"]), float(raw["at"]), raw.get("status"), str(raw.get("description") or ""))


Logs = Mapping[int, Sequence[Call]]


async def fetch(client: EmulatorClient, ids: Iterable[int], parallel: int = 16) -> dict[int, list[Call]]:
    """Every call the emulator recorded for these bots, oldest first."""
    limit = asyncio.Semaphore(parallel)

    async def one(bot_id: int) -> tuple[int, list[Call]]:
        async with limit:
            raw = await client.calls(bot_id)
        return bot_id, sorted((Call.of(c) for c in raw), key=lambda c: c.at)

    return dict(await asyncio.gather(*(one(i) for i in ids)))


def between(logs: Logs, start: float, end: float = math.inf) -> dict[int, list[Call]]:
    return {bot: [c for c in calls if start <= c.at < end] for bot, calls in logs.items()}


def methods(logs: Logs) -> collections.Counter[str]:
    return collections.Counter(c.method for calls in logs.values() for c in calls)


def per_bot(counter: Mapping[str, float], bots: int, scale: float = 1.0) -> dict[str, float]:
    return {k: round(v * scale / bots, 3) for k, v in sorted(counter.items())}


def burst_bound(bots: int, interval: float) -> int:
    """The most calls in one second that still count as spread: the even rate (rounded up) plus
    four standard deviations of a uniformly random spread (per-second counts are then Poisson) plus
    3 - random spreads stay below it at any size, N checks in a few seconds are far above."""
    even = math.ceil(bots / interval)
    return even + math.ceil(4 * math.sqrt(even)) + 3


def spread(times: Sequence[float], bots: int, interval: float) -> dict[str, Any]:
    """How ``times`` (calls, e.g. checks) fall into seconds, against N/interval for an even spread."""
    per_second = collections.Counter(math.floor(t) for t in times)
    return {
        "calls": len(times),
        "max_per_second": max(per_second.values(), default=0),
        "even_per_second": round(bots / interval, 3),
        "bound_per_second": burst_bound(bots, interval),
        "busy_seconds": len(per_second),
        "first_to_last_s": round(max(times) - min(times), 1) if times else 0.0,
        # Calls per second, in ten equal slices of the time they took: where the burst is.
        "deciles": _deciles(times),
    }


def _deciles(times: Sequence[float]) -> list[int]:
    if not times:
        return []
    low, high = min(times), max(times)
    width = (high - low) / 10 or 1.0
    counts = [0] * 10
    for t in times:
        counts[min(9, int((t - low) / width))] += 1
    return counts


def first_success_after(calls: Sequence[Call], at: float) -> float | None:
    """When the first call answered 200 came after ``at`` (with a revoked old token, proof that
    the new one is in use)."""
    return next((c.at for c in calls if c.at >= at and c.ok), None)


def restart_cost(logs: Logs, stopped_at: float, interval: float) -> dict[str, Any]:
    """What an operator restart costs, from the calls after ``stopped_at``.

    A bot's checks count until half a check interval after its first one after the restart: its
    next periodic check is not due before 0.9 intervals, so anything sooner is restart cost.
    Changing calls (set*, delete*) and getMe count over the whole window."""
    after = between(logs, stopped_at)
    checks_per_bot: list[int] = []
    first_checks: list[float] = []
    for calls in after.values():
        checks = [c.at for c in calls if c.method == CHECK]
        if not checks:
            checks_per_bot.append(0)
            continue
        first_checks.append(checks[0])
        checks_per_bot.append(sum(1 for t in checks if t < checks[0] + interval / 2))
    bots = len(logs)
    other = methods(after)
    return {
        "checks_per_bot_max": max(checks_per_bot, default=0),
        "checks_per_bot_mean": round(sum(checks_per_bot) / bots, 3) if bots else 0.0,
        "bots_checked": len(first_checks),
        "changing_calls": {m: n for m, n in sorted(other.items()) if m.startswith(CHANGING_PREFIXES)},
        "calls_per_bot": per_bot(other, bots) if bots else {},
        "spread": spread(first_checks, bots, interval),
        "first_check_after_s": round(min(first_checks) - stopped_at, 1) if first_checks else None,
        "last_check_after_s": round(max(first_checks) - stopped_at, 1) if first_checks else None,
    }


def check_times(logs: Logs) -> list[float]:
    return [c.at for calls in logs.values() for c in calls if c.method == CHECK]
