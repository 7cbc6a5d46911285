"""Operator faults: the operator SIGKILLed mid-registration, the emulator answering 429, 5xx and
dropped connections in bursts; then outages (``operator_outages``): the API server stopped and
started right after a batch of creates, the Bot API down (502), a flood wait (429 with
retry_after) - with the time each takes to converge beside issue 15's targets. Then every
TelegramBot must be Ready with the right webhook, registered no more often than the retries
need, and deleted bots must leave no webhook behind. Ends with the token scan over logs, Events
and status.

Every successful setWebhook after a bot's first is classified: ``after_kill`` when the previous
one succeeded before the SIGKILL and this one after it (the kill may have beaten the write of
``status.registration``: a retry the design allows), ``duplicate`` otherwise (no fault of the run
explains it; the emulator's faults, drops included, fail a call before executing it).

    .venv/bin/python -m benchmarks.operator_faults [--bots 50]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_localdev.controlplane import ControlPlane, find_assets
from tgbot_localdev.processes import ProcessGroup

from . import operator_outages, report, tokenscan
from .operator_outages import verdict
from .processes import stopped_by_sigterm
from .stack import (
    FAST_OPERATOR,
    Stack,
    bot_manifest,
    env_from_os,
    is_ready,
    new_token,
    token_secret,
    until,
    with_operator_source,
)

FIRST_BOT_ID = 800_000_000
DAEMON_FAILED = "Daemon 'worker' failed"  # kopf restarts the worker, a minute later, memory lost


def classify_extra(successes: list[float], killed_at: float | None) -> list[str]:
    """The cause of each successful setWebhook after the first (``successes``: their times)."""
    causes = []
    ordered = sorted(successes)
    for previous, at in itertools.pairwise(ordered):
        kill_between = killed_at is not None and previous < killed_at < at
        causes.append("after_kill" if kill_between else "duplicate")
    return causes


@contextlib.asynccontextmanager
async def plane_or_env(
    env: dict[str, str] | None, workdir: Path
) -> AsyncIterator[tuple[dict[str, str], ControlPlane | None]]:
    if env is not None:
        yield env, None
        return
    plane = ControlPlane(
        assets=await asyncio.to_thread(find_assets, sys.stderr), workdir=workdir / "controlplane"
    )
    await asyncio.to_thread(plane.start)
    try:
        yield plane.env(), plane
    finally:
        await asyncio.to_thread(plane.stop)


def _pairs(s: Stack, ids: list[int], tokens: dict[int, str], urls: dict[int, str]) -> list[dict[str, Any]]:
    docs = []
    for i in ids:
        tokens[i] = new_token(i)
        urls[i] = f"http://127.0.0.1:{20000 + i % 40000}/webhook/{i}"
        docs += [token_secret(f"t{i}", tokens[i]), bot_manifest(f"b{i}", s.emulator_url, f"t{i}", urls[i])]
    return docs


async def run(
    env: dict[str, str] | None,
    workdir: Path,
    bots: int = 50,
    restart_api: bool = True,
    apiserver_outage_s: float = 15.0,
    botapi_outage_s: float = 20.0,
    operator_source: Path | None = None,
) -> dict[str, Any]:
    started = time.time()
    async with plane_or_env(env, workdir) as (plane_env, plane):
        kenv = with_operator_source(plane_env, operator_source)
        group = ProcessGroup(workdir / "logs")
        s = Stack(kenv, workdir, f"faults-{secrets.token_hex(2)}", group)
        await s.setup()
        tokens: dict[int, str] = {}
        urls: dict[int, str] = {}
        secret_tokens: list[str] = []  # the webhooks' secret tokens, scanned for like the bot tokens
        timeline: list[str] = []
        outages: dict[str, Any] = {}
        killed_at: float | None = None
        try:
            await s.start_emulator("--no-setwebhook-rate-limit")
            await s.start_operator(*FAST_OPERATOR)
            ids = [FIRST_BOT_ID + i for i in range(bots)]
            async with EmulatorClient(s.emulator_url) as client:
                docs = _pairs(s, ids, tokens, urls)
                for i in ids:
                    await client.add_bot(tokens[i], f"fault_{i}_bot")
                burst = max(3, bots // 3)
                await client.add_fault("429", count=burst, method="setWebhook", retry_after=1)
                await client.add_fault("502", count=burst, method="setWebhook")
                await client.add_fault("500", count=burst, method="getMe")
                await client.add_fault("drop", count=max(2, bots // 10), method="getWebhookInfo")
                t0 = time.monotonic()

                def mark(text: str) -> None:
                    timeline.append(f"{time.monotonic() - t0:.1f}s {text}")

                await s.apply(*docs, verb="create")
                await asyncio.sleep(1.5)
                await s.kill_operator()
                killed_at = time.time()
                mark("operator SIGKILLed mid-registration")
                await s.start_operator()
                await client.add_fault("502", count=burst)  # a burst on whatever comes next
                all_ready = await until(
                    "all Ready", s.bots, lambda items: sum(map(is_ready, items)) == bots, 300, 1.0
                )
                mark(f"all {len(all_ready)} Ready")
                faults_left = await client.faults()
                await client.clear_faults()
                if restart_api and plane is not None:
                    batch = [FIRST_BOT_ID + bots + i for i in range(max(2, bots // 2))]
                    batch_docs = _pairs(s, batch, tokens, urls)
                    for i in batch:
                        await client.add_bot(tokens[i], f"fault_{i}_bot")
                    ids += batch
                    outages["apiserver"] = await operator_outages.apiserver_outage(
                        s, plane, client, ids, batch_docs, apiserver_outage_s
                    )
                    mark(
                        f"{len(batch)} created, kube-apiserver down {apiserver_outage_s:g}s, all Ready again"
                    )
                for kind in ("502", "429") if botapi_outage_s > 0 else ():
                    outages[f"botapi_{kind}"] = await operator_outages.botapi_outage(
                        s, client, ids, kind, botapi_outage_s
                    )
                    mark(f"Bot API answered {kind} to everything for {botapi_outage_s:g}s, all Ready again")
                wrong_webhook = []
                registrations: collections.Counter[int] = collections.Counter()
                extra: dict[int, list[str]] = {}
                failed_registrations = 0
                for i in ids:
                    webhook = await client.webhook(i, reveal_secrets=True)
                    if webhook["url"] != urls[i]:
                        wrong_webhook.append(i)
                    if webhook.get("secret_token"):
                        secret_tokens.append(str(webhook["secret_token"]))
                    successes = []
                    for call in await client.calls(i, method="setWebhook"):
                        if call["status"] == 200:
                            registrations[i] += 1
                            successes.append(float(call["at"]))
                        else:
                            failed_registrations += 1
                    if causes := classify_extra(successes, killed_at):
                        extra[i] = causes
                # Delete half the bots (a 502 burst on deleteWebhook first): no webhook may stay behind.
                await client.add_fault("502", count=max(2, bots // 10), method="deleteWebhook")
                doomed = ids[: len(ids) // 2]
                await s.kubectl(
                    "delete", "tgbot", "-n", s.namespace, "--wait=false", *[f"b{i}" for i in doomed]
                )
                await until(
                    "deleted bots gone", s.bots, lambda items: len(items) == len(ids) - len(doomed), 180, 1.0
                )
                mark(f"{len(doomed)} deleted")
                left_behind = [i for i in doomed if (await client.webhook(i))["url"]]
                bots_json = json.dumps(await s.bots())
            events = await s.events_json()
        finally:
            await group.stop_all()
            await s.remove()
        logs = s.logs()
        scan = tokenscan.scan(
            {**logs, "events": events, "TelegramBots": bots_json}, [*tokens.values(), *secret_tokens]
        )
    crashes = sum(text.count(DAEMON_FAILED) for name, text in logs.items() if name.startswith("operator"))
    extra_causes = collections.Counter(c for causes in extra.values() for c in causes)
    per_bot = collections.Counter(registrations[i] for i in ids)
    return {
        "bots": len(ids),
        "timeline": timeline,
        "all_ready": len(all_ready) == bots,
        "outages": outages,
        "wrong_webhook": wrong_webhook,
        "successful_setwebhook_per_bot": {str(k): v for k, v in sorted(per_bot.items())},
        "extra_setwebhook": {
            "after_kill": extra_causes["after_kill"],
            "duplicate": extra_causes["duplicate"],
            "bots": {str(i): causes for i, causes in sorted(extra.items())},
        },
        "worker_daemon_failures": crashes,
        "failed_setwebhook_calls": failed_registrations,
        "faults_not_consumed": faults_left,
        "deleted": len(doomed),
        "webhooks_left_behind": left_behind,
        "token_scan": scan,
        "apiserver_restarted": "apiserver" in outages,
        "operator_source": str(operator_source or "installed"),
        "seconds": time.time() - started,
    }


def render(r: dict[str, Any]) -> str:
    extra = r["extra_setwebhook"]
    scan = r["token_scan"]
    per_bot = r["successful_setwebhook_per_bot"]
    rows: list[tuple[str, str, Any]] = [
        *[("timeline", "", t) for t in r["timeline"]],
        ("all Ready", "yes", "yes PASS" if r["all_ready"] else "NO MISS"),
        *operator_outages.rows(r["outages"]),
        ("wrong webhook URL", "0", f"{len(r['wrong_webhook'])} {verdict(not r['wrong_webhook'])}"),
        ("successful setWebhook per bot -> bots", "1 -> all", f"{json.dumps(per_bot)}"),
        (
            "extra successful setWebhook: after the kill, duplicate", "-, 0",
            f"{extra['after_kill']}, {extra['duplicate']} {verdict(not extra['duplicate'])}",
        ),
        ("worker daemons failed (kopf restarts them)", "0", r["worker_daemon_failures"]),
        ("failed setWebhook calls (faults)", "-", r["failed_setwebhook_calls"]),
        ("faults never consumed", "-", len(r["faults_not_consumed"])),
        (
            "deleted / webhooks left behind", "- / 0",
            f"{r['deleted']} / {len(r['webhooks_left_behind'])} {verdict(not r['webhooks_left_behind'])}",
        ),
        (
            "token scan: lines, secrets, leaks", "-, -, 0",
            f"{scan['lines']}, {scan['secrets']}, {len(scan['leaks'])} {verdict(not scan['leaks'])}",
        ),
    ]  # fmt: skip
    return report.table(["figure", "target", "value"], rows)


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_faults", description=__doc__.split("\n")[0]
    )
    p.add_argument("--bots", type=int, default=50)
    p.add_argument("--no-apiserver-restart", action="store_true")
    p.add_argument("--apiserver-outage", type=float, default=15.0, help="seconds the API server is down")
    p.add_argument(
        "--botapi-outage", type=float, default=20.0, help="seconds of each Bot API outage (0: none)"
    )
    p.add_argument(
        "--operator-source",
        type=Path,
        default=None,
        help="run the tgbot_operator package found in this directory",
    )
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tgbot-faults-") as tmp:
        result = asyncio.run(
            run(
                env_from_os(), Path(tmp), args.bots, not args.no_apiserver_restart,
                args.apiserver_outage, args.botapi_outage, args.operator_source,
            )
        )  # fmt: skip
    print(render(result))
    result["machine"] = report.machine()
    print(f"\nJSON: {report.write_json('operator_faults', result, args.results)}")
    ok = (
        result["all_ready"]
        and not result["wrong_webhook"]
        and not result["webhooks_left_behind"]
        and not result["extra_setwebhook"]["duplicate"]
    )
    if not ok or result["token_scan"]["leaks"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
