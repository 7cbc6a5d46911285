"""The bot's profile (``spec.profile``): commands, names, descriptions, menu button, admin rights.

Each declared thing is an :class:`Item` (commands per scope+language, a name per language, ...)
with the value the spec wants (``profile_items.py``). ``profile_plan.plan`` says what to call;
:func:`reconcile` here makes the calls. Only declared items are read or written; an item the
operator applied and the spec no longer declares is reset; anything else is never touched.

Failures stay per item and never reach the webhook's reconciliation: a ``setMyName`` 429 with a
``retry_after`` of hours holds back that one item while the rest (and the webhook) carry on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .backoff import exponential
from .conditions import rfc3339
from .profile_items import (
    Item,
    UnexpectedAnswer,
    Value,
    after_write,
    parse_read,
    read_call,
    reset_call,
    write_call,
)
from .profile_plan import (
    MAX_MESSAGE,
    ItemProblem,
    ItemState,
    ProblemReason,
    ProfileMemory,
    Read,
    Reset,
    Step,
    Write,
    in_sync,
    plan,
)
from .telegram import BadRequest, BotApiError, NotFound, RetryAfter, Unauthorized

EventType = Literal["Normal", "Warning"]
Event = tuple[EventType, str, str]
Call = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

#: Per pass at most this many profile calls (a big profile spreads over passes a second apart).
MAX_CALLS_PER_PASS = 40
MAX_BACKOFF = timedelta(minutes=5)
#: A rejected value is tried again after this long (or at once when the spec changes it).
REJECTED_RETRY = timedelta(minutes=10)


# --- the executor -----------------------------------------------------------------------------


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    until: datetime | None = None
    calls: int = 0
    token_rejected: bool = False


async def reconcile(
    wanted: Mapping[Item, Value],
    mem: ProfileMemory,
    *,
    call: Call,
    clock: Callable[[], datetime],
    interval: timedelta,
    generation: int | None,
    redact: Callable[[str], str] = lambda text: text,
    read_due: timedelta | None = None,
    read_by: timedelta | None = None,
) -> Outcome:
    """Read, write and reset until the plan is empty (or the pass's call budget is spent);
    ``read_due``/``read_by``: when items are read back (``profile_plan.plan``)."""
    outcome = Outcome()
    now = clock()
    # Forget what is neither declared nor to be reset (a removed entry that never got applied).
    for item in [i for i in mem.items if i not in wanted and i not in mem.applied]:
        del mem.items[item]
    for method in [m for m, until in mem.method_waits.items() if until <= now]:
        del mem.method_waits[method]
    for _ in range(4):  # read, then write what differs, then nothing; a spare round
        steps, until = plan(wanted, mem, clock(), interval, read_due=read_due, read_by=read_by)
        outcome.until = until
        if not steps:
            break
        for step in steps:
            wait = mem.method_waits.get(_method(step))
            if wait is not None and clock() < wait and not isinstance(step, Read):
                continue  # a 429 earlier in this round: the plan of the next round defers it
            if outcome.calls >= MAX_CALLS_PER_PASS:
                outcome.until = clock() + timedelta(seconds=1)
                return outcome
            outcome.calls += 1
            if not await _perform(step, mem, call, clock, interval, outcome, redact):
                outcome.token_rejected = True
                return outcome
    if in_sync(wanted, mem):
        mem.applied_generation = generation
    return outcome


def _method(step: Step) -> str:
    if isinstance(step, Read):
        return read_call(step.item)[0]
    if isinstance(step, Write):
        return write_call(step.item, step.value)[0]
    return reset_call(step.item)[0]


async def _perform(
    step: Step,
    mem: ProfileMemory,
    call: Call,
    clock: Callable[[], datetime],
    interval: timedelta,
    outcome: Outcome,
    redact: Callable[[str], str],
) -> bool:
    """One call; False when the token was refused (the worker's own checks take over)."""
    item = step.item
    st = mem.state(item)
    if isinstance(step, Read):
        method, params = read_call(item)
    elif isinstance(step, Write):
        method, params = write_call(item, step.value)
    else:
        method, params = reset_call(item)
    try:
        result = await call(method, params)
        if isinstance(step, Read):
            st.live, st.read_at = parse_read(item, result), clock()
            mem.checked_at = st.read_at  # (only when read: status is not rewritten every pass)
    except (Unauthorized, NotFound):
        st.live = None
        return False
    except RetryAfter as exc:
        st.live = None if isinstance(step, Read) else st.live
        until = clock() + timedelta(seconds=exc.seconds)
        st.not_before = until
        mem.method_waits[method] = until
        _problem(
            st,
            ItemProblem(
                ProblemReason.RATE_LIMITED,
                f"{method} ({item.describe()}): Telegram asks to wait {exc.seconds:g}s, "
                f"until {rfc3339(until)}",
            ),
            outcome,
        )
        return True
    except BadRequest as exc:
        value = step.value if isinstance(step, Write | Read) else None
        st.not_before = clock() + max(REJECTED_RETRY, interval)
        _problem(
            st,
            ItemProblem(
                ProblemReason.REJECTED,
                f"{method} ({item.describe()}) rejected: {redact(exc.description)}"[:MAX_MESSAGE],
                value,
            ),
            outcome,
        )
        return True
    except (BotApiError, UnexpectedAnswer) as exc:
        st.failures += 1
        delay = exponential(st.failures - 1, base=5.0, cap=MAX_BACKOFF.total_seconds())
        st.not_before = clock() + timedelta(seconds=delay)
        st.live = None if isinstance(step, Read) else st.live
        message = f"{method} ({item.describe()}) failed: {redact(str(exc))}"[:MAX_MESSAGE]
        _problem(st, ItemProblem(ProblemReason.FAILING, message), outcome)
        return True
    # Success.
    st.failures, st.not_before = 0, None
    if st.problem is not None and not isinstance(step, Read):
        st.problem = None
    elif st.problem is not None and st.problem.reason is not ProblemReason.REJECTED:
        st.problem = None  # a read works again; a rejection stays until a write succeeds
    if isinstance(step, Write):
        st.live, st.read_at = after_write(item, step.value, st.live), clock()
        st.written = step.value
        mem.applied.add(item)
        if step.repair:
            outcome.events.append(
                ("Warning", "ProfileDriftRepaired", f"Set the {item.describe()} back to the declared value")
            )
        else:
            outcome.events.append(("Normal", "ProfileApplied", f"Set the {item.describe()}"))
    elif isinstance(step, Reset):
        mem.applied.discard(item)
        mem.items.pop(item, None)
        outcome.events.append(
            ("Normal", "ProfileEntryReset", f"Reset the {item.describe()}: it is no longer in spec.profile")
        )
    return True


def _problem(st: ItemState, problem: ItemProblem, outcome: Outcome) -> None:
    """Record it; an Event only when the kind of trouble changes (not at every retry)."""
    before = st.problem
    st.problem = problem
    if before is None or before.reason is not problem.reason:
        outcome.events.append(("Warning", problem.reason.event_reason, problem.message))
