"""The token scan: no bot token or secret token in any log line, Event or status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def needles(secrets: Iterable[str]) -> set[str]:
    """Each secret, and for a bot token also its secret half (after the colon)."""
    found: set[str] = set()
    for secret in secrets:
        secret = secret.strip()
        if len(secret) < 8:
            continue
        found.add(secret)
        _, sep, tail = secret.partition(":")
        if sep and len(tail) >= 8:
            found.add(tail)
    return found


def scan(haystacks: Mapping[str, str], secrets: Iterable[str]) -> dict[str, Any]:
    """``{"secrets": n, "sources": {...: lines}, "leaks": [{"where", "line", "secret": "abcd..."}]}``."""
    wanted = needles(secrets)
    leaks: list[dict[str, Any]] = []
    lines = 0
    for where, text in haystacks.items():
        for number, line in enumerate(text.splitlines(), 1):
            lines += 1
            for needle in wanted:
                if needle in line:
                    leaks.append({"where": where, "line": number, "secret": needle[:4] + "..."})
    return {"secrets": len(wanted), "sources": sorted(haystacks), "lines": lines, "leaks": leaks}
