"""The sidecar benchmark: five setups x {aiogram, trivial upstream} x {40, 100} connections.

Setups (see docs/benchmarks.md): aiogram alone (secret token + ip_filter_middleware), nginx in
front of aiogram, our sidecar over a Unix socket and over loopback TCP, and a naive aiohttp
forwarder. Per run: requests/s, p50/p90/p99 latency, CPU seconds per update of the hop and of the
bot (from /proc/<pid>/stat, nginx's workers included) and the hop's RSS. Then open-loop load at
half of nginx's peak for the p99 comparison. Rounds interleave the setups; we report the median
and [min-max] over rounds, and ratios to nginx taken within each round.

Here the command; the runs are in ``sidecar_runs``, the rows, tables and targets in ``sidecar_report``.

    .venv/bin/python -m benchmarks.sidecar [--rounds 3] [--duration 5] [--loadgen wrk|python]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report, setups, tools
from .processes import stopped_by_sigterm
from .sidecar_report import aggregate, open_loop_rates, render, targets
from .sidecar_runs import Ids, closed_rounds, open_rounds


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sidecar", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--settle", type=float, default=1.5, help="pause between runs (in-flight forwards drain)")
    p.add_argument("--connections", type=int, nargs="+", default=[40, 100])
    p.add_argument("--upstreams", nargs="+", choices=setups.UPSTREAMS, default=list(setups.UPSTREAMS))
    p.add_argument("--setups", nargs="+", choices=setups.SETUPS, default=list(setups.SETUPS))
    p.add_argument("--loadgen", choices=["wrk", "python"], default="wrk" if tools.wrk() else "python")
    p.add_argument("--no-open-loop", action="store_true", help="skip the p99 at half of nginx's peak")
    p.add_argument(
        "--results", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    return p.parse_args(argv)


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if "nginx" in args.setups and tools.nginx() is None:
        sys.exit(f"nginx is missing: {tools.INSTALL_HINT} (or drop it: --setups ...)")
    print(f"load generator: {args.loadgen}; {args.rounds} rounds of {args.duration:.0f} s", file=sys.stderr)
    started = time.time()
    ids = Ids()
    with tempfile.TemporaryDirectory(prefix="tgbot-bench-") as tmp:
        workdir = Path(tmp)
        runs = closed_rounds(args, workdir, ids)
        closed = aggregate(runs, ("upstream", "setup", "connections"))
        open_runs: list[dict[str, Any]] = []
        opened: list[dict[str, Any]] = []
        if not args.no_open_loop and "nginx" in args.setups:
            for upstream in args.upstreams:
                for rate in open_loop_rates(closed, upstream):
                    print(f"open loop: {upstream} at {rate:.0f} req/s", file=sys.stderr)
                    these = open_rounds(args, workdir, ids, rate, upstream)
                    open_runs += these
                    opened += aggregate(these, ("upstream", "rate", "setup"))
    print("\nClosed loop (wrk-style), median [min-max] over rounds:")
    print(render(closed))
    if opened:
        print("\nOpen loop at half of nginx's peak [and half of the sidecar's], latency from the due time:")
        print(render(opened, with_conns=False))
    checks = targets(closed, opened)
    print("\nTargets:")
    print(report.table(["target", "measured", "met"], [(t, m, "yes" if ok else "NO") for t, m, ok in checks]))
    data = {
        "benchmark": "sidecar",
        "machine": report.machine(),
        "started": started,
        "seconds": time.time() - started,
        "args": {k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()},
        "closed": closed,
        "open": opened,
        "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in checks],
        "runs": runs + open_runs,
    }
    path = report.write_json("sidecar", data, args.results)
    print(f"\nJSON: {path}")
    return data


if __name__ == "__main__":
    main()
