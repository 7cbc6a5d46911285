"""Operator scale: N TelegramBots applied at once to the local control plane, with the emulator.

Per N (a fresh namespace and operator each): time until all are Ready, apply-to-Ready median and
p99 (from a watch: ADDED -> first Ready=True), operator RSS at the end, Telegram calls per bot
(registration, then a steady-state window), the API-server requests of that window (from
kube-apiserver's own ``apiserver_request_total``), and the extra calls an operator restart causes.
``--profile`` gives every bot a spec.profile (commands, name, descriptions, menu button).

    .venv/bin/python -m benchmarks.operator_scale --bots 100 1000 --profile
    .venv/bin/python -m benchmarks.operator_scale --bots 1000 --huge      # and 10,000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_localdev.processes import ProcessGroup

from . import report, tokenscan
from .processes import free_port
from .procstat import peak_rss_bytes, rss_bytes
from .stack import Stack, bot_manifest, env_from_os, is_ready, kube_env, new_token, token_secret

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

#: The resources the operator itself reads and writes (kopf's and ours); the rest of the API
#: server's traffic (leases, the controller-manager) is not the operator's.
OPERATOR_RESOURCES = frozenset({"secrets", "telegrambots", "events"})

#: Issue 15's targets, printed beside the figures.
TARGETS = (
    "Targets (issue 15): 1,000 bots: apply->Ready p50 <= 5 s, p99 <= 15 s, all Ready <= 30 s after the "
    "last create, RSS <= 150 MB; 10,000 bots: all Ready <= 10 min, RSS <= 600 MB; steady state: <= 1 "
    "API-server request per bot per check interval beyond watches; a restart: <= 1 getWebhookInfo per bot."
)


class ReadyWatch:
    """``kubectl get tgbot -w``: when each bot was first seen and first Ready."""

    def __init__(self, s: Stack) -> None:
        self.stack = s
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "kubectl", "get", "tgbot", "-n", self.stack.namespace, "-w", "--output-watch-events",
            "-o", "json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=self.stack.env, limit=16 << 20,
        )  # fmt: skip
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        while chunk := await self.process.stdout.read(1 << 16):
            buffer += chunk.decode()
            while True:
                buffer = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        obj = event.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        self.added.setdefault(name, now)
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == "True":
                self.ready.setdefault(name, now)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        if self.task is not None:
            self.task.cancel()


def operator_calls(port: int) -> dict[str, float]:
    """tgbot_operator_telegram_calls_total by method, from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    calls: dict[str, float] = collections.defaultdict(float)
    for line in text.splitlines():
        if line.startswith("tgbot_operator_telegram_calls_total{"):
            labels, _, value = line.rpartition(" ")
            method = labels.split('method="', 1)[1].split('"', 1)[0]
            calls[method] += float(value)
    return dict(calls)


async def apiserver_requests(s: Stack) -> collections.Counter[str]:
    """kube-apiserver's apiserver_request_total for the operator's resources, by verb and resource."""
    text = await s.kubectl("get", "--raw", "/metrics")
    total: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line.rpartition(" ")
        labels = dict(
            part.split("=", 1)
            for part in labels_text[len("apiserver_request_total{") : -1].split(",")
            if "=" in part
        )
        labels = {k: v.strip('"') for k, v in labels.items()}
        if labels.get("resource") not in OPERATOR_RESOURCES:
            continue
        sub = f"/{labels['subresource']}" if labels.get("subresource") else ""
        total[f"{labels.get('verb', '?')} {labels['resource']}{sub}"] += int(float(value))
    return total


async def emulator_calls(client: EmulatorClient, ids: list[int]) -> collections.Counter[str]:
    """Every Bot API call the emulator saw for these bots, by method."""
    total: collections.Counter[str] = collections.Counter()
    limit = asyncio.Semaphore(16)

    async def one(bot_id: int) -> None:
        async with limit:
            for call in await client.calls(bot_id):
                total[call["method"]] += 1

    await asyncio.gather(*(one(i) for i in ids))
    return total


async def quiet(port: int, seconds: float, timeout: float) -> dict[str, float]:
    """Until the operator made no Telegram call for ``seconds``."""
    last, since, deadline = operator_calls(port), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = operator_calls(port)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            break
    return last


def per_bot(counter: dict[str, float] | collections.Counter[str], n: int) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in sorted(counter.items())}


def delta(after: collections.Counter[str], before: collections.Counter[str]) -> collections.Counter[str]:
    out = collections.Counter(after)
    out.subtract(before)
    return +out


