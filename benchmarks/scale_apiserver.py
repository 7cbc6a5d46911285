"""The API server's own count of requests (``apiserver_request_total`` on its /metrics), for the
resources the operator reads and writes: what the operator costs the API server, without trusting
the operator's own bookkeeping.

The counter has no client label, so a window is only the operator's when nothing else touches
these resources meanwhile: the scale run measures steady state with only ``kubectl get --raw
/metrics`` (no resource) running, and subtracts its own creates from the registration window.
LIST and WATCH are the watches (kopf's, the Secret cache's, the benchmark's ``kubectl get -w``,
the controller-manager's informers); everything else is a request a bot caused.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

#: The resources the operator itself reads and writes (kopf's and ours); the rest of the API
#: server's traffic (leases, the controller-manager's own objects) is not the operator's.
OPERATOR_RESOURCES = frozenset({"secrets", "telegrambots", "events"})
#: A watch is a LIST (the start, and every re-list) and a WATCH; they grow with namespaces, not bots.
WATCH_VERBS = frozenset({"LIST", "WATCH"})

_PREFIX = "apiserver_request_total{"


@dataclass(frozen=True)
class Key:
    verb: str
    resource: str  # with its subresource: "telegrambots/status"
    code: str

    @property
    def name(self) -> str:
        return f"{self.verb} {self.resource}"


@dataclass
class Requests:
    """Counts by verb, resource and answer code; subtract two snapshots for a window."""

    counts: collections.Counter[Key] = field(default_factory=collections.Counter)

    def __sub__(self, before: Requests) -> Requests:
        out = collections.Counter(self.counts)
        out.subtract(before.counts)
        return Requests(+out)

    def without(self, verb: str, resource: str, count: int) -> Requests:
        """These minus ``count`` successful requests the benchmark made itself (its creates)."""
        out = collections.Counter(self.counts)
        for key in sorted(out, key=lambda k: k.code):
            if count <= 0:
                break
            if key.verb == verb and key.resource == resource and key.code.startswith("2"):
                taken = min(count, out[key])
                out[key] -= taken
                count -= taken
        return Requests(+out)

    def by_name(self, *, watches: bool) -> dict[str, int]:
        """``{"PATCH telegrambots/status": n}``: the watches (LIST, WATCH) or everything else."""
        found: collections.Counter[str] = collections.Counter()
        for key, n in self.counts.items():
            if (key.verb in WATCH_VERBS) == watches:
                found[key.name] += n
        return dict(sorted(found.items()))

    def beyond_watches(self) -> int:
        return sum(self.by_name(watches=False).values())

    def errors(self) -> dict[str, int]:
        """Answers that mean trouble: 429 (throttled), 5xx; and 409 (conflicting writes)."""
        found: collections.Counter[str] = collections.Counter()
        for key, n in self.counts.items():
            if key.code == "429" or key.code.startswith("5") or key.code == "409":
                found[f"{key.code} {key.name}"] += n
        return dict(sorted(found.items()))


def parse(text: str, resources: frozenset[str] = OPERATOR_RESOURCES) -> Requests:
    """The /metrics text -> the counts for ``resources``."""
    counts: collections.Counter[Key] = collections.Counter()
    for line in text.splitlines():
        if not line.startswith(_PREFIX):
            continue
        labels_text, _, value = line.rpartition(" ")
        labels = _labels(labels_text[len(_PREFIX) : -1])
        resource = labels.get("resource", "")
        if resource not in resources:
            continue
        if labels.get("subresource"):
            resource = f"{resource}/{labels['subresource']}"
        counts[Key(labels.get("verb", "?"), resource, labels.get("code", "?"))] += int(float(value))
    return Requests(counts)


def _labels(text: str) -> dict[str, str]:
    # Label values here are names, verbs and codes: no commas or quotes inside them.
    pairs = (part.split("=", 1) for part in text.split(",") if "=" in part)
    return {key: value.strip('"') for key, value in pairs}


async def snapshot(kubectl: Callable[..., Awaitable[str]]) -> Requests:
    """Read the counter now (``kubectl get --raw /metrics``: a non-resource request, not counted)."""
    return parse(await kubectl("get", "--raw", "/metrics"))


async def wait_until_watched(kubectl: Callable[..., Awaitable[str]], resource: str, timeout: float) -> bool:
    """Until someone (on a fresh control plane: the controller-manager's garbage collector, which
    starts watching a new CRD's objects only at its next discovery) holds a WATCH on ``resource``.
    Until then the collector GETs the owner of every new Secret that names one - one request per
    bot that is not the operator's, landing in the steady window. False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watches(await kubectl("get", "--raw", "/metrics"), resource):
            return True
        await asyncio.sleep(2.0)
    return False


def watches(text: str, resource: str) -> int:
    """Open WATCH requests on ``resource`` (``apiserver_longrunning_requests``)."""
    prefix = "apiserver_longrunning_requests{"
    found = 0
    for line in text.splitlines():
        if line.startswith(prefix):
            labels_text, _, value = line.rpartition(" ")
            labels = _labels(labels_text[len(prefix) : -1])
            if labels.get("resource") == resource and labels.get("verb") == "WATCH":
                found += int(float(value))
    return found


def per_bot(counts: Mapping[str, int], bots: int, scale: float = 1.0) -> dict[str, float]:
    return {name: round(n * scale / bots, 3) for name, n in counts.items()}
