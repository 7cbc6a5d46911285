"""record.py and record_secret.py: what an outcome changes (pure; no I/O, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tgbot_operator.actions import (
    ActionKind,
    GetMe,
    GetWebhookInfo,
    Purpose,
    RetirePreviousToken,
    SetWebhook,
    StartRotation,
    Step,
    Trigger,
    Wait,
)
from tgbot_operator.backoff import BOT_API_CAP, KUBERNETES_CAP, exponential
from tgbot_operator.observation import Failure, LocalFailure, Memory
from tgbot_operator.reconcile import desired
from tgbot_operator.record import (
    Conflicted,
    Failed,
    Identified,
    Looked,
    Registered,
    SecretWritten,
    clear_observe_failure,
    failure_delay,
    observe_failed,
    place_resumed_checks,
    record,
)
from tgbot_operator.record_secret import Fresh, rotation_completed, secret_after
from tgbot_operator.registration import Registration
from tgbot_operator.telegram import BotUser, ErrorKind
from tgbot_operator.webhook_secret import RotationPhase

from .test_reconcile import NOW, TIMING, live_for, observe, secret


def no_jitter(low: float, high: float) -> float:
    return 1.0


def failure_of(mem: Memory) -> Failure | None:
    return mem.failure  # (read anew: record() changed it)


def set_webhook(purpose: Purpose) -> SetWebhook:
    wanted = desired(observe())
    assert wanted is not None
    return SetWebhook(wanted[0], wanted[1], "because", purpose=purpose)


def test_the_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    assert [exponential(n, base=1.0, cap=300.0) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert exponential(10_000, base=5.0, cap=300.0) == 300.0  # no huge integers on the way


def test_failures_back_off_jittered_and_success_clears_them() -> None:
    mem, obs = Memory(), observe()
    delays = []
    for _ in range(4):
        done = record(
            mem,
            GetMe(),
            Failed(ErrorKind.SERVER_ERROR, "getMe: 502"),
            obs=obs,
            now=NOW,
            timing=TIMING,
            uniform=no_jitter,
        )
        assert mem.not_before is not None
        delays.append((mem.not_before - NOW).total_seconds())
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert done.metric == "error"
    assert done.warning == ("Warning", "GetMeFailed", "GetMe failed: getMe: 502")
    assert mem.failure is not None
    assert mem.failure.action is ActionKind.GET_ME
    done = record(
        mem, GetMe(), Identified(BotUser(1, "b")), obs=obs, now=NOW, timing=TIMING, uniform=no_jitter
    )
    assert (done.metric, failure_of(mem), mem.failures_in_a_row) == ("ok", None, {})


@pytest.mark.parametrize(
    ("failed", "first_delay"),
    [
        (Failed(ErrorKind.BAD_REQUEST, "400"), 5.0),
        (Failed(ErrorKind.SERVER_NOT_ALLOWED, "no"), 5.0),
        (Failed(ErrorKind.NETWORK_ERROR, "timed out"), 1.0),
        (Failed(LocalFailure.KUBERNETES, "409"), 1.0),
        (Failed(ErrorKind.RETRY_AFTER, "429", retry_after=42.0), 42.0),
    ],
)
def test_the_first_delay_depends_on_the_kind(failed: Failed, first_delay: float) -> None:
    mem = Memory()
    record(mem, GetMe(), failed, obs=observe(), now=NOW, timing=TIMING, uniform=no_jitter)
    assert mem.not_before == NOW + timedelta(seconds=first_delay)


def test_a_rejected_token_waits_for_a_new_one_without_backoff() -> None:
    obs = observe()
    mem = Memory(me=BotUser(1, "b"))
    done = record(
        mem,
        GetMe(),
        Failed(ErrorKind.UNAUTHORIZED, "401"),
        obs=obs,
        now=NOW,
        timing=TIMING,
        uniform=no_jitter,
    )
    assert mem.auth_failure is not None
    assert mem.auth_failure.token_hash == obs.token_hash
    assert (mem.me, mem.not_before, mem.failure) == (None, None, None)
    assert done.warning is not None
    assert done.warning[1] == "Unauthorized"


def test_a_conflict_is_no_failure() -> None:
    mem = Memory()
    done = record(mem, GetMe(), Conflicted("409"), obs=observe(), now=NOW, timing=TIMING, uniform=no_jitter)
    assert (done.metric, mem.failure, mem.not_before) == ("Conflict", None, None)


@pytest.mark.parametrize(
    ("purpose", "event"),
    [
        (Purpose.REGISTER, "WebhookRegistered"),
        (Purpose.UPDATE, "WebhookRegistered"),
        (Purpose.DRIFT, "WebhookDriftRepaired"),
        (Purpose.REPAIR_401, "WebhookDriftRepaired"),
        (Purpose.ROTATION, "SecretTokenRotated"),
    ],
)
def test_a_registration_is_remembered_with_its_event(purpose: Purpose, event: str) -> None:
    step, mem = set_webhook(purpose), Memory(next_live_check=NOW)
    registration = Registration(step.fingerprint, NOW, step.params.url)
    done = record(
        mem, step, Registered(registration), obs=observe(), now=NOW, timing=TIMING, uniform=no_jitter
    )
    assert (mem.registration, mem.next_live_check) == (registration, None)
    assert [e[1] for e in done.events] == [event]
    assert mem.last_401_repair_at == (NOW if purpose is Purpose.REPAIR_401 else None)


def test_a_registration_whose_rotation_write_failed_is_remembered_and_backs_off() -> None:
    step, mem = set_webhook(Purpose.ROTATION), Memory()
    registration = Registration(step.fingerprint, NOW, step.params.url)
    then = Failed(LocalFailure.KUBERNETES, "the API server is down")
    done = record(
        mem, step, Registered(registration, then), obs=observe(), now=NOW, timing=TIMING, uniform=no_jitter
    )
    assert mem.registration == registration
    assert done.metric == "error"
    assert mem.failure is not None
    assert mem.failure.action is ActionKind.SET_WEBHOOK


@pytest.mark.parametrize(
    ("step", "low", "high"),
    [
        (GetWebhookInfo("periodic check", periodic=True), 0.9, 1.1),
        # A first look, the look after a registration: anywhere in the interval, so that bots
        # started together do not check together from then on.
        (GetWebhookInfo("first look"), 0.0, 1.0),
    ],
)
def test_a_look_schedules_the_next_one_jittered(step: GetWebhookInfo, low: float, high: float) -> None:
    obs = observe()
    for pick, factor in ((lambda a, b: a, low), (lambda a, b: b, high)):
        mem = Memory(live_from_status=True)
        record(mem, step, Looked(live_for(obs)), obs=obs, now=NOW, timing=TIMING, uniform=pick)
        assert mem.next_live_check == NOW + TIMING.check_interval * factor
        assert (mem.live_at, mem.live_from_status) == (NOW, False)
        assert mem.delivering is not None


def test_a_resumed_worker_places_its_first_check_at_random_in_the_interval() -> None:
    """The record is older than an interval (the operator was down): at a random moment of the
    interval from now, not at once."""
    obs = observe()
    mem = Memory(live=live_for(obs), live_at=NOW - timedelta(hours=3), live_from_status=True)
    place_resumed_checks(mem, now=NOW, timing=TIMING, uniform=lambda a, b: (a + b) / 4)
    assert mem.next_live_check == NOW + TIMING.check_interval * 0.25
    fresh = Memory()  # a new bot: its first look is at once (nothing to place)
    place_resumed_checks(fresh, now=NOW, timing=TIMING, uniform=lambda a, b: b)
    assert fresh.next_live_check is None


def test_a_resumed_worker_checked_moments_ago_is_not_checked_within_half_an_interval() -> None:
    """A bot checked just before the restart: its next check between half an interval after that
    check and one interval from now, not at a moment that may be seconds away."""
    obs = observe()
    checked = NOW - timedelta(seconds=2)
    half = TIMING.check_interval / 2
    for pick, expected in ((lambda a, b: a, checked + half), (lambda a, b: b, NOW + TIMING.check_interval)):
        mem = Memory(live=live_for(obs), live_at=checked, live_from_status=True)
        place_resumed_checks(mem, now=NOW, timing=TIMING, uniform=pick)
        assert mem.next_live_check == expected


def fail(mem: Memory, step: Step, failed: Failed, at: datetime = NOW) -> float:
    """Record ``failed`` for ``step`` at ``at``; the backoff delay it set, in seconds."""
    record(mem, step, failed, obs=observe(), now=at, timing=TIMING, uniform=no_jitter)
    assert mem.not_before is not None
    return (mem.not_before - at).total_seconds()


BOT_API_DOWN = Failed(ErrorKind.NETWORK_ERROR, "timed out")
KUBE_DOWN = Failed(LocalFailure.KUBERNETES, "the API server did not answer")


def test_a_failure_of_one_kind_does_not_lengthen_the_backoff_of_another() -> None:
    mem = Memory()
    assert [fail(mem, GetWebhookInfo("x"), BOT_API_DOWN) for _ in range(6)] == [1, 2, 4, 8, 16, 32]
    # The reads fail next (the API server is away): their own backoff starts at 1 s, not 64 s.
    assert [observe_delay(mem) for _ in range(2)] == [1.0, 2.0]
    assert fail(mem, set_webhook(Purpose.REGISTER), BOT_API_DOWN) == 1.0
    # The reads work again: their count is over, the Bot API step's count is not.
    clear_observe_failure(mem)
    assert mem.not_before is not None  # the setWebhook's backoff still holds
    assert ActionKind.OBSERVE not in mem.failures_in_a_row
    assert fail(mem, GetWebhookInfo("x"), BOT_API_DOWN) == 64.0
    # A success clears that kind only.
    record(
        mem,
        GetWebhookInfo("x"),
        Looked(live_for(observe())),
        obs=observe(),
        now=NOW,
        timing=TIMING,
        uniform=no_jitter,
    )
    assert mem.failures_in_a_row == {ActionKind.SET_WEBHOOK: 1}


def observe_delay(mem: Memory) -> float:
    observe_failed(mem, LocalFailure.KUBERNETES, "down", now=NOW, uniform=no_jitter)
    assert mem.not_before is not None
    return (mem.not_before - NOW).total_seconds()


def test_kubernetes_failures_retry_within_the_30_s_convergence_target_and_bot_api_ones_back_off_further() -> (
    None
):
    mem = Memory()
    kube = [observe_delay(mem) for _ in range(12)]
    assert kube[:6] == [1, 2, 4, 8, 16, 16]
    assert max(kube) == KUBERNETES_CAP
    # The largest jitter (x1.2) included, the API server back means a retry within 30 s.
    assert failure_delay(LocalFailure.KUBERNETES, 100, lambda a, b: b) <= 20.0
    assert failure_delay(ErrorKind.SERVER_ERROR, 100, lambda a, b: b) == BOT_API_CAP * 1.2
    assert failure_delay(ErrorKind.BAD_REQUEST, 0, no_jitter) == 5.0


def test_reads_that_work_again_end_their_backoff_at_once() -> None:
    mem = Memory()
    for _ in range(8):
        observe_delay(mem)
    clear_observe_failure(mem)  # the API server is back: no waiting out the last delay
    assert (mem.failure, mem.not_before, mem.failures_in_a_row) == (None, None, {})


def test_flood_control_holds_telegram_calls_back_whatever_fails_meanwhile() -> None:
    from tgbot_operator.reconcile import decide

    obs = observe()
    mem = Memory(me=BotUser(1, "b"), me_token_hash=obs.token_hash)
    assert fail(mem, GetWebhookInfo("x"), Failed(ErrorKind.RETRY_AFTER, "429", retry_after=60.0)) == 60.0
    assert mem.flood_until == NOW + timedelta(seconds=60)
    # The API server blinks: the reads' short backoff replaces the wait...
    assert observe_delay(mem) == 1.0
    clear_observe_failure(mem)
    # ...but no Bot API call happens before Telegram's retry_after.
    later = observe(now=NOW + timedelta(seconds=2))
    action = decide(later, mem, TIMING)
    assert isinstance(action, Wait)
    assert action.until == NOW + timedelta(seconds=60)
    assert isinstance(decide(observe(now=NOW + timedelta(seconds=61)), mem, TIMING), GetWebhookInfo)


def test_a_flood_wait_is_never_shortened_and_spreads_a_little() -> None:
    mem = Memory()
    record(
        mem,
        GetMe(),
        Failed(ErrorKind.RETRY_AFTER, "429", retry_after=100.0),
        obs=observe(),
        now=NOW,
        timing=TIMING,
        uniform=lambda a, b: b,
    )
    assert mem.not_before == NOW + timedelta(seconds=110)
    assert mem.flood_until == NOW + timedelta(seconds=100)


def test_rotation_phases_as_the_secret_goes_through_them() -> None:
    obs = observe(rotate_request="2")
    idle = secret()
    propagating, event = secret_after(
        StartRotation(Trigger.ANNOTATION, "2"),
        idle,
        Fresh(secret_token="N" * 64),
        obs=obs,
        secret_name="s",
        grace=90,
    )
    assert (propagating.phase, propagating.phase_since, propagating.rotate_handled) == (
        RotationPhase.PROPAGATING,
        NOW,
        "2",
    )
    assert (propagating.secret_token, propagating.previous_secret_token) == ("N" * 64, idle.secret_token)
    assert event is not None
    assert "(annotation)" in event[2]
    assert "90s" in event[2]
    retiring = rotation_completed(propagating, NOW)
    assert (retiring.phase, retiring.rotated_at) == (RotationPhase.RETIRING, NOW)
    done, _ = secret_after(RetirePreviousToken(), retiring, Fresh(), obs=obs, secret_name="s", grace=90)
    assert (done.phase, done.previous_secret_token, done.secret_token) == (RotationPhase.IDLE, None, "N" * 64)


def test_a_secret_write_outcome_passes_its_event_on() -> None:
    done = record(
        Memory(),
        RetirePreviousToken(),
        SecretWritten(("Normal", "X", "y")),
        obs=observe(),
        now=NOW,
        timing=TIMING,
        uniform=no_jitter,
    )
    assert done.events == [("Normal", "X", "y")]
