"""The Delivering condition: getWebhookInfo answers, check after check -> the verdict. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tgbot_operator import delivery, names
from tgbot_operator.conditions import Condition
from tgbot_operator.delivery import DeliveryTrack
from tgbot_operator.observation import Memory, memory_from_status
from tgbot_operator.status import build_status
from tgbot_operator.telegram import WebhookInfo

from .test_reconcile import observe, synced

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=300)
URL = "https://bots.example.com/echo"
TOKEN = "123456:AAExampleExampleExampleExampleExample1"
FAILED = "Wrong response from the webhook: 500 Internal Server Error"


def info(pending: int = 0, error_at: datetime | None = None, message: str = FAILED) -> WebhookInfo:
    return WebhookInfo(
        url=URL,
        has_custom_certificate=False,
        pending_update_count=pending,
        last_error_date=int(error_at.timestamp()) if error_at is not None else None,
        last_error_message=message if error_at is not None else None,
    )


def run(*checks: tuple[datetime, WebhookInfo]) -> tuple[DeliveryTrack, Condition]:
    """Feed the checks in order; the track and the verdict after the last one."""
    seen: DeliveryTrack | None = None
    verdict: Condition | None = None
    for at, live in checks:
        seen = delivery.track(seen, live, at)
        verdict = delivery.assess(seen, live, check_interval=INTERVAL, secrets=(TOKEN,))
    assert seen is not None
    assert verdict is not None
    return seen, verdict


def test_nothing_pending_no_error_is_delivering() -> None:
    _, verdict = run((T0, info()))
    assert (verdict.type, verdict.status, verdict.reason) == ("Delivering", "True", "Delivering")
    assert verdict.message == "no recent delivery error; 0 updates pending"


def test_a_recent_error_is_not_delivering_and_says_what_telegram_saw() -> None:
    _, verdict = run((T0, info(pending=1, error_at=T0 - timedelta(seconds=40))))
    assert (verdict.status, verdict.reason) == ("False", "DeliveryFailing")
    assert verdict.message == f"delivery failed at 2026-03-01T11:59:20Z: {FAILED}; 1 update pending"


def test_an_old_error_with_nothing_pending_is_history() -> None:
    # Telegram keeps last_error_date after later deliveries succeed: an old one means nothing.
    _, verdict = run((T0, info(pending=0, error_at=T0 - 2 * INTERVAL)))
    assert verdict.status == "True"


def test_an_error_after_the_last_success_seen_stays_false_between_retries() -> None:
    # Short check intervals: Telegram's retries are further apart than a check interval.
    short = timedelta(seconds=2)
    first_error = T0 + timedelta(seconds=3)
    checks = [
        (T0, info(pending=0)),
        (T0 + timedelta(seconds=4), info(pending=1, error_at=first_error)),
        (T0 + timedelta(seconds=30), info(pending=1, error_at=first_error)),  # no retry since
    ]
    seen: DeliveryTrack | None = None
    statuses = []
    for at, live in checks:
        seen = delivery.track(seen, live, at)
        statuses.append(delivery.assess(seen, live, check_interval=short).status)
    assert statuses == ["True", "False", "False"]


def test_recovery_once_the_pending_updates_are_delivered() -> None:
    error_at = T0 + timedelta(seconds=10)
    checks = [
        (T0, info(pending=0)),
        (T0 + timedelta(seconds=300), info(pending=2, error_at=error_at)),
        # Fixed: everything delivered, the error record stays (and is older than a check interval).
        (T0 + timedelta(seconds=600), info(pending=0, error_at=error_at)),
    ]
    _, verdict = run(*checks)
    assert (verdict.status, verdict.reason) == ("True", "Delivering")


def test_pending_going_down_without_a_new_error_counts_as_success() -> None:
    error_at = T0 - timedelta(seconds=10)
    seen, _ = run(
        (T0, info(pending=5, error_at=error_at)), (T0 + INTERVAL, info(pending=3, error_at=error_at))
    )
    assert seen.last_success_at == T0 + INTERVAL
    # ...but not when a new error came with it (one chat flows, another is blocked).
    seen, verdict = run(
        (T0, info(pending=5, error_at=error_at)),
        (T0 + INTERVAL, info(pending=3, error_at=T0 + INTERVAL - timedelta(seconds=5))),
    )
    assert seen.last_success_at is None
    assert verdict.status == "False"


def test_pending_that_keeps_growing_is_not_delivering_even_without_an_error() -> None:
    at = [T0 + i * INTERVAL for i in range(4)]
    _, once = run((at[0], info(pending=1)), (at[1], info(pending=4)))
    assert once.status == "True"  # growing once is traffic, not a problem
    _, verdict = run((at[0], info(pending=1)), (at[1], info(pending=4)), (at[2], info(pending=9)))
    assert (verdict.status, verdict.reason) == ("False", "UpdatesPilingUp")
    assert verdict.message == "9 updates pending, more at each of the last 2 checks"
    _, steady = run(
        (at[0], info(pending=1)), (at[1], info(pending=4)), (at[2], info(pending=9)), (at[3], info(9))
    )
    assert steady.status == "True"


def test_a_new_webhook_url_starts_a_new_track() -> None:
    seen, _ = run((T0, info(pending=3)), (T0 + INTERVAL, info(pending=7)))
    assert seen.growing_for == 1
    other = WebhookInfo(
        url="https://elsewhere.example.com/x", has_custom_certificate=False, pending_update_count=9
    )
    moved = delivery.track(seen, other, T0 + 2 * INTERVAL)
    assert moved.growing_for == 0
    assert moved.webhook_url == other.url


def test_no_webhook_and_not_checked_are_unknown() -> None:
    none = WebhookInfo(url="", has_custom_certificate=False, pending_update_count=0)
    seen = delivery.track(None, none, T0)
    assert delivery.assess(seen, none, check_interval=INTERVAL).reason == "NoWebhook"
    assert delivery.assess(None, None, check_interval=INTERVAL).status == "Unknown"


def test_the_error_message_is_redacted_and_short() -> None:
    message = f"Failed to connect to https://x/bot{TOKEN}/hook " + "x" * 500
    _, verdict = run((T0, info(pending=1, error_at=T0, message=message)))
    assert verdict.status == "False"
    assert TOKEN not in verdict.message
    assert TOKEN.partition(":")[2] not in verdict.message
    assert len(verdict.message) < 260


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.one_of(st.none(), st.integers(-900, 0))), min_size=1, max_size=8
    )
)
def test_any_history_gives_a_verdict_that_follows_the_rules(steps: list[tuple[int, int | None]]) -> None:
    seen: DeliveryTrack | None = None
    for i, (pending, error_offset) in enumerate(steps):
        at = T0 + i * INTERVAL
        error_at = at + timedelta(seconds=error_offset) if error_offset is not None else None
        live = info(pending=pending, error_at=error_at)
        seen = delivery.track(seen, live, at)
        verdict = delivery.assess(seen, live, check_interval=INTERVAL)
        recent = error_offset is not None and error_offset >= -INTERVAL.total_seconds() * 1.2
        if recent:
            assert verdict.status == "False"
        if error_offset is None and seen.growing_for < 2:
            assert verdict.status == "True"
        if pending == 0 and not recent:
            assert verdict.status == "True"


def test_events_on_transitions_only() -> None:
    false = Condition(names.DELIVERING, "False", "DeliveryFailing", "delivery failed at ...")
    true = Condition(names.DELIVERING, "True", "Delivering", "no recent delivery error; 0 updates pending")
    assert delivery.transition_event(None, true) is None
    assert delivery.transition_event("True", true) is None
    assert delivery.transition_event("False", false) is None
    warning = delivery.transition_event("True", false)
    assert warning is not None
    assert warning[:2] == ("Warning", "DeliveryFailing")
    assert delivery.transition_event(None, false) is not None
    normal = delivery.transition_event("False", true)
    assert normal is not None
    assert normal[:2] == ("Normal", "DeliveryRecovered")


def test_status_shows_delivering_beside_ready_and_ready_ignores_it() -> None:
    obs = observe()
    mem = synced(obs)
    mem.delivering = Condition(names.DELIVERING, "False", "DeliveryFailing", "delivery failed at ...")
    status = build_status(obs, mem, secret_name="echo-webhook", existing_conditions=None)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Delivering"]["status"] == "False"
    assert conds["Ready"]["status"] == "True"  # the operator's work is done; the bot is unhealthy
    unchecked = build_status(obs, Memory(), secret_name="echo-webhook", existing_conditions=None)
    assert {c["type"]: c for c in unchecked["conditions"]}["Delivering"]["reason"] == "NotChecked"
    # A restarted worker remembers the verdict (and does not repeat the Event).
    again = memory_from_status(json.loads(json.dumps(status)))
    assert again.delivering is not None
    assert (again.delivering.status, again.delivering.reason) == ("False", "DeliveryFailing")
    assert delivery.transition_event(again.delivering.status, mem.delivering) is None
