"""Statistics over rounds, tables and JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def summary(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max (what we report of several rounds on a noisy machine)."""
    data = sorted(v for v in values if v == v)  # drop NaN
    if not data:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(data), "min": data[0], "max": data[-1], "n": len(data)}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def fmt_range(stats: dict[str, float], scale: float = 1.0, digits: int = 0) -> str:
    """``median [min-max]`` scaled, e.g. seconds -> microseconds."""
    if not stats.get("n"):
        return "-"
    median, low, high = (stats[k] * scale for k in ("median", "min", "max"))
    if stats["n"] == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    info: dict[str, Any] = {
        "host": platform.node(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return info


def write_json(name: str, data: dict[str, Any], results: Path | None = None) -> Path:
    folder = results or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{name}-{stamp}.json"
    text = json.dumps(data, indent=2, default=str)
    path.write_text(text)
    (folder / f"{name}-latest.json").write_text(text)
    return path
