"""Is Telegram delivering the bot's updates? Judged from getWebhookInfo, check after check. Pure.

getWebhookInfo keeps ``last_error_date``/``last_error_message`` after later deliveries succeed
(until the next setWebhook), so an error on record says nothing by itself. What does:

* the error is *recent*: within the last check interval (Telegram retries a failing webhook
  every 60-120 s at most, the default check interval is 300 s: a webhook that keeps failing
  always shows a recent error);
* the error is *newer than the last success we saw*: a check where nothing was pending, or where
  the pending count went down with no new error since the check before (with short check
  intervals Telegram's retries can be further apart than two checks);
* the pending count *keeps growing*: more at each of :data:`GROWING_CHECKS` checks in a row
  (updates pile up, whatever the error record says).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from . import names
from .conditions import Condition, find, rfc3339
from .redaction import redact
from .telegram import WebhookInfo

#: "Keeps growing": the pending count rose at this many checks in a row.
GROWING_CHECKS = 2
#: Checks are jittered by +-10 %: "within the last check interval" allows for that.
RECENT_SLACK = 1.2
MAX_ERROR_LENGTH = 160

FAILING = "DeliveryFailing"
PILING_UP = "UpdatesPilingUp"
DELIVERING = "Delivering"


@dataclass(frozen=True)
class DeliveryTrack:
    """What the last checks showed (the worker's memory of delivery; lost on restart)."""

    checked_at: datetime
    webhook_url: str
    pending: int
    last_error_date: int | None
    growing_for: int  # checks in a row at which the pending count rose
    last_success_at: datetime | None  # the last check with evidence that a delivery succeeded


def track(previous: DeliveryTrack | None, live: WebhookInfo, now: datetime) -> DeliveryTrack:
    """The track after one more getWebhookInfo answer."""
    if previous is not None and previous.webhook_url != live.url:
        previous = None  # another webhook: Telegram started a new error record too
    pending = live.pending_update_count
    new_error = live.last_error_date is not None and (
        previous is None or live.last_error_date != previous.last_error_date
    )
    growing_for = 0
    if previous is not None and pending > previous.pending:
        growing_for = previous.growing_for + 1
    went_down = previous is not None and pending < previous.pending and not new_error
    succeeded = pending == 0 or went_down
    return DeliveryTrack(
        checked_at=now,
        webhook_url=live.url,
        pending=pending,
        last_error_date=live.last_error_date,
        growing_for=growing_for,
        last_success_at=now if succeeded else (previous.last_success_at if previous else None),
    )


def assess(
    current: DeliveryTrack | None,
    live: WebhookInfo | None,
    *,
    check_interval: timedelta,
    secrets: Sequence[str | None] = (),
) -> Condition:
    """The ``Delivering`` condition at the check ``current`` describes (``live`` is its answer)."""
    if current is None or live is None:
        return Condition(names.DELIVERING, "Unknown", "NotChecked", "getWebhookInfo has not answered yet")
    if not live.url:
        return Condition(names.DELIVERING, "Unknown", "NoWebhook", "Telegram has no webhook for the bot")
    now = current.checked_at
    pending = _pending(current.pending)
    error_date = live.last_error_date
    if error_date is not None:
        at = datetime.fromtimestamp(error_date, UTC)
        recent = at >= now - check_interval * RECENT_SLACK
        since_success = current.last_success_at is not None and at > current.last_success_at
        if recent or since_success:
            text = redact(live.last_error_message or "no message", *secrets)[:MAX_ERROR_LENGTH]
            return Condition(
                names.DELIVERING, "False", FAILING, f"delivery failed at {rfc3339(at)}: {text}; {pending}"
            )
    if current.growing_for >= GROWING_CHECKS and current.pending > 0:
        return Condition(
            names.DELIVERING,
            "False",
            PILING_UP,
            f"{pending}, more at each of the last {current.growing_for} checks",
        )
    return Condition(names.DELIVERING, "True", DELIVERING, f"no recent delivery error; {pending}")


def _pending(count: int) -> str:
    return f"{count} update pending" if count == 1 else f"{count} updates pending"


def transition_event(
    before: str | None, after: Condition
) -> tuple[Literal["Normal", "Warning"], str, str] | None:
    """The Event (type, reason, message) for a change of ``Delivering`` (None: no Event).

    ``before`` is the previous status (None: not known, e.g. the first check of a new worker).
    """
    if after.status == "False" and before != "False":
        return "Warning", after.reason, f"Telegram cannot deliver updates: {after.message}"
    if after.status == "True" and before == "False":
        return "Normal", "DeliveryRecovered", f"Telegram delivers updates again ({after.message})"
    return None


def condition_from_status(conditions: Sequence[Mapping[str, Any]] | None) -> Condition | None:
    """The ``Delivering`` verdict a previous worker wrote: shown until the first check, and a
    restart does not repeat its Event."""
    found = find(conditions, names.DELIVERING)
    if found is None:
        return None
    status = found.get("status")
    if status == "True":
        return Condition(
            names.DELIVERING, "True", str(found.get("reason", "")), str(found.get("message", ""))
        )
    if status == "False":
        return Condition(
            names.DELIVERING, "False", str(found.get("reason", "")), str(found.get("message", ""))
        )
    return None
