"""Where the sidecar's CPU goes per forwarded update: a CPU-time cProfile of the sidecar in front
of the trivial upstream under wrk (or the Python load generator), plus user/system time and,
when ``perf`` works, the split by binary (interpreter, uvloop, kernel).

Wall-clock samplers (py-spy) overstate ``transport.write`` on a busy machine: the writer is
often preempted right after waking its peer. cProfile with ``time.process_time`` does not
count that; it inflates the total about 3x, so read its shares, not its microseconds.

    .venv/bin/python -m benchmarks.profile_sidecar [--seconds 5] [--top 25]
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import setups, tools
from .processes import PYTHON, Group, stopped_by_sigterm
from .procstat import cpu_times
from .sidecar_runs import load


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_sidecar", description=__doc__.split("\n")[0]
    )
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--setup", choices=["sidecar-unix", "sidecar-tcp"], default="sidecar-unix")
    args = p.parse_args(argv)
    loadgen = "wrk" if tools.wrk() else "python"
    with tempfile.TemporaryDirectory(prefix="tgbot-profile-") as tmp:
        work = Path(tmp)
        # 1. Unprofiled: user and system CPU per update, and perf's split by binary.
        with Group(work / "logs") as group:
            running = setups.start(args.setup, "trivial", group, work / "plain")
            assert running.hop is not None
            load(loadgen, running.url, 40, 1, 1)
            before = cpu_times(running.hop.pid)
            perf = None
            if shutil.which("perf"):
                perf = subprocess.Popen(
                    ["perf", "record", "-F", "999", "-p", str(running.hop.pid), "-o", str(work / "perf.data"),
                     "--", "sleep", str(args.seconds)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            result = load(loadgen, running.url, 40, args.seconds, 10**9)
            after = cpu_times(running.hop.pid)
            if perf is not None:
                perf.wait()
        n = result["requests"]
        user, system = ((b - a) / n * 1e6 for a, b in zip(before, after, strict=True))
        print(f"{args.setup} -> trivial upstream, {loadgen} c=40: {result['rps']:.0f} req/s")
        print(f"sidecar CPU per update: user {user:.1f} us + system {system:.1f} us")
        if perf is not None and (work / "perf.data").exists():
            split = subprocess.run(
                ["perf", "report", "-i", str(work / "perf.data"), "--sort", "dso", "--stdio"],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            print("perf, share of the sidecar's samples by binary:")
            for line in split.splitlines():
                if line.strip() and not line.startswith("#"):
                    print("   ", line.strip())
        # 2. cProfile with a CPU clock.
        out = work / "sidecar.prof"
        original = setups.sidecar_argv

        def profiled(*a: object, **k: object) -> list[str]:
            argv = original(*a, **k)  # type: ignore[arg-type]
            return [PYTHON, "-m", "benchmarks._cprofile_sidecar", *argv[1:]]

        setups.sidecar_argv = profiled
        os.environ["PROFILE_OUT"] = str(out)
        try:
            with Group(work / "logs") as group:
                running = setups.start(args.setup, "trivial", group, work / "profiled")
                load(loadgen, running.url, 40, args.seconds, 2 * 10**9)
        finally:
            setups.sidecar_argv = original
        text = io.StringIO()
        pstats.Stats(str(out), stream=text).sort_stats("tottime").print_stats(args.top)
        print("\ncProfile (CPU time), by own time:")
        print(text.getvalue().split("\n", 6)[-1])
        text = io.StringIO()
        pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(args.top)
        print("cProfile (CPU time), cumulative:")
        print(text.getvalue().split("\n", 6)[-1])


if __name__ == "__main__":
    main()
