"""The runs of the sidecar benchmark: a setup started, the load generator against it, and the CPU
and memory of the hop and the bot meanwhile. Closed loop (as fast as answers come) over rounds
that interleave the setups, and open loop at a fixed rate."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import setups, wrk
from .processes import PYTHON, REPO, Group
from .procstat import CpuMeter, peak_rss_bytes, rss_bytes


def load(
    kind: str, url: str, connections: int, duration: float, first_id: int, rate: float = 0.0
) -> dict[str, Any]:
    """Run the load generator (its own process) and return its summary."""
    if kind == "wrk" and not rate:
        process = wrk.popen(url, connections, duration, first_id)
        out, _ = process.communicate(timeout=duration + 60)
        return wrk.parse(out)
    argv = [PYTHON, "-m", "benchmarks.loadgen", "--url", url, "--connections", str(connections)]
    argv += ["--duration", str(duration), "--first-update-id", str(first_id)]
    if rate:
        argv += ["--rate", f"{rate:.1f}"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=duration + 120, check=True)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def measure(
    running: setups.Running, kind: str, connections: int, duration: float, first_id: int, rate: float = 0.0
) -> dict[str, Any]:
    bot = CpuMeter(running.bot.pid)
    hop = CpuMeter(running.hop.pid, running.hop_tree) if running.hop else None
    bot.start()
    if hop:
        hop.start()
    result = load(kind, running.url, connections, duration, first_id, rate)
    bot.stop()
    if hop:
        hop.stop()
    ok = max(1, result["requests"] - result.get("non_2xx", 0))
    result.update(
        setup=running.setup,
        upstream=running.upstream,
        connections=connections,
        bot_cpu_per_update_us=bot.used / ok * 1e6,
        hop_cpu_per_update_us=(hop.used / ok * 1e6) if hop else None,
        hop_rss_mb=rss_bytes(running.hop.pid) / 2**20 if running.hop else None,
        hop_peak_rss_mb=peak_rss_bytes(running.hop.pid) / 2**20 if running.hop else None,
        loadavg=os.getloadavg()[0],
    )
    return result


class Ids:
    """Unique update_ids across runs (the sidecar deduplicates within its window)."""

    def __init__(self) -> None:
        self.next = int(time.time()) % 1000 * 10**9

    def take(self) -> int:
        self.next += 50_000_000
        return self.next


def closed_rounds(args: argparse.Namespace, workdir: Path, ids: Ids) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for upstream in args.upstreams:
            order = list(args.setups)
            shift = round_no % len(order)
            order = order[shift:] + order[:shift]  # no setup always runs first (or last)
            for setup in order:
                with Group(workdir / "logs") as group:
                    running = setups.start(setup, upstream, group, workdir / f"{setup}-{upstream}")
                    load(args.loadgen, running.url, 40, args.warmup, ids.take())
                    for connections in args.connections:
                        # Forwards of connections the previous run closed still count toward the
                        # sidecar's --max-in-flight (they still occupy the bot): let them finish.
                        time.sleep(args.settle)
                        result = measure(running, args.loadgen, connections, args.duration, ids.take())
                        result["round"] = round_no
                        runs.append(result)
                        _progress(result)
    return runs


def open_rounds(
    args: argparse.Namespace, workdir: Path, ids: Ids, rate: float, upstream: str
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for setup in [s for s in args.setups if s != "naive-aiohttp"]:
            with Group(workdir / "logs") as group:
                running = setups.start(setup, upstream, group, workdir / f"open-{setup}-{upstream}")
                load("python", running.url, 40, args.warmup, ids.take())
                time.sleep(args.settle)
                result = measure(running, "python", 40, args.duration * 2, ids.take(), rate=rate)
                result.update(round=round_no, rate=rate)
                runs.append(result)
                _progress(result)
    return runs


def _progress(r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    hop = r["hop_cpu_per_update_us"]
    print(
        f"  {r['upstream']:8} {r['setup']:14} c={r['connections']:<3} {r['rps']:8.0f} req/s "
        f"p99 {lat['p99']:7.2f} ms  hop {hop if hop is None else round(hop, 1)} us  "
        f"bot {r['bot_cpu_per_update_us']:.1f} us  non2xx {r.get('non_2xx', 0)}  load {r['loadavg']:.1f}",
        file=sys.stderr,
        flush=True,
    )
