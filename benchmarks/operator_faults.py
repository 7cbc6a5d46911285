"""Operator faults: the operator SIGKILLed mid-registration, the API server restarted, the emulator
answering 429, 5xx and dropped connections in bursts - then every TelegramBot must be Ready with
the right webhook, registered no more often than the retries need, and deleted bots must leave
no webhook behind. Ends with the token scan over logs, Events and status.

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

from . import report, tokenscan
from .stack import FAST_OPERATOR, Stack, bot_manifest, env_from_os, is_ready, new_token, token_secret, until

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


async def restart_apiserver(s: Stack, plane: ControlPlane) -> float:
    """Stop kube-apiserver and start it again with the same arguments (same port and certificates)."""
    started = time.monotonic()
    old = next(p for p in plane._processes if p.name == "kube-apiserver")
    argv = [str(a) for a in old.popen.args][1:]  # type: ignore[union-attr]
    await asyncio.to_thread(old.stop)
    plane._processes.remove(old)
    await asyncio.sleep(2.0)  # the operator's watches break and retry meanwhile
    plane._spawn("kube-apiserver", argv)

    async def ready() -> bool:
        return "ok" in await s.kubectl("get", "--raw", "/readyz", check=False, timeout=10)

    await until("kube-apiserver back", ready, bool, timeout=120)
    return time.monotonic() - started


async def run(
    env: dict[str, str] | None, workdir: Path, bots: int = 50, restart_api: bool = True
) -> dict[str, Any]:
    started = time.time()
    async with plane_or_env(env, workdir) as (kenv, plane):
        group = ProcessGroup(workdir / "logs")
        s = Stack(kenv, workdir, f"faults-{secrets.token_hex(2)}", group)
        await s.setup()
        tokens: dict[int, str] = {}
        secret_tokens: list[str] = []  # the webhooks' secret tokens, scanned for like the bot tokens
        timeline: list[str] = []
        killed_at: float | None = None
        try:
            await s.start_emulator("--no-setwebhook-rate-limit")
            await s.start_operator(*FAST_OPERATOR)
            ids = [FIRST_BOT_ID + i for i in range(bots)]
            urls = {i: f"http://127.0.0.1:{20000 + i % 40000}/webhook/{i}" for i in ids}
            async with EmulatorClient(s.emulator_url) as client:
                for i in ids:
                    tokens[i] = new_token(i)
                    await client.add_bot(tokens[i], f"fault_{i}_bot")
                burst = max(3, bots // 3)
                await client.add_fault("429", count=burst, method="setWebhook", retry_after=1)
                await client.add_fault("502", count=burst, method="setWebhook")
                await client.add_fault("500", count=burst, method="getMe")
                await client.add_fault("drop", count=max(2, bots // 10), method="getWebhookInfo")
                docs = []
                for i in ids:
                    docs += [
                        token_secret(f"t{i}", tokens[i]),
                        bot_manifest(f"b{i}", s.emulator_url, f"t{i}", urls[i]),
                    ]
                t0 = time.monotonic()
                await s.apply(*docs, verb="create")
                await asyncio.sleep(1.5)
                await s.kill_operator()
                killed_at = time.time()
                timeline.append(f"{time.monotonic() - t0:.1f}s operator SIGKILLed mid-registration")
                await s.start_operator()
                if restart_api and plane is not None:
                    await asyncio.sleep(2.0)
                    took = await restart_apiserver(s, plane)
                    timeline.append(
                        f"{time.monotonic() - t0:.1f}s kube-apiserver restarted ({took:.1f}s down)"
                    )
                await client.add_fault("502", count=burst)  # a burst on whatever comes next
                all_ready = await until(
                    "all Ready",
                    s.bots,
                    lambda items: sum(map(is_ready, items)) == bots,
                    timeout=300,
                    period=1.0,
                )
                timeline.append(f"{time.monotonic() - t0:.1f}s all {len(all_ready)} Ready")
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
                faults_left = await client.faults()
                # Delete half the bots (a 502 burst on deleteWebhook first): no webhook may stay behind.
                await client.add_fault("502", count=max(2, bots // 10), method="deleteWebhook")
                doomed = ids[: bots // 2]
                await s.kubectl(
                    "delete", "tgbot", "-n", s.namespace, "--wait=false", *[f"b{i}" for i in doomed]
                )
                await until(
                    "deleted bots gone", s.bots, lambda items: len(items) == bots - len(doomed), 180, 1.0
                )
                timeline.append(f"{time.monotonic() - t0:.1f}s {len(doomed)} deleted")
                left_behind = [i for i in doomed if (await client.webhook(i))["url"]]
                bots_json = json.dumps(await s.bots())
            events = await s.events_json()
        finally:
            await group.stop_all()
            for item in await s.bots():
                patch = '{"metadata":{"finalizers":null}}'
                name = item["metadata"]["name"]
                await s.kubectl(
                    "patch", "tgbot", name, "-n", s.namespace, "--type=merge", "-p", patch, check=False
                )
            await s.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)
        logs = s.logs()
        scan = tokenscan.scan(
            {**logs, "events": events, "TelegramBots": bots_json}, [*tokens.values(), *secret_tokens]
        )
    crashes = sum(text.count(DAEMON_FAILED) for name, text in logs.items() if name.startswith("operator"))
    extra_causes = collections.Counter(c for causes in extra.values() for c in causes)
    per_bot = collections.Counter(registrations[i] for i in ids)
    return {
        "bots": bots,
        "timeline": timeline,
        "all_ready": len(all_ready) == bots,
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
        "apiserver_restarted": restart_api and plane is not None,
        "seconds": time.time() - started,
    }


def render(r: dict[str, Any]) -> str:
    rows = [
        *[("timeline", t) for t in r["timeline"]],
        ("all Ready", "yes" if r["all_ready"] else "NO"),
        ("wrong webhook URL", len(r["wrong_webhook"])),
        ("successful setWebhook per bot -> bots", json.dumps(r["successful_setwebhook_per_bot"])),
        (
            "extra successful setWebhook: after the kill, duplicate",
            f"{r['extra_setwebhook']['after_kill']}, {r['extra_setwebhook']['duplicate']}",
        ),
        ("worker daemons failed (kopf restarts them)", r["worker_daemon_failures"]),
        ("failed setWebhook calls (faults)", r["failed_setwebhook_calls"]),
        ("faults never consumed", len(r["faults_not_consumed"])),
        ("deleted / webhooks left behind", f"{r['deleted']} / {len(r['webhooks_left_behind'])}"),
        (
            "token scan: lines, secrets, leaks",
            f"{r['token_scan']['lines']}, {r['token_scan']['secrets']}, {len(r['token_scan']['leaks'])}",
        ),
    ]
    return report.table(["figure", "value"], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_faults", description=__doc__.split("\n")[0]
    )
    p.add_argument("--bots", type=int, default=50)
    p.add_argument("--no-apiserver-restart", action="store_true")
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tgbot-faults-") as tmp:
        result = asyncio.run(run(env_from_os(), Path(tmp), args.bots, not args.no_apiserver_restart))
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
