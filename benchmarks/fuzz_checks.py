"""One fuzz request on the wire and what its answers must be; afterwards, what the upstream got.

For every request: no 500 and no 5xx but 501/505 (the upstream never fails here); a request that
must be refused is not forwarded; a request that must pass is answered 200 and forwarded. Then
everything the upstream got must be a JSON object with an integer update_id and no secret header.
"""

from __future__ import annotations

import collections
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .fuzz_cases import Case


@dataclass
class Tally:
    sent: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    closed_by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    must_forward: list[int] = field(default_factory=list)
    must_refuse: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def exchange(port: int, case: Case, timeout: float = 10.0) -> list[int]:
    """Send ``case``; the statuses of all answers until the sidecar closes (or stays silent)."""
    family = socket.AF_INET6 if ":" in case.source else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.bind((case.source, 0))
        sock.connect(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
        try:
            sock.sendall(case.raw)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the sidecar may close early (413 before the body): then read its answer
        data = b""
        statuses: list[int] = []
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head = data[:end].decode("latin-1")
                statuses.append(int(head.split(" ", 2)[1]))
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if len(data) >= end + 4 + length:
                    data = data[end + 4 + length :]
                    informational = statuses[-1] < 200  # 100 Continue: the answer follows
                    done = not informational and ("connection: close" in head.lower() or not case.half_close)
                    if done and not data:
                        return statuses
                    continue
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return statuses
            if not chunk:
                return statuses
            data += chunk


def check(case: Case, statuses: list[int], tally: Tally) -> None:
    statuses = [s for s in statuses if s >= 200]  # 100 Continue is not an answer
    tally.sent += 1
    tally.kinds[case.kind] += 1
    for status in statuses or [0]:
        tally.statuses[str(status) if status else "closed"] += 1
    if not statuses:
        tally.closed_by_kind[case.kind] += 1
    bad = [s for s in statuses if s == 500 or (s >= 500 and s not in (501, 505))]
    if bad:
        tally.failures.append(f"{case.kind}: 5xx {bad} for {case.raw[:300]!r}")
    if case.must_forward:
        tally.must_forward.append(case.update_id or 0)
        if statuses[:1] != [200]:
            tally.failures.append(f"{case.kind}: valid update answered {statuses} for {case.raw[:300]!r}")
    if case.must_refuse and case.update_id is not None:
        tally.must_refuse.append(case.update_id)
        if 200 in statuses:
            tally.failures.append(f"{case.kind}: refused update answered 200 {case.raw[:300]!r}")


def verify_upstream(record: Path, tally: Tally) -> dict[str, Any]:
    got: list[int] = []
    invalid: list[str] = []
    for line in record.read_text().splitlines() if record.exists() else []:
        item = json.loads(line)
        head, body = item["head"].lower(), item["body"].encode("latin-1")
        if "x-telegram-bot-api-secret-token" in head:
            invalid.append("secret header forwarded")
        try:
            # The sidecar's own parser (strict JSON, nesting to 1024 levels): the stdlib's would hit
            # Python's recursion limit on a deeply nested, yet valid, forwarded update.
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            invalid.append(f"not JSON: {body[:80]!r}")
            continue
        uid = obj.get("update_id") if isinstance(obj, dict) else None
        if not isinstance(uid, int) or isinstance(uid, bool):
            invalid.append(f"no integer update_id: {body[:80]!r}")
            continue
        got.append(uid)
    received = set(got)
    return {
        "forwarded": len(got),
        "invalid_forwarded": invalid[:20],
        "invalid_forwarded_count": len(invalid),
        "refused_but_forwarded": sorted(set(tally.must_refuse) & received)[:20],
        "valid_not_forwarded": sorted(set(tally.must_forward) - received)[:20],
    }
