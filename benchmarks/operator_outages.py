"""Outages for the fault run, and how fast the operator converges after each (issue 15's targets):

- the API server stopped and started again (same arguments, port and certificates) right after a
  batch of TelegramBots was created: from its return until every bot is Ready (target <= 30 s);
- the Bot API answering 502 to every call for a while (no ``retry_after``): from its return until
  every bot is Ready again; target: Ready at the first retry after the return, i.e. within one
  backoff step (the step a bot was waiting out is read from the emulator's call log);
- a flood wait: 429 to every call with ``retry_after`` counting down to the end: no call before
  ``retry_after`` ran out, every bot Ready again within a few seconds of the end.

Times are wall-clock (``time.time()``) so they compare with the emulator's call log.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_localdev.controlplane import ControlPlane

from . import scale_botapi
from .scale_botapi import Call, Logs
from .stack import Stack, is_ready, until

APISERVER_TARGET_S = 30.0
#: After the first retry succeeded, the status write and our poll: this much more is still "at once".
READY_SLACK_S = 5.0
_RETRY_AFTER = re.compile(r"retry after (\d+)")


async def restart_apiserver(s: Stack, plane: ControlPlane, down_for: float = 2.0) -> float:
    """Stop kube-apiserver, wait ``down_for``, start it with the same arguments. Returns when it
    is back (wall clock): when a read like the operator's first succeeds - earlier than /readyz,
    which waits for every post-start hook while requests are already served."""
    old = next(p for p in plane._processes if p.name == "kube-apiserver")
    argv = [str(a) for a in old.popen.args][1:]  # type: ignore[union-attr]
    await asyncio.to_thread(old.stop)
    plane._processes.remove(old)
    await asyncio.sleep(down_for)  # the operator's watches break and retry meanwhile
    plane._spawn("kube-apiserver", argv)

    async def serving() -> bool:
        # The run's namespace has TelegramBots: an empty answer is an error (kubectl's stdout only).
        # A starting API server may hold a request: kubectl gives up on its own after 3 s.
        read = ("get", "tgbot", "-n", s.namespace, "-o", "name", "--request-timeout=3s")
        try:
            return bool(await s.kubectl(*read, check=False, timeout=10))
        except TimeoutError:
            return False

    await until("kube-apiserver back", serving, bool, timeout=120, period=0.2)
    return time.time()


class ReadyPoll:
    """``kubectl get tgbot`` every half second: which bots were seen not Ready, and when all were
    Ready again."""

    def __init__(self, s: Stack) -> None:
        self.s = s
        self.seen_not_ready: set[str] = set()

    async def all_ready(self, timeout: float) -> float | None:
        """Until every bot is Ready (wall clock then), or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.poll():
                return time.time()
            await asyncio.sleep(0.5)
        return None

    async def poll(self) -> bool:
        bots = await self.s.bots()
        self.seen_not_ready.update(b["metadata"]["name"] for b in bots if not is_ready(b))
        return all(is_ready(b) for b in bots)

    async def watch_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.poll()
            await asyncio.sleep(0.5)


async def apiserver_outage(
    s: Stack,
    plane: ControlPlane,
    client: EmulatorClient,
    ids: Sequence[int],
    batch: Sequence[dict[str, Any]],
    down_for: float,
    timeout: float = 300,
) -> dict[str, Any]:
    """Create ``batch`` (Secrets and TelegramBots of some of ``ids``), stop the API server at once,
    bring it back. Reconciled: every bot Ready and, since the return, a successful Bot API call of
    its own - a bot that was Ready all along must still be worked (its periodic check), not left in
    a backoff the outage caused."""
    await s.apply(*batch, verb="create")
    pending = sum(1 for b in await s.bots() if not is_ready(b))
    returned = await restart_apiserver(s, plane, down_for)
    converged = await ReadyPoll(s).all_ready(timeout)
    worked: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(worked) < len(ids) and time.monotonic() < deadline:
        waiting = [i for i in ids if i not in worked]
        for bot_id, calls in (await scale_botapi.fetch(client, waiting)).items():
            if (at := scale_botapi.first_success_after(calls, returned)) is not None:
                worked[bot_id] = at
        await asyncio.sleep(1.0)
    checked = max(worked.values()) if len(worked) == len(ids) else None
    done = None if converged is None or checked is None else max(converged, checked)
    return {
        "down_s": down_for,
        "bots_created": sum(1 for d in batch if d["kind"] == "TelegramBot"),
        "bots_not_ready_at_outage": pending,
        "all_ready_s_after_return": None if converged is None else round(converged - returned, 1),
        "all_worked_s_after_return": None if checked is None else round(checked - returned, 1),
        "reconciled_s_after_return": None if done is None else round(done - returned, 1),
    }


