"""External tools (nginx, wrk): where they are, and how to get them."""

from __future__ import annotations

import shutil
from pathlib import Path

INSTALL_HINT = (
    "install them with `sudo hack/install-bench-tools.sh` (Debian/Ubuntu: apt-get install -y nginx-light wrk)"
)


def nginx() -> Path | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    return Path(found) if found else None


def wrk() -> Path | None:
    found = shutil.which("wrk")
    return Path(found) if found else None


def missing() -> list[str]:
    return [name for name, path in (("nginx", nginx()), ("wrk", wrk())) if path is None]
