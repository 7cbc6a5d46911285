"""spec.profile: what the worker remembers of it, the plan of calls, its condition and status. Pure.

:func:`plan` compares the declared items with what was last read back from Telegram and with what
the operator applied before (``status.profile.applied``) and says what to call; ``profile.py``
makes the calls. Only declared items are read or written; an item the operator applied and the
spec no longer declares is reset; anything else is never touched.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import names
from .conditions import Condition, parse_time, rfc3339
from .profile_items import Item, Value, after_write, reset_call, same, write_call

MAX_MESSAGE = 300
#: The worker's reads of the profile, as fractions of the check interval: along with a webhook
#: check once the last read is half an interval old; on their own once it is 1.5 intervals old
#: (the webhook checks are backing off).
ALONG_WITH_CHECKS = (0.5, 1.5)


# --- memory and plan --------------------------------------------------------------------------


class ProblemReason(enum.StrEnum):
    """Why an item is not as declared; the value is the ProfileApplied condition's reason."""

    RATE_LIMITED = "RateLimited"  # flood control: the item waits for retry_after
    REJECTED = "Rejected"  # Telegram refused the value: retried later, or at once with a new value
    FAILING = "Failing"  # anything else: backoff

    @property
    def event_reason(self) -> str:
        """The Warning Event posted when an item gets into this kind of trouble."""
        match self:
            case ProblemReason.RATE_LIMITED:
                return "ProfileRateLimited"
            case ProblemReason.REJECTED:
                return "ProfileRejected"
            case ProblemReason.FAILING:
                return "ProfileCallFailed"


@dataclass(frozen=True)
class ItemProblem:
    reason: ProblemReason
    message: str
    value: Value = None  # Rejected: the value Telegram refused (a new one is tried at once)


@dataclass
class ItemState:
    live: Value = None  # None: not read (or not known since a failure)
    written: Value = None  # what this worker last wrote (a later difference is drift)
    read_at: datetime | None = None
    not_before: datetime | None = None
    failures: int = 0
    problem: ItemProblem | None = None


@dataclass
class ProfileMemory:
    """What the worker knows of the profile: ``applied`` comes from (and goes to) status."""

    applied: set[Item] = field(default_factory=set)
    items: dict[Item, ItemState] = field(default_factory=dict)
    #: Flood control is per method: after a 429 on setMyName no setMyName (any language) until then.
    method_waits: dict[str, datetime] = field(default_factory=dict)
    checked_at: datetime | None = None
    applied_generation: int | None = None
    #: Rebuilt from a previous worker's status and not yet taken up by :func:`resume`.
    from_status: bool = False

    def state(self, item: Item) -> ItemState:
        return self.items.setdefault(item, ItemState())


@dataclass(frozen=True)
class Read:
    item: Item
    value: Value = None  # the declared value (a rejection remembers what it was for)


@dataclass(frozen=True)
class Write:
    item: Item
    value: Value
    repair: bool  # Telegram had something else than what the operator applied before


@dataclass(frozen=True)
class Reset:
    item: Item


Step = Read | Write | Reset


def plan(
    wanted: Mapping[Item, Value],
    mem: ProfileMemory,
    now: datetime,
    interval: timedelta,
    *,
    read_due: timedelta | None = None,
    read_by: timedelta | None = None,
) -> tuple[list[Step], datetime | None]:
    """The calls due now (at most one per item) and when the next one is due otherwise.

    Items are read back when their last read is ``read_due`` old, and a pass is due when one is
    ``read_by`` old (both default to ``interval``). The worker reads them along with its webhook
    check (``read_due`` half an interval then, :data:`ALONG_WITH_CHECKS`): one status write per
    interval, not two.
    """
    due, by = read_due or interval, read_by or interval
    steps: list[Step] = []
    deadlines: list[datetime] = []
    for item in sorted(wanted):
        value = wanted[item]
        st = mem.items.get(item) or ItemState()
        problem = st.problem
        retry_now = (
            problem is not None
            and problem.reason is ProblemReason.REJECTED
            and problem.value is not None
            and problem.value != value
        )
        if st.not_before is not None and now < st.not_before and not retry_now:
            deadlines.append(st.not_before)
            continue
        if st.live is None or st.read_at is None or st.read_at + due <= now:
            steps.append(Read(item, value))
        elif not same(item, value, st.live):
            wait = mem.method_waits.get(write_call(item, value)[0])
            if wait is not None and now < wait:
                deadlines.append(wait)
            else:
                # Drift: Telegram no longer has what was written; a spec change is no repair.
                steps.append(Write(item, value, repair=st.written is not None and st.written == value))
        else:
            deadlines.append(st.read_at + by)
    for item in sorted(mem.applied - set(wanted)):
        st = mem.items.get(item) or ItemState()
        wait = mem.method_waits.get(reset_call(item)[0])
        later = [t for t in (st.not_before, wait) if t is not None and now < t]
        if later:
            deadlines.append(max(later))
        else:
            steps.append(Reset(item))
    return steps, min(deadlines) if deadlines else None


