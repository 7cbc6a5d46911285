"""Kubernetes-style status conditions: build them and merge them into a list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from . import names

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str = ""

    def to_dict(self, *, now: datetime, generation: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": rfc3339(now),
        }
        if generation is not None:
            result["observedGeneration"] = generation
        return result


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """A time as :func:`rfc3339` (or Kubernetes) writes it; None when absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The new conditions list: ``lastTransitionTime`` moves only when ``status`` changes.

    Conditions of types we don't manage are kept as they are; ours come first, in a fixed order.
    """
    old = {str(c.get("type")): dict(c) for c in existing or ()}
    merged: dict[str, dict[str, Any]] = {}
    for condition in updates:
        new = condition.to_dict(now=now, generation=generation)
        previous = old.get(condition.type)
        if previous is not None and previous.get("status") == condition.status:
            new["lastTransitionTime"] = previous.get("lastTransitionTime", new["lastTransitionTime"])
        merged[condition.type] = new
    order: list[str] = [t for t in names.CONDITION_TYPES if t in merged]
    order += [t for t in merged if t not in order]
    result = [merged[t] for t in order]
    result += [c for t, c in old.items() if t not in merged]
    return result


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None
