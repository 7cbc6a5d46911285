"""Operator scale: N TelegramBots applied at once to the local control plane, with the emulator.

Per N (a fresh namespace and operator each), beside issue 15's targets: apply->Ready p50/p99 and
all Ready; operator RSS, CPU and API-server requests per bot (kube-apiserver's own
``apiserver_request_total``), so growth across sizes shows; a steady window of one check interval
(requests per bot beyond the watches, how the getWebhookInfo checks spread over seconds); a few
changed tokens (picked up how soon); an operator restart (getWebhookInfo per bot, their spread,
set* calls). ``--profile`` gives every bot a spec.profile (commands, name, descriptions, menu button).

    .venv/bin/python -m benchmarks.operator_scale                         # 1,000 and 3,000 bots
    .venv/bin/python -m benchmarks.operator_scale --bots 1000,3000 --huge  # and 10,000
    .venv/bin/python -m benchmarks.operator_scale --bots 50 --check-interval 30s   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_localdev.controlplane import free_port
from tgbot_localdev.processes import ProcessGroup

from . import report, scale_apiserver, scale_report
from .processes import stopped_by_sigterm
from .scale_run import SizeRun, progress
from .stack import Stack, env_from_os, kube_env, with_operator_source


async def one_size(
    env: dict[str, str], workdir: Path, emulator_url: str, n: int, args: argparse.Namespace, *, last: bool
) -> dict[str, Any]:
    namespace = f"scale-{n}-{secrets.token_hex(2)}"
    group = ProcessGroup(workdir / f"logs-{n}")
    s = Stack(env, workdir, namespace, group, emulator_url=emulator_url)
    await s.kubectl("create", "namespace", namespace)
    try:
        async with EmulatorClient(emulator_url) as client:
            return await SizeRun(s, client, n, args, free_port()).measure()
    finally:
        await group.stop_all()
        await s.remove(wait=not last)  # the next size must not share the API server with this deletion


async def run(env: dict[str, str] | None, workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    async with kube_env(env, workdir) as plane_env:
        kenv = with_operator_source(plane_env, args.operator_source)
        group = ProcessGroup(workdir / "logs")
        s = Stack(kenv, workdir, f"scale-{secrets.token_hex(2)}", group)
        await s.setup()
        try:
            if not await scale_apiserver.wait_until_watched(s.kubectl, "telegrambots", timeout=120):
                progress("nothing watches TelegramBots: the steady figures may count the GC's GETs")
            await s.start_emulator("--no-setwebhook-rate-limit")
            results = []
            for i, n in enumerate(args.bots):
                progress(f"{n} bots...")
                last = i == len(args.bots) - 1
                results.append(await one_size(kenv, workdir, s.emulator_url, n, args, last=last))
                progress(scale_report.render(results[-1:]))
            return results
        finally:
            await group.stop_all()
            await s.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def sizes(text: str) -> list[int]:
    """``1000`` or ``1000,3000``."""
    return [int(part) for part in text.split(",") if part.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_scale", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--bots", "--sizes", type=sizes, nargs="+", default=[[1000, 3000]],
        help="sizes, one run each, one table: '1000 3000' or '1000,3000' (default: 1000 3000)",
    )  # fmt: skip
    p.add_argument("--huge", action="store_true", help="also 10,000 bots (slow: ~10+ minutes)")
    p.add_argument("--timeout", type=float, default=900, help="give up waiting for Ready after this long")
    p.add_argument("--check-interval", default="300s", help="the operator's --check-interval (its default)")
    p.add_argument(
        "--token-check-interval", default="30s", help="the operator's --token-check-interval (its default)"
    )
    p.add_argument(
        "--steady", type=float, default=None, help="steady window in seconds (default: one check interval)"
    )
    p.add_argument("--token-changes", type=int, default=3, help="bots whose token changes after the window")
    p.add_argument(
        "--restart-quiet", type=float, default=10, help="after the restart checked every bot, watch this long"
    )
    p.add_argument("--apply-parallel", type=int, default=4, help="kubectl create processes at once")
    p.add_argument("--apply-chunk", type=int, default=50, help="bots per kubectl create")
    p.add_argument("--profile", action="store_true", help="every bot declares a spec.profile (5 items)")
    p.add_argument(
        "--operator-arg", action="append", default=[], metavar="ARG",
        help="one more operator flag, e.g. --operator-arg=--secret-reads=poll (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--operator-source",
        type=Path,
        default=None,
        help="run the tgbot_operator package found in this directory",
    )
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    args.bots = [n for group in args.bots for n in group]
    if args.huge and 10_000 not in args.bots:
        args.bots.append(10_000)
    return args


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tgbot-scale-") as tmp:
        results = asyncio.run(run(env_from_os(), Path(tmp), args))
    print(scale_report.render(results))
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