def in_sync(wanted: Mapping[Item, Value], mem: ProfileMemory) -> bool:
    if mem.applied - set(wanted):
        return False
    for item, value in wanted.items():
        st = mem.items.get(item)
        if st is None or st.live is None or st.problem is not None or not same(item, value, st.live):
            return False
    return True


# --- status -----------------------------------------------------------------------------------


def condition(wanted: Mapping[Item, Value], mem: ProfileMemory, declared: bool) -> Condition:
    if not declared and not mem.applied:
        return Condition(
            names.PROFILE_APPLIED,
            "True",
            "NotDeclared",
            "no spec.profile: the operator leaves the profile alone",
        )
    problems = [
        st.problem
        for item, st in sorted(mem.items.items())
        if st.problem is not None and (item in wanted or item in mem.applied)
    ]
    for reason in (ProblemReason.REJECTED, ProblemReason.RATE_LIMITED):
        found = [p.message for p in problems if p.reason is reason]
        if found:
            return Condition(names.PROFILE_APPLIED, "False", str(reason), _join(found))
    if in_sync(wanted, mem):
        count = len(wanted)
        return Condition(
            names.PROFILE_APPLIED,
            "True",
            "Applied",
            f"{count} profile item{'s' if count != 1 else ''} as declared",
        )
    failing = [p.message for p in problems]
    pending = [
        item.describe()
        for item, value in sorted(wanted.items())
        if (st := mem.items.get(item)) is None or st.live is None or not same(item, value, st.live)
    ]
    pending += [f"{item.describe()} (to reset)" for item in sorted(mem.applied - set(wanted))]
    return Condition(
        names.PROFILE_APPLIED,
        "False",
        "Pending",
        _join(failing or [f"not applied yet: {', '.join(pending)}"]),
    )


def _join(messages: Sequence[str]) -> str:
    text = "; ".join(messages[:3])
    if len(messages) > 3:
        text += f"; and {len(messages) - 3} more"
    return text[: MAX_MESSAGE * 2]


def status(mem: ProfileMemory, declared: bool) -> dict[str, Any] | None:
    """``status.profile`` (None when there is no profile to speak of)."""
    if not declared and not mem.applied:
        return None
    out: dict[str, Any] = {"applied": [item.to_status() for item in sorted(mem.applied)]}
    if mem.applied_generation is not None:
        out["appliedGeneration"] = mem.applied_generation
    if mem.checked_at is not None:
        out["lastCheckTime"] = rfc3339(mem.checked_at)
    return out


def memory_from_status(raw: Any) -> ProfileMemory:
    mem = ProfileMemory()
    if not isinstance(raw, Mapping):
        return mem
    for entry in raw.get("applied") or ():
        item = Item.from_status(entry)
        if item is not None:
            mem.applied.add(item)
    generation = raw.get("appliedGeneration")
    mem.applied_generation = generation if isinstance(generation, int) else None
    checked = raw.get("lastCheckTime")
    mem.checked_at = parse_time(checked) if isinstance(checked, str) else None
    mem.from_status = True
    return mem


def resume(
    wanted: Mapping[Item, Value],
    mem: ProfileMemory,
    *,
    generation: int | None,
    now: datetime,
    interval: timedelta,
) -> None:
    """After an operator restart: a profile that status says was applied for this generation is
    taken as live, and read back along with the first webhook check, at a random moment of the
    interval (all items together, one status write), not all bots at once; no setter unless that
    read shows drift. A spec changed
    meanwhile (another generation) is read and applied at once, as on any change."""
    if not mem.from_status:
        return
    mem.from_status = False
    if mem.applied_generation is None or mem.applied_generation != generation:
        return
    # Read back along with the first webhook check (itself at a random moment of the interval).
    read_at = now - interval * ALONG_WITH_CHECKS[0]
    for item, value in wanted.items():
        st = mem.state(item)
        if st.live is None:
            st.live, st.read_at = after_write(item, value, None), read_at
            if item in mem.applied:
                st.written = value  # a later difference is drift, as before the restart
