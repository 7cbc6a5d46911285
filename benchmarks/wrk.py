"""Closed-loop load with wrk and our Lua script (a JSON summary from its ``done`` hook)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from . import tools
from .updates import SECRET_TOKEN

SCRIPT = Path(__file__).with_name("wrk_post.lua")


def command(url: str, connections: int, duration: float, threads: int = 1) -> list[str]:
    binary = tools.wrk()
    if binary is None:
        raise RuntimeError(f"wrk not found: {tools.INSTALL_HINT}")
    return [
        str(binary),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
    ]


def parse(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            errors = data["errors"]
            data["non_2xx"] = errors["status"]
            data["errors"] = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
            return data
    raise RuntimeError(f"no summary from wrk:\n{stdout[-2000:]}")


def popen(url: str, connections: int, duration: float, first_id: int) -> subprocess.Popen[str]:
    env = {**os.environ, "WRK_SECRET": SECRET_TOKEN, "WRK_FIRST_ID": str(first_id)}
    return subprocess.Popen(
        command(url, connections, duration),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
