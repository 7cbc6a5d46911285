"""What a step's outcome changes: the worker's memory and its backoff (and, in
``record_secret.py``, the generated Secret's rotation and renewal transitions).

Pure: no I/O, no clock, no randomness of its own; it changes only the
:class:`~observation.Memory` it is given.

``execute.py`` performs a step and returns an :data:`Outcome`; :func:`record` turns it into memory
and the Events and log lines to emit; ``record_secret.secret_after`` is the Secret a step writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, assert_never

from . import delivery
from .actions import (
    ActionKind,
    GetWebhookInfo,
    Purpose,
    SetWebhook,
    Step,
)
from .backoff import BOT_API_CAP, KUBERNETES_CAP, exponential
from .observation import Failure, FailureKind, LocalFailure, Memory, Observation, Timing
from .registration import Registration
from .telegram import BotUser, ErrorKind, WebhookInfo

EventType = Literal["Normal", "Warning"]
Event = tuple[EventType, str, str]
MAX_BACKOFF = timedelta(seconds=BOT_API_CAP)
#: Failures worth a slower start: the request itself (or the allow-list) is wrong.
_SLOW_START = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.SERVER_NOT_ALLOWED})

# --- outcomes (what execute.py returns) -------------------------------------------------------


@dataclass(frozen=True)
class Identified:
    """getMe accepted the token."""

    me: BotUser


@dataclass(frozen=True)
class Looked:
    """getWebhookInfo answered."""

    live: WebhookInfo


@dataclass(frozen=True)
class Conflicted:
    """Someone wrote the Secret between our read and our write: look again (no failure)."""

    message: str


@dataclass(frozen=True)
class Failed:
    kind: FailureKind
    message: str  # redacted
    retry_after: float | None = None  # flood control: exactly this long, no backoff


@dataclass(frozen=True)
class Registered:
    """setWebhook succeeded; ``then``: how completing a rotation (a Secret write) went."""

    registration: Registration
    then: Failed | Conflicted | None = None


@dataclass(frozen=True)
class SecretWritten:
    event: Event | None


Outcome = Identified | Looked | Registered | SecretWritten | Conflicted | Failed


@dataclass
class Recorded:
    """What to emit for an outcome (the worker posts Events, writes logs and counts metrics)."""

    metric: str = "ok"  # tgbot_operator_reconciles_total{outcome=...}: ok, error, Conflict
    events: list[Event] = field(default_factory=list)
    logs: list[tuple[int, str]] = field(default_factory=list)
    warning: Event | None = None  # a failure's Warning: posted once per distinct text


# --- memory -----------------------------------------------------------------------------------


def record(
    mem: Memory,
    step: Step,
    outcome: Outcome,
    *,
    obs: Observation,
    now: datetime,
    timing: Timing,
    uniform: Callable[[float, float], float],
) -> Recorded:
    """Remember what ``step`` achieved (or how it failed: backoff) and say what to emit."""
    match outcome:
        case Failed():
            return record_failure(
                mem, step.kind, outcome, now=now, token_hash=obs.token_hash, uniform=uniform
            )
        case Conflicted(message=message):
            return Recorded("Conflict", logs=[(logging.INFO, f"Retrying after a write conflict: {message}")])
        case Identified(me=me):
            done = _identified(mem, me, obs)
        case Looked(live=live):
            assert isinstance(step, GetWebhookInfo)
            done = _looked(mem, live, obs, timing, uniform, periodic=step.periodic)
        case Registered(registration=registration, then=then):
            assert isinstance(step, SetWebhook)
            done = _registered(mem, step, registration, obs.now)
            if then is not None:
                after = record(mem, step, then, obs=obs, now=now, timing=timing, uniform=uniform)
                return Recorded(
                    after.metric, done.events + after.events, done.logs + after.logs, after.warning
                )
        case SecretWritten(event=event):
            done = Recorded(events=[event] if event is not None else [])
        case _:
            assert_never(outcome)
    _succeeded(mem, step.kind)
    return done


def _succeeded(mem: Memory, action: ActionKind) -> None:
    """``action`` worked: its own failures are over (another kind's are not)."""
    mem.failures_in_a_row.pop(action, None)
    if mem.failure is not None and mem.failure.action is action:
        mem.failure = None


def failure_delay(kind: FailureKind, attempt: int, uniform: Callable[[float, float], float]) -> float:
    """Seconds until the retry of a failure of ``kind`` (``attempt`` 0: the first retry), jittered.

    Kubernetes failures stay below :data:`~backoff.KUBERNETES_CAP`: once the API server is back
    every worker has retried within 30 s. Bot API failures back off further (Telegram's sake);
    a request that is itself wrong starts slower.
    """
    base = 5.0 if kind in _SLOW_START else 1.0
    cap = KUBERNETES_CAP if kind is LocalFailure.KUBERNETES else BOT_API_CAP
    return exponential(attempt, base=base, cap=cap) * uniform(0.8, 1.2)


def record_failure(
    mem: Memory,
    action: ActionKind,
    failed: Failed,
    *,
    now: datetime,
    token_hash: str | None,
    uniform: Callable[[float, float], float],
) -> Recorded:
    """A rejected token waits for a new one (no backoff); anything else backs off, jittered."""
    failure = Failure(action=action, kind=failed.kind, message=failed.message, at=now, token_hash=token_hash)
    if failure.rejects_token:
        mem.auth_failure = failure
        mem.me = None
    else:
        mem.failure = failure
        attempt = mem.failures_in_a_row.get(action, 0)
        mem.failures_in_a_row[action] = attempt + 1
        if failed.retry_after is not None:
            # Never before Telegram's retry_after; a little after, so that the bots it stopped
            # together do not all come back in the same second.
            delay = failed.retry_after * uniform(1.0, 1.1)
            mem.flood_until = now + timedelta(seconds=failed.retry_after)
        else:
            delay = failure_delay(failed.kind, attempt, uniform)
        mem.not_before = now + timedelta(seconds=delay)
    text = f"{action} failed: {failed.message}"
    reason = "Unauthorized" if failure.rejects_token else f"{action}Failed"
    return Recorded(
        "error", logs=[(logging.WARNING, f"{text} ({failed.kind})")], warning=("Warning", reason, text)
    )


def clear_observe_failure(mem: Memory) -> None:
    """The reads worked again: a failure of theirs no longer holds the worker back (its backoff
    is over at once: the API server is back); another kind's failure still does."""
    if mem.failure is not None and mem.failure.action is ActionKind.OBSERVE:
        mem.not_before = None
    _succeeded(mem, ActionKind.OBSERVE)


def observe_failed(
    mem: Memory, kind: LocalFailure, message: str, *, now: datetime, uniform: Callable[[float, float], float]
) -> Recorded:
    return record_failure(
        mem, ActionKind.OBSERVE, Failed(kind, message), now=now, token_hash=None, uniform=uniform
    )


def _identified(mem: Memory, me: BotUser, obs: Observation) -> Recorded:
    changed = mem.me_token_hash is not None and mem.me_token_hash != obs.token_hash
    mem.me, mem.me_token_hash, mem.auth_failure = me, obs.token_hash, None
    done = Recorded(logs=[(logging.INFO, f"Bot token is valid: @{me.username} (id {me.id})")])
    if changed:
        done.events.append(("Normal", "TokenChanged", f"The bot token changed; it belongs to @{me.username}"))
    return done


def place_resumed_checks(
    mem: Memory, *, now: datetime, timing: Timing, uniform: Callable[[float, float], float]
) -> None:
    """A worker that starts with the last check's record (an operator restart): its first check
    at a random moment of the interval, so that N bots cost N getWebhookInfo spread over it - but
    not within half an interval of the last check, so a bot checked just before the restart is
    not checked again at once. (Placing it an interval after the last check instead kept the
    checks of bots registered together together: their scheduled, spread checks are not in
    status, only the last one.)"""
    if mem.live is None or not mem.live_from_status or mem.next_live_check is not None:
        return
    interval = timing.check_interval
    earliest = now if mem.live_at is None else max(now, mem.live_at + interval / 2)
    mem.next_live_check = earliest + (now + interval - earliest) * uniform(0.0, 1.0)


def _looked(
    mem: Memory,
    live: WebhookInfo,
    obs: Observation,
    timing: Timing,
    uniform: Callable[[float, float], float],
    *,
    periodic: bool,
) -> Recorded:
    same_bot = mem.live_token_hash == obs.token_hash
    mem.live, mem.live_at, mem.live_token_hash = live, obs.now, obs.token_hash
    mem.live_from_status = False
    mem.delivery = delivery.track(mem.delivery if same_bot else None, live, obs.now)
    token = obs.token if isinstance(obs.token, str) else None
    verdict = delivery.assess(mem.delivery, live, check_interval=timing.check_interval, secrets=(token,))
    before = mem.delivering.status if mem.delivering is not None else None
    mem.delivering = verdict
    done = Recorded()
    event = delivery.transition_event(before, verdict)
    if event is not None:
        type_, reason, message = event
        done.events.append(event)
        done.logs.append((logging.WARNING if type_ == "Warning" else logging.INFO, f"{message} ({reason})"))
    # After a scheduled check the next one an interval later (+-10 %); after any other look (a
    # start, a registration) at a random moment of the interval: checks of bots that started
    # together spread over the interval instead of coming back together, interval after interval.
    spread = uniform(0.9, 1.1) if periodic else uniform(0.0, 1.0)
    mem.next_live_check = obs.now + timing.check_interval * spread
    return done


def _registered(mem: Memory, step: SetWebhook, registration: Registration, now: datetime) -> Recorded:
    mem.registration = registration
    mem.next_live_check = None  # look at the result
    if step.purpose is Purpose.REPAIR_401:
        mem.last_401_repair_at = now
    event: Event
    match step.purpose:
        case Purpose.DRIFT | Purpose.REPAIR_401:
            event = ("Warning", "WebhookDriftRepaired", f"Re-registered the webhook: {step.reason}")
        case Purpose.ROTATION:
            event = ("Normal", "SecretTokenRotated", "Registered the webhook with the new secret token")
        case Purpose.REGISTER | Purpose.UPDATE:
            event = ("Normal", "WebhookRegistered", f"Registered webhook {step.params.url}: {step.reason}")
        case _:
            assert_never(step.purpose)
    line = f"setWebhook {step.params.url} ({step.purpose.shown}: {step.reason})"
    return Recorded(events=[event], logs=[(logging.INFO, line)])