async def one_size(
    env: dict[str, str], workdir: Path, emulator_url: str, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    namespace = f"scale-{n}-{secrets.token_hex(2)}"
    group = ProcessGroup(workdir / f"logs-{n}")
    s = Stack(env, workdir, namespace, group, emulator_url=emulator_url)
    await s.kubectl("create", "namespace", namespace)
    interval = parse_seconds(args.token_check_interval)
    metrics_port = free_port()
    tokens: list[str] = []
    try:
        operator = await s.start_operator(
            "--metrics-listen", f"127.0.0.1:{metrics_port}", "--check-interval", args.check_interval,
            "--token-check-interval", args.token_check_interval,
        )  # fmt: skip
        ids = [FIRST_BOT_ID + n * 10_000 + i for i in range(n)]
        async with EmulatorClient(emulator_url) as client:
            limit = asyncio.Semaphore(16)

            async def add(bot_id: int) -> None:
                token = new_token(bot_id)
                tokens.append(token)
                async with limit:
                    await client.add_bot(token, f"scale_{bot_id}_bot")

            await asyncio.gather(*(add(i) for i in ids))
            docs: list[dict[str, Any]] = []
            for bot_id, token in zip(ids, sorted(tokens, key=lambda t: int(t.split(":")[0])), strict=True):
                docs.append(token_secret(f"t{bot_id}", token))
                url = f"http://127.0.0.1:{20000 + bot_id % 40000}/webhook/{bot_id}"
                bot = bot_manifest(f"b{bot_id}", emulator_url, f"t{bot_id}", url)
                if args.profile:
                    bot["spec"]["profile"] = PROFILE
                docs.append(bot)
            watch = ReadyWatch(s)
            await watch.start()
            t0 = time.monotonic()
            # "At once": several kubectl processes, each creating a slice of (Secret, TelegramBot) pairs.
            pairs = [docs[i : i + 2 * args.apply_chunk] for i in range(0, len(docs), 2 * args.apply_chunk)]
            limit_apply = asyncio.Semaphore(args.apply_parallel)

            async def create(chunk: list[dict[str, Any]]) -> None:
                async with limit_apply:
                    await s.apply(*chunk, verb="create")

            await asyncio.gather(*(create(chunk) for chunk in pairs))
            applied = time.monotonic() - t0
            deadline = t0 + args.timeout
            while len(watch.ready) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            all_ready = time.monotonic() - t0 if len(watch.ready) >= n else None
            latencies = sorted(watch.ready[k] - watch.added[k] for k in watch.ready if k in watch.added)
            pid = operator.process.pid
            rss_ready = rss_bytes(pid)
            await quiet(metrics_port, 5, 120)
            registration = await emulator_calls(client, ids)
            requests_before = await apiserver_requests(s)
            await asyncio.sleep(args.steady)
            requests = delta(await apiserver_requests(s), requests_before)
            steady_total = await emulator_calls(client, ids)
            steady = delta(steady_total, registration)
            # Per bot per token check interval; kubectl's own metrics GET is no operator request.
            scale = interval / args.steady / n
            steady_requests = {k: round(v * scale, 3) for k, v in sorted(requests.items())}
            rss_end, rss_peak = rss_bytes(pid), peak_rss_bytes(pid)
            first_pass = {
                "bots": n, "apply_seconds": applied, "all_ready_seconds": all_ready,
                "ready": len(watch.ready), "p50": report.percentile(latencies, 0.5),
                "p99": report.percentile(latencies, 0.99), "rss_mb": rss_end / 2**20,
                "registration": per_bot(registration, n), "steady": per_bot(steady, n),
                "apiserver_requests_per_bot_per_interval": steady_requests,
            }  # fmt: skip
            # Before the restart (which can take minutes with many bots): the figures so far.
            print(f"first pass: {json.dumps(first_pass)}", file=sys.stderr, flush=True)
            # Restart: SIGTERM, start again, wait until it has been quiet for a while.
            await s.stop_operator()
            await s.start_operator()
            await asyncio.sleep(2)
            await quiet(metrics_port, args.restart_quiet, 300)
            after_restart = await emulator_calls(client, ids)
            restart = delta(after_restart, steady_total)
            bots = await s.bots()
            still_ready = sum(1 for b in bots if is_ready(b))
            await watch.stop()
            events = await s.events_json()
            # The webhook secret tokens are secrets too: the scan looks for them as well.
            secret_tokens = await registered_secret_tokens(client, ids)
        scan = tokenscan.scan(
            {**s.logs(), "events": events, "TelegramBots": json.dumps(bots)}, [*tokens, *secret_tokens]
        )
        return {
            "bots": n,
            "apply_seconds": applied,
            "all_ready_seconds": all_ready,
            "ready": len(watch.ready),
            "apply_to_ready_s": {
                "p50": report.percentile(latencies, 0.5),
                "p99": report.percentile(latencies, 0.99),
                "max": latencies[-1] if latencies else None,
            },
            "operator_rss_mb": {"ready": rss_ready / 2**20, "end": rss_end / 2**20, "peak": rss_peak / 2**20},
            "calls_per_bot_registration": per_bot(registration, n),
            "steady_seconds": args.steady,
            "check_interval": args.check_interval,
            "calls_per_bot_steady": per_bot(steady, n),
            "calls_per_bot_restart": per_bot(restart, n),
            "profile": bool(args.profile),
            "token_check_interval": interval,
            "apiserver_requests_per_bot_per_interval": steady_requests,
            "apiserver_requests_per_bot_per_interval_total": round(sum(steady_requests.values()), 3),
            "all_ready_after_last_create_s": all_ready - applied if all_ready is not None else None,
            "operator_source": str(args.operator_source or "installed"),
            "ready_after_restart": still_ready,
            "token_scan_leaks": len(scan["leaks"]),
            "token_scan": scan,
        }
    finally:
        await group.stop_all()
        for item in await s.bots() if group else []:
            patch = '{"metadata":{"finalizers":null}}'
            await s.kubectl(
                "patch",
                "tgbot",
                item["metadata"]["name"],
                "-n",
                namespace,
                "--type=merge",
                "-p",
                patch,
                check=False,
            )
        await s.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


async def run(env: dict[str, str] | None, workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    async with kube_env(env, workdir) as kenv:
        if args.operator_source is not None:
            # Another copy of the operator package (a commit to compare with) wins over the installed one.
            kenv = {**kenv, "PYTHONPATH": f"{args.operator_source}:{kenv.get('PYTHONPATH', '')}".rstrip(":")}
        group = ProcessGroup(workdir / "logs")
        s = Stack(kenv, workdir, f"scale-{secrets.token_hex(2)}", group)
        await s.setup()
        try:
            await s.start_emulator("--no-setwebhook-rate-limit")
            results = []
            for n in args.bots:
                print(f"{n} bots...", file=sys.stderr, flush=True)
                results.append(await one_size(kenv, workdir, s.emulator_url, n, args))
                print(render(results[-1:]), file=sys.stderr, flush=True)
            return results
        finally:
            await group.stop_all()
            await s.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def render(results: list[dict[str, Any]]) -> str:
    def calls(d: dict[str, float]) -> str:
        return " ".join(f"{k}={v:g}" for k, v in d.items()) or "none"

    rows = []
    for r in results:
        lat = r["apply_to_ready_s"]
        rows.append([
            r["bots"], f"{r['apply_seconds']:.1f}",
            f"{r['all_ready_seconds']:.1f}" if r["all_ready_seconds"] is not None else f"NO ({r['ready']})",
            f"{lat['p50']:.1f} / {lat['p99']:.1f}",
            "-" if (late := r["all_ready_after_last_create_s"]) is None else f"{late:.1f}",
            f"{r['operator_rss_mb']['end']:.0f} ({r['operator_rss_mb']['peak']:.0f})",
            calls(r["calls_per_bot_registration"]), calls(r["calls_per_bot_steady"]),
            calls(r["calls_per_bot_restart"]),
            f"{r['apiserver_requests_per_bot_per_interval_total']:g}"
            f" ({calls(r['apiserver_requests_per_bot_per_interval'])})",
            f"{r['ready_after_restart']}/{r['bots']}", r["token_scan_leaks"],
        ])  # fmt: skip
    headers = ["bots", "apply s", "all Ready s", "apply->Ready p50/p99 s", "Ready after last create s",
               "RSS MB (peak)", "calls/bot registration", "calls/bot steady", "calls/bot restart",
               "API requests/bot/token check (steady)", "Ready after", "leaks"]  # fmt: skip
    return report.table(headers, rows)


async def registered_secret_tokens(client: EmulatorClient, ids: list[int]) -> list[str]:
    """The secret token each bot's webhook has at the emulator (revealed: it is the test's own)."""
    limit = asyncio.Semaphore(16)

    async def one(bot_id: int) -> str:
        async with limit:
            webhook = await client.webhook(bot_id, reveal_secrets=True)
        return str(webhook.get("secret_token") or "")

    return [token for token in await asyncio.gather(*(one(i) for i in ids)) if token]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_scale", description=__doc__.split("\n")[0]
    )
    p.add_argument("--bots", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--timeout", type=float, default=600, help="give up waiting for Ready after this long")
    p.add_argument("--steady", type=float, default=30, help="steady-state window in seconds")
    p.add_argument("--check-interval", default="300s", help="the operator's --check-interval (its default)")
    p.add_argument(
        "--restart-quiet", type=float, default=10, help="restart settled after this long without calls"
    )
    p.add_argument("--apply-parallel", type=int, default=4, help="kubectl create processes at once")
    p.add_argument("--apply-chunk", type=int, default=50, help="bots per kubectl create")
    p.add_argument(
        "--token-check-interval", default="30s", help="the operator's --token-check-interval (its default)"
    )
    p.add_argument("--profile", action="store_true", help="every bot declares a spec.profile (5 items)")
    p.add_argument("--huge", action="store_true", help="also 10,000 bots (slow: ~10+ minutes)")
    p.add_argument(
        "--operator-source",
        type=Path,
        default=None,
        help="run the tgbot_operator package found in this directory",
    )
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    if args.huge and 10_000 not in args.bots:
        args.bots.append(10_000)
    return args


def parse_seconds(text: str) -> float:
    """ "30s", "5m" or "30" as the operator's flags take them."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tgbot-scale-") as tmp:
        results = asyncio.run(run(env_from_os(), Path(tmp), args))
    print(render(results))
    print("\n" + TARGETS)
    data = {
        "benchmark": "operator_scale",
        "machine": report.machine(),
        "started": started,
        "results": results,
    }
    print(f"JSON: {report.write_json('operator_scale', data, args.results)}")
    return results


if __name__ == "__main__":
    main()
