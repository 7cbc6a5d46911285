"""A benchmark stopped by SIGTERM (``timeout``, CI) stops the processes its setup started, and a
second SIGTERM does not cut that short."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmarks.processes import REPO, child_env

SYNC = """
    import sys, time
    from pathlib import Path
    from benchmarks.processes import Group, stopped_by_sigterm

    @stopped_by_sigterm
    def main() -> None:
        with Group(Path(sys.argv[1])) as group:
            print(group.start("sleeper", ["sleep", "120"]).pid, flush=True)
            time.sleep(120)

    main()
"""

ASYNC = """
    import asyncio, sys
    from pathlib import Path
    from tgbot_localdev.processes import ProcessGroup
    from benchmarks.processes import stopped_by_sigterm

    async def run(logdir: Path) -> None:
        group = ProcessGroup(logdir)
        try:
            print((await group.start("sleeper", ["sleep", "120"])).process.pid, flush=True)
            await asyncio.sleep(120)
        finally:
            await group.stop_all()

    @stopped_by_sigterm
    def main() -> None:
        asyncio.run(run(Path(sys.argv[1])))

    main()
"""


SLOW_CLEANUP = """
    import subprocess, time
    from benchmarks.processes import stopped_by_sigterm

    @stopped_by_sigterm
    def main() -> None:
        try:
            print("running", flush=True)
            time.sleep(120)
        finally:
            print("cleaning", flush=True)
            time.sleep(1)  # the second SIGTERM lands here
            child = subprocess.Popen(["sleep", "60"])  # as a cleanup's kubectl would be
            child.terminate()
            print("cleaned", child.wait(timeout=10), flush=True)

    main()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("script", [SYNC, ASYNC], ids=["Group", "ProcessGroup in asyncio.run"])
def test_sigterm_stops_the_setups_processes(tmp_path: Path, script: str) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    try:
        assert bench.stdout is not None
        sleeper = int(bench.stdout.readline())
        assert _alive(sleeper)
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(sleeper) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = _alive(sleeper)
        if alive:
            os.kill(sleeper, signal.SIGKILL)
        assert not alive, "the benchmark's child outlived its SIGTERM"
    finally:
        bench.kill()
        bench.wait()


def test_a_second_sigterm_does_not_cut_the_cleanup_short() -> None:
    bench = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SLOW_CLEANUP)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    try:
        assert bench.stdout is not None
        assert bench.stdout.readline() == "running\n"
        bench.send_signal(signal.SIGTERM)
        assert bench.stdout.readline() == "cleaning\n"
        bench.send_signal(signal.SIGTERM)  # what `timeout` passes on when `pkill -f` hit both
        out, _ = bench.communicate(timeout=30)
        # the cleanup ran to its end, and what it started still stops on SIGTERM (not inherited)
        assert out == f"cleaned {-signal.SIGTERM}\n"
    finally:
        bench.kill()
        bench.wait()