async def botapi_outage(
    s: Stack, client: EmulatorClient, ids: Sequence[int], kind: str, seconds: float, timeout: float = 300
) -> dict[str, Any]:
    """Every Bot API call fails for ``seconds``: ``502`` (then the fault is removed) or ``429`` (a
    flood wait, retry_after counting down from the first call that meets it)."""
    poll = ReadyPoll(s)
    down_at = time.time()
    if kind == "502":
        await client.add_fault("502", count=10**9)
        await poll.watch_for(seconds)
        await client.clear_faults()
        returned: float | None = time.time()
    else:
        await client.add_fault("429", for_seconds=seconds)
        await poll.watch_for(seconds)
        returned = None  # from the call log: the first call that met the flood wait, + seconds
    converged = await poll.all_ready(timeout)
    logs = scale_botapi.between(await scale_botapi.fetch(client, ids), down_at)
    if returned is None:
        met = [c.at for calls in logs.values() for c in calls if c.status == 429]
        returned = (min(met) if met else down_at) + seconds
    return {
        "kind": kind,
        "down_s": seconds,
        "bots": len(ids),
        "bots_not_ready_during": len(poll.seen_not_ready),
        "all_ready_s_after_return": None if converged is None else round(converged - returned, 1),
        **convergence(logs, returned),
    }


def convergence(logs: Logs, returned: float) -> dict[str, Any]:
    """From each bot's calls during and after an outage: the backoff step it was waiting out at
    the return (its first call after it minus its last failed call before), calls that failed
    after the return, calls made before a 429's retry_after ran out."""
    steps: list[float] = []
    first_retries: list[float] = []
    failed_during = failed_after = early = 0
    for calls in logs.values():
        during = [c for c in calls if c.at < returned and not c.ok]
        after = [c for c in calls if c.at >= returned]
        failed_during += len(during)
        failed_after += sum(1 for c in after if not c.ok)
        early += _before_retry_after(calls)
        if during and after:
            steps.append(after[0].at - during[-1].at)
            first_retries.append(after[0].at - returned)
    return {
        "bots_hit": sum(1 for calls in logs.values() if any(not c.ok for c in calls)),
        "failed_calls_during": failed_during,
        "failed_calls_after_return": failed_after,
        "calls_before_retry_after": early,
        "longest_step_pending_s": round(max(steps), 1) if steps else None,
        "slowest_first_retry_s": round(max(first_retries), 1) if first_retries else None,
    }


def _before_retry_after(calls: Sequence[Call]) -> int:
    """Calls of a method that came sooner than its previous answer's retry_after allowed (the
    operator waits per method; 1 s of slack: the emulator rounds the remaining wait up)."""
    early = 0
    last: dict[str, Call] = {}
    for call in calls:
        previous = last.get(call.method)
        last[call.method] = call
        if previous is None or previous.status != 429:
            continue
        match = _RETRY_AFTER.search(previous.description)
        if match and call.at < previous.at + int(match.group(1)) - 1.0:
            early += 1
    return early


def meets(outage: dict[str, Any]) -> bool:
    """The target of one Bot API outage: 502 -> Ready within one backoff step of the return (at
    its first retry); 429 -> nothing before retry_after, Ready within a few seconds of the end."""
    took = outage["all_ready_s_after_return"]
    if took is None or outage["failed_calls_after_return"] or outage["bots_hit"] < outage["bots"]:
        return False  # not every bot met the outage: nothing shows how it recovers
    if outage["kind"] == "429":
        return bool(outage["calls_before_retry_after"] == 0 and took <= READY_SLACK_S)
    return bool(took <= (outage["longest_step_pending_s"] or 0.0) + READY_SLACK_S)


_FAILURE_FIGURES = ("failed_calls_during", "failed_calls_after_return", "calls_before_retry_after")


def _at_most(limit: float, took: float | None) -> bool:
    return took is not None and took <= limit


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def rows(outages: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, target, value and verdict) for each outage that ran."""
    rows = []
    if api := outages.get("apiserver"):
        took = api["reconciled_s_after_return"]
        rows.append((
            f"API server down {api['down_s']:g}s ({api['bots_not_ready_at_outage']} of {api['bots_created']}"
            " new bots not Ready yet): all reconciled, s after its return",
            f"<= {APISERVER_TARGET_S:g}",
            f"{'never' if took is None else took} {verdict(_at_most(APISERVER_TARGET_S, took))}",
        ))  # fmt: skip
        rows.append((
            "  all Ready / every bot's Bot API call since the return, s", "-",
            f"{api['all_ready_s_after_return']} / {api['all_worked_s_after_return']}",
        ))  # fmt: skip
    for kind, target in (("502", "one backoff step (+5)"), ("429", "retry_after (+5), 0 early")):
        if o := outages.get(f"botapi_{kind}"):
            took = o["all_ready_s_after_return"]
            rows.append((
                f"Bot API {kind} for {o['down_s']:g}s (met by {o['bots_hit']} of {o['bots']} bots,"
                f" {o['bots_not_ready_during']} seen not Ready): all Ready again, s after its return",
                target,
                f"{'never' if took is None else took} {verdict(meets(o))}",
            ))  # fmt: skip
            rows.append((
                f"  {kind}: backoff step pending at the return (longest), slowest first retry, s",
                "-", f"{o['longest_step_pending_s']}, {o['slowest_first_retry_s']}",
            ))  # fmt: skip
            rows.append((
                f"  {kind}: failed calls during / after the return, calls before retry_after",
                "- / 0 / 0",
                " / ".join(str(o[k]) for k in _FAILURE_FIGURES),
            ))  # fmt: skip
    return rows
