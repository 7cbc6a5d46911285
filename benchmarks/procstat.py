"""CPU time and memory of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process (its threads included); zeros once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0, 0.0
    # After the name: state(3) ppid(4) ... utime(14) stime(15) -> indexes 11 and 12 here.
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), in seconds."""
    return sum(cpu_times(pid))


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (e.g. nginx's workers), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found.extend(int(x) for x in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo.extend(children(current))
    return result


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (nginx master + workers)."""
    return sum(cpu_seconds(p) for p in tree(pid))


def rss_bytes(pid: int) -> int:
    """Resident set size now."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return pages * PAGE_SIZE


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the largest RSS the process had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class CpuMeter:
    """CPU seconds used by a process tree between :meth:`start` and :meth:`stop`."""

    pid: int
    include_children: bool = False
    _start: float = 0.0
    used: float = 0.0

    def _read(self) -> float:
        return tree_cpu_seconds(self.pid) if self.include_children else cpu_seconds(self.pid)

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        self.used = self._read() - self._start
        return self.used
