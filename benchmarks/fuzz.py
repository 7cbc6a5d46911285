"""Bad input: hypothesis-generated requests against the sidecar, an upstream that records all it gets.

The requests and what each must get are in ``fuzz_cases`` (generators) and ``fuzz_checks``
(the wire, the checks, what the upstream got); the abusive clients in ``fuzz_abuse``. Here: the
run (upstream + sidecar, the fuzz, then the abusers), its table and the command. A run is ok when
nothing failed a check, the upstream got nothing it must not, every valid update passed, the
sidecar still runs without a traceback and, with abusers, its RSS stayed flat (growth under
``--max-rss-growth-mb``) while every valid update was answered 200.

    .venv/bin/python -m benchmarks.fuzz [--examples 10000] [--abusers 400] [--abuse-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tgbot_localdev.controlplane import free_port

from . import report
from .fuzz_abuse import abuse_result, run_abusers
from .fuzz_cases import MAX_BODY, Case, garbage, requests
from .fuzz_checks import Tally, check, exchange, verify_upstream
from .processes import PYTHON, Group, stopped_by_sigterm
from .setups import sidecar_argv
from .updates import SECRET_TOKEN


def run(
    examples: int,
    workdir: Path,
    garbage_share: float = 0.2,
    cases: tuple[Case, ...] = (),
    abusers: int = 0,
    abuse_seconds: float = 0.0,
    timeouts: float | None = None,
    max_rss_growth_mb: float = 25.0,
) -> dict[str, Any]:
    """The fuzz, then (with ``abusers``) the abusive clients; ``timeouts`` shortens the sidecar's."""
    started = time.time()
    tally = Tally()
    with Group(workdir / "logs") as group:
        record, sock = workdir / "upstream.jsonl", workdir / "up.sock"
        group.start(
            "upstream",
            [PYTHON, "-m", "benchmarks.servers", "trivial", "--unix", str(sock), "--record", str(record)],
            listen=str(sock),
        )
        token = workdir / "secret-token"
        token.write_text(SECRET_TOKEN + "\n")
        port = free_port()
        # IPv6 clients too; 127.0.0.2 is the trusted proxy whose X-Forwarded-For counts.
        extra = [
            "--trusted-proxy",
            "127.0.0.2/32",
            "--max-body-bytes",
            str(MAX_BODY),
            "--upstream-timeout",
            "5",
        ]
        if timeouts is not None:
            for flag in ("--head-timeout", "--body-timeout", "--idle-timeout", "--send-timeout"):
                extra += [flag, str(timeouts)]
        argv = sidecar_argv(
            port,
            token,
            "http://bot/webhook",
            sock,
            host="[::]",
            allow=("127.0.0.1/32", "::1/128"),
            extra=extra,
        )
        sidecar = group.start("sidecar", argv, listen=("127.0.0.1", port))
        strategy = st.one_of(requests(), garbage()) if garbage_share else requests()

        @settings(max_examples=max(1, examples), deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip
        @given(strategy)
        def fuzz(case: Case) -> None:
            check(case, exchange(port, case), tally)

        for case in cases:
            check(case, exchange(port, case), tally)
        if examples:
            fuzz()
        abused = None
        if abusers:
            abused = abuse_result(
                asyncio.run(run_abusers(port, sidecar.pid, abusers, abuse_seconds)), max_rss_growth_mb
            )
        alive = sidecar.alive()
        time.sleep(0.5)
        upstream = verify_upstream(record, tally)
        log = sidecar.log.read_text(errors="replace")
    result = {
        "requests": tally.sent,
        "statuses": dict(tally.statuses.most_common()),
        "kinds": dict(sorted(tally.kinds.items())),
        "must_forward": len(tally.must_forward),
        "must_refuse": len(tally.must_refuse),
        "failures": tally.failures[:20],
        "failure_count": len(tally.failures),
        "sidecar_alive": alive,
        "sidecar_tracebacks": log.count("Traceback"),
        "sidecar_log_tail": log[-4000:] if "Traceback" in log else "",
        "closed_without_answer_by_kind": dict(tally.closed_by_kind.most_common()),
        **upstream,
        **(abused or {}),
        "seconds": time.time() - started,
    }
    result["ok"] = (
        alive
        and not tally.failures
        and not result["sidecar_tracebacks"]
        and not upstream["invalid_forwarded_count"]
        and not upstream["refused_but_forwarded"]
        and not upstream["valid_not_forwarded"]
        and (abused is None or abused["abuse_ok"])
    )
    return result


def render(r: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("requests sent", r["requests"]),
        ("answers by status", json.dumps(r["statuses"])),
        ("must pass / must be refused", f"{r['must_forward']} / {r['must_refuse']}"),
        ("forwarded (upstream got)", r["forwarded"]),
        ("invalid forwarded", r["invalid_forwarded_count"]),
        ("refused but forwarded", len(r["refused_but_forwarded"])),
        ("valid not forwarded", len(r["valid_not_forwarded"])),
        ("5xx / wrong answers", r["failure_count"]),
        ("sidecar alive, tracebacks", f"{r['sidecar_alive']}, {r['sidecar_tracebacks']}"),
    ]
    if "abuse_ok" in r:
        rows += [
            ("abusive connections by kind", json.dumps(r["abusers_by_kind"])),
            ("  of them closed by the sidecar", json.dumps(r["abusers_closed_by_sidecar"])),
            ("sidecar RSS start / peak MB", f"{r['rss_start_mb']} / {r['rss_peak_mb']}"),
            ("valid updates answered 200", f"{r['valid_answered_200']} / {r['valid_sent']}"),
        ]
    rows += [
        ("seconds", f"{r['seconds']:.0f}"),
        ("verdict", "ok" if r["ok"] else "FAILED"),
    ]
    return report.table(["figure", "value"], rows)


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--abusers", type=int, default=400, help="abusive clients at once (0: none)")
    p.add_argument("--abuse-seconds", type=float, default=30.0)
    p.add_argument("--timeouts", type=float, default=None, help="the sidecar's head/body/idle/send timeouts")
    p.add_argument("--max-rss-growth-mb", type=float, default=25.0)
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tgbot-fuzz-") as tmp:
        result = run(args.examples, Path(tmp), abusers=args.abusers, abuse_seconds=args.abuse_seconds,
                     timeouts=args.timeouts, max_rss_growth_mb=args.max_rss_growth_mb)  # fmt: skip
    print(render(result))
    for failure in result["failures"]:
        print("  ", failure)
    result["machine"] = report.machine()
    print(f"\nJSON: {report.write_json('fuzz', result, args.results)}")
    if not result["ok"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
