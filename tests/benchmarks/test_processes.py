"""A benchmark stopped by SIGTERM (``timeout``, CI) stops the processes its setup started, and a
second SIGTERM does not cut that short."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
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


SIGTERM_IN_GROUP_STOP = """
    import sys, time
    from pathlib import Path
    from benchmarks.processes import Group, stopped_by_sigterm

    @stopped_by_sigterm
    def main() -> None:
        with Group(Path(sys.argv[1])) as group:
            first = group.start("first", ["sleep", "120"])
            # slow to stop: takes 2 s after its SIGTERM (stopped first: the last started)
            script = "trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done"
            slow = group.start("slow", ["sh", "-c", script])
            time.sleep(1)  # its trap is set
            print(first.pid, slow.pid, flush=True)
        # leaving the block stops them; the SIGTERM lands while the slow one stops

    main()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def benchmark(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``script`` run as a benchmark is (its own process, our PYTHONPATH), killed on the way out."""
    bench = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    try:
        assert bench.stdout is not None
        yield bench
    finally:
        bench.kill()
        bench.wait()


def _wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    """The processes of ``pids`` still alive after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize("script", [SYNC, ASYNC], ids=["Group", "ProcessGroup in asyncio.run"])
def test_sigterm_stops_the_setups_processes(tmp_path: Path, script: str) -> None:
    with benchmark(script, str(tmp_path)) as bench:
        assert bench.stdout is not None
        sleeper = int(bench.stdout.readline())
        assert _alive(sleeper)
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=30)
        alive = bool(_wait_gone([sleeper]))
        if alive:
            os.kill(sleeper, signal.SIGKILL)
        assert not alive, "the benchmark's child outlived its SIGTERM"


def test_a_second_sigterm_does_not_cut_the_cleanup_short() -> None:
    with benchmark(SLOW_CLEANUP) as bench:
        assert bench.stdout is not None
        assert bench.stdout.readline() == "running\n"
        bench.send_signal(signal.SIGTERM)
        assert bench.stdout.readline() == "cleaning\n"
        bench.send_signal(signal.SIGTERM)  # what `timeout` passes on when `pkill -f` hit both
        out, _ = bench.communicate(timeout=30)
        # the cleanup ran to its end, and what it started still stops on SIGTERM (not inherited)
        assert out == f"cleaned {-signal.SIGTERM}\n"
        assert bench.returncode == -signal.SIGINT  # the first SIGTERM's interrupt, not the second's kill


def test_a_sigterm_while_the_group_stops_still_stops_every_process(tmp_path: Path) -> None:
    pids: list[int] = []
    try:
        with benchmark(SIGTERM_IN_GROUP_STOP, str(tmp_path)) as bench:
            assert bench.stdout is not None
            pids = [int(pid) for pid in bench.stdout.readline().split()]
            time.sleep(0.5)  # the group is stopping the slow one
            bench.send_signal(signal.SIGTERM)
            bench.wait(timeout=30)
            assert bench.returncode == -signal.SIGINT  # interrupted, and said so
            assert not _wait_gone(pids), "a process outlived the interrupted cleanup"
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
