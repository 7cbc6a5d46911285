"""What a reliability run found: every update_id handled exactly once (but for those a SIGKILL
caught between handling and answering), and its table."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from . import report


def read_records(path: Path) -> list[tuple[int, int]]:
    """The bot's records: (update_id, pid of the process that handled it), in handling order."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        update_id, pid = line.split()
        records.append((int(update_id), int(pid)))
    return records


def analyse(ids: list[int], records: list[tuple[int, int]], killed: set[int]) -> dict[str, Any]:
    counts = collections.Counter(u for u, _ in records)
    first_pid: dict[int, int] = {}
    for update_id, pid in records:
        first_pid.setdefault(update_id, pid)
    expected = set(ids)
    duplicates = {u: n for u, n in counts.items() if n > 1}
    return {
        "injected": len(ids),
        "handled_distinct": len(set(counts) & expected),
        "lost": sorted(expected - set(counts))[:50],
        "lost_count": len(expected - set(counts)),
        "unexpected": len(set(counts) - expected),
        "duplicates": len(duplicates),
        # A duplicate whose first handling was in a process that was then SIGKILLed: handled, but
        # killed before its answer left - Telegram's at-least-once retry, not the sidecar's doing.
        "duplicates_after_kill": sum(1 for u in duplicates if first_pid[u] in killed),
        "exactly_once": not duplicates and expected <= set(counts),
        # Exactly once except for updates a SIGKILL caught between handling and answering.
        "exactly_once_outside_kills": expected <= set(counts)
        and all(first_pid[u] in killed for u in duplicates),
    }


def render(r: dict[str, Any]) -> str:
    rows = [
        ("updates injected / chats", f"{r['injected']} / {r['chats']}"),
        ("bot SIGKILLs / starts", f"{r['kills']} / {r['bot_starts']}"),
        ("secret-token rotations (versions seen)", f"{r['rotations']} ({r['secret_token_versions_seen']})"),
        ("rotation durations s", ", ".join(f"{x:.1f}" for x in r["rotation_seconds"])),
        ("handled distinct", r["handled_distinct"]),
        ("lost", r["lost_count"]),
        ("duplicates (after a kill mid-answer)", f"{r['duplicates']} ({r['duplicates_after_kill']})"),
        ("exactly once", "yes" if r["exactly_once"] else "no"),
        ("exactly once but for updates a kill caught", "yes" if r["exactly_once_outside_kills"] else "NO"),
        (
            "emulator: delivery attempts / failed (last 10,000)",
            f"{r['delivery_attempts']} / {r['failed_attempts']}",
        ),
        ("failed attempts by answer", json.dumps(r["failures"])),
        ("401 during rotations", r["rejected_401"]),
        ("sidecar requests by outcome", json.dumps(r["sidecar_requests"])),
        ("setWebhook calls", r["set_webhook_calls"]),
        ("injected in / all handled in s", f"{r['injected_in_s']:.1f} / {r['all_handled_in_s']:.1f}"),
        (
            "token scan: lines, secrets, leaks",
            f"{r['token_scan']['lines']}, {r['token_scan']['secrets']}, {len(r['token_scan']['leaks'])}",
        ),
    ]
    return report.table(["figure", "value"], rows)
