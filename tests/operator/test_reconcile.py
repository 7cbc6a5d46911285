"""The pure decision: given what is observed and remembered, the one next action."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tgbot_operator import delivery
from tgbot_operator.actions import (
    ActionKind,
    CreateWebhookSecret,
    DropCertificate,
    DropPreviousCertificate,
    GetMe,
    GetWebhookInfo,
    Purpose,
    RenewCertificate,
    RetirePreviousToken,
    SetWebhook,
    StageCertificate,
    StartRotation,
    SwapCertificate,
    Trigger,
    Wait,
)
from tgbot_operator.model import TelegramBotSpec
from tgbot_operator.observation import Failure, Memory, Observation, Problem, Timing
from tgbot_operator.reconcile import decide, desired
from tgbot_operator.registration import Registration
from tgbot_operator.telegram import BotUser, ErrorKind, WebhookInfo
from tgbot_operator.webhook_secret import RotationPhase, WebhookSecretState, generate_self_signed

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "123:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
TIMING = Timing(
    check_interval=timedelta(seconds=300),
    token_check_interval=timedelta(seconds=30),
    propagation_grace=timedelta(seconds=90),
    retire_grace=timedelta(seconds=120),
)
URL = "https://bots.example.com/echo"


def spec(**webhook: Any) -> TelegramBotSpec:
    body: dict[str, Any] = {"tokenSecretRef": {"name": "echo-token"}, "webhook": {"url": URL, **webhook}}
    return TelegramBotSpec.from_body(body)


def secret(**kw: Any) -> WebhookSecretState:
    base: dict[str, Any] = {
        "secret_token": "S" * 64,
        "previous_secret_token": None,
        "tls_crt": None,
        "tls_key": None,
        "phase": RotationPhase.IDLE,
        "phase_since": None,
        "rotated_at": NOW - timedelta(days=1),
        "rotate_handled": None,
        "identity_key": b"K" * 32,
    }
    base.update(kw)
    return WebhookSecretState(**base)


def observe(**kw: Any) -> Observation:
    base: dict[str, Any] = {
        "now": NOW,
        "generation": 1,
        "spec": spec(),
        "server": "https://api.telegram.org",
        "token": TOKEN,
        "webhook_secret": secret(),
        "custom_certificate": None,
        "rotate_request": None,
    }
    base.update(kw)
    return Observation(**base)


def live_for(obs: Observation) -> WebhookInfo:
    wanted = desired(obs)
    assert wanted is not None
    p = wanted[0]
    return WebhookInfo(
        url=p.url,
        has_custom_certificate=p.certificate is not None,
        pending_update_count=0,
        max_connections=p.max_connections,
    )


def synced(obs: Observation, registered_at: datetime = NOW - timedelta(hours=1)) -> Memory:
    """A memory in which everything is known and registered."""
    wanted = desired(obs)
    assert wanted is not None
    live = live_for(obs)
    seen = delivery.track(None, live, NOW)
    return Memory(
        me=BotUser(123, "echo_bot"),
        me_token_hash=obs.token_hash,
        live=live,
        delivery=seen,
        delivering=delivery.assess(seen, live, check_interval=TIMING.check_interval),
        live_at=NOW,
        live_token_hash=obs.token_hash,
        registration=Registration(wanted[1], registered_at, URL),
        next_live_check=NOW + timedelta(seconds=300),
    )


def test_fresh_bot_goes_getme_secret_info_setwebhook() -> None:
    obs = observe(webhook_secret=None)
    mem = Memory()
    assert isinstance(decide(obs, mem, TIMING), GetMe)
    mem.me, mem.me_token_hash = BotUser(123, "echo_bot"), obs.token_hash
    assert isinstance(decide(obs, mem, TIMING), CreateWebhookSecret)
    obs = observe()
    assert isinstance(decide(obs, mem, TIMING), GetWebhookInfo)
    mem.live = WebhookInfo(url="", has_custom_certificate=False, pending_update_count=0)
    mem.live_at, mem.live_token_hash, mem.next_live_check = NOW, obs.token_hash, NOW + timedelta(seconds=300)
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.purpose is Purpose.REGISTER
    assert action.params.secret_token == "S" * 64


def test_in_sync_waits_for_the_next_check() -> None:
    obs = observe()
    action = decide(obs, synced(obs), TIMING)
    assert action == Wait("in sync", NOW + timedelta(seconds=300))


def test_restart_with_a_recorded_registration_does_not_register_again() -> None:
    obs = observe()
    mem = synced(obs)
    fresh = Memory(registration=mem.registration)
    assert isinstance(decide(obs, fresh, TIMING), GetMe)
    fresh.me, fresh.me_token_hash = mem.me, mem.me_token_hash
    assert isinstance(decide(obs, fresh, TIMING), GetWebhookInfo)
    fresh.live, fresh.live_at, fresh.live_token_hash = mem.live, NOW, obs.token_hash
    fresh.next_live_check = NOW + timedelta(seconds=300)
    assert isinstance(decide(obs, fresh, TIMING), Wait)


def test_periodic_check_is_due() -> None:
    obs = observe()
    mem = synced(obs)
    mem.next_live_check = NOW
    assert isinstance(decide(obs, mem, TIMING), GetWebhookInfo)


def test_spec_change_re_registers() -> None:
    obs = observe()
    mem = synced(obs)
    changed = observe(spec=spec(maxConnections=7))
    action = decide(changed, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.purpose is Purpose.UPDATE
    assert action.params.max_connections == 7


def test_url_change_says_so() -> None:
    obs = observe()
    mem = synced(obs)
    action = decide(
        observe(
            spec=TelegramBotSpec.from_body(
                {"tokenSecretRef": {"name": "echo-token"}, "webhook": {"url": "https://bots.example.com/new"}}
            )
        ),
        mem,
        TIMING,
    )
    assert isinstance(action, SetWebhook)
    assert "URL changed" in action.reason


def test_drift_is_repaired() -> None:
    obs = observe()
    mem = synced(obs)
    assert mem.live is not None
    mem.live = replace(mem.live, url="https://elsewhere.example.com/")
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.purpose is Purpose.DRIFT
    assert "url" in action.reason


def test_401_errors_after_registration_are_repaired_once_per_cooldown() -> None:
    obs = observe()
    mem = synced(obs)
    assert mem.live is not None
    mem.live = replace(
        mem.live,
        last_error_date=int(NOW.timestamp()) - 10,
        last_error_message="Wrong response: 401 Unauthorized",
    )
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert "401" in action.reason
    mem.last_401_repair_at = NOW - timedelta(minutes=1)
    assert isinstance(decide(obs, mem, TIMING), Wait)


def test_401_errors_before_registration_are_old_news() -> None:
    obs = observe()
    mem = synced(obs, registered_at=NOW - timedelta(seconds=5))
    assert mem.live is not None
    mem.live = replace(
        mem.live,
        last_error_date=int(NOW.timestamp()) - 60,
        last_error_message="Wrong response: 401 Unauthorized",
    )
    assert isinstance(decide(obs, mem, TIMING), Wait)


def test_token_change_means_getme_then_reregistration() -> None:
    obs = observe()
    mem = synced(obs)
    new = observe(token="123:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
    assert isinstance(decide(new, mem, TIMING), GetMe)
    mem.me_token_hash = new.token_hash
    assert isinstance(decide(new, mem, TIMING), GetWebhookInfo)
    mem.live_token_hash = new.token_hash
    action = decide(new, mem, TIMING)
    assert isinstance(action, SetWebhook)


def test_missing_token_waits_without_calling_telegram() -> None:
    problem = Problem("SecretKeyMissing", 'Secret "echo-token" has no key "token"')
    action = decide(observe(token=problem), Memory(), TIMING)
    assert action == Wait(problem.message)


def test_rejected_token_backs_off_until_it_changes() -> None:
    obs = observe()
    mem = Memory(
        auth_failure=Failure(
            ActionKind.GET_ME, ErrorKind.UNAUTHORIZED, "401", NOW - timedelta(seconds=5), obs.token_hash
        )
    )
    action = decide(obs, mem, TIMING)
    assert isinstance(action, Wait)
    assert action.until == NOW - timedelta(seconds=5) + TIMING.unauthorized_retry
    # A new token is tried at once.
    assert isinstance(decide(observe(token=TOKEN + "x"), mem, TIMING), GetMe)
    # The old one again after the slow retry interval.
    later = observe(now=NOW + TIMING.unauthorized_retry)
    assert isinstance(decide(later, mem, TIMING), GetMe)


def test_backoff_is_respected() -> None:
    obs = observe()
    mem = synced(obs)
    mem.not_before = NOW + timedelta(seconds=8)
    assert decide(obs, mem, TIMING) == Wait("backing off", NOW + timedelta(seconds=8))


def test_foreign_secret_is_not_touched() -> None:
    obs = observe(webhook_secret=Problem("SecretConflict", "not ours"))
    mem = synced(observe())
    assert decide(obs, mem, TIMING) == Wait("not ours")


def test_refill_a_secret_without_token() -> None:
    obs = observe(webhook_secret=secret(secret_token=None))
    assert isinstance(decide(obs, synced(observe()), TIMING), CreateWebhookSecret)


def test_self_signed_needs_a_certificate_then_uploads_it() -> None:
    selfsigned = spec(certificate={"mode": "SelfSigned"})
    obs = observe(spec=selfsigned)
    mem = synced(observe())
    action = decide(obs, mem, TIMING)
    assert isinstance(action, RenewCertificate)
    crt, key = generate_self_signed("bots.example.com", NOW)
    obs = observe(spec=selfsigned, webhook_secret=secret(tls_crt=crt, tls_key=key))
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.params.certificate == crt


def test_certificate_dropped_when_mode_is_none() -> None:
    obs = observe(webhook_secret=secret(tls_crt=b"x", tls_key=b"y"))
    assert isinstance(decide(obs, synced(observe()), TIMING), DropCertificate)


def test_secret_mode_waits_for_the_certificate_secret() -> None:
    mode = spec(certificate={"mode": "Secret", "secretRef": {"name": "my-tls"}})
    problem = Problem("CertificateSecretNotFound", 'certificate Secret "my-tls" not found')
    obs = observe(spec=mode, custom_certificate=problem)
    assert decide(obs, synced(observe()), TIMING) == Wait(problem.message)
    obs = observe(spec=mode, custom_certificate=b"PEM")
    action = decide(obs, synced(observe()), TIMING)
    assert isinstance(action, SetWebhook)
    assert action.params.certificate == b"PEM"


def test_cert_manager_renewal_re_registers() -> None:
    mode = spec(certificate={"mode": "Secret", "secretRef": {"name": "my-tls"}})
    obs = observe(spec=mode, custom_certificate=b"PEM1")
    mem = synced(obs)
    assert isinstance(decide(obs, mem, TIMING), Wait)
    action = decide(observe(spec=mode, custom_certificate=b"PEM2"), mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.params.certificate == b"PEM2"


# --- rotation ---------------------------------------------------------------------------------


def test_rotation_on_annotation() -> None:
    obs = observe(rotate_request="1")
    action = decide(obs, synced(observe()), TIMING)
    assert action == StartRotation(trigger=Trigger.ANNOTATION, request="1")
    # Already handled: nothing to do.
    obs = observe(rotate_request="1", webhook_secret=secret(rotate_handled="1"))
    assert isinstance(decide(obs, synced(obs), TIMING), Wait)


def test_rotation_on_schedule() -> None:
    scheduled = spec()
    scheduled = TelegramBotSpec.from_body(
        {
            "tokenSecretRef": {"name": "echo-token"},
            "webhook": {"url": URL},
            "secretToken": {"rotationInterval": "720h"},
        }
    )
    obs = observe(spec=scheduled, webhook_secret=secret(rotated_at=NOW - timedelta(hours=1)))
    action = decide(obs, synced(obs), TIMING)
    assert action == Wait("in sync", NOW + timedelta(seconds=300))  # check first; rotation much later
    obs = observe(spec=scheduled, webhook_secret=secret(rotated_at=NOW - timedelta(hours=720)))
    assert decide(obs, synced(obs), TIMING) == StartRotation(trigger=Trigger.SCHEDULE)


def test_rotation_phases() -> None:
    idle = observe()
    mem = synced(idle)
    # Propagating: the old token stays registered, nothing happens until the grace ends.
    propagating = secret(
        secret_token="N" * 64,
        previous_secret_token="S" * 64,
        phase=RotationPhase.PROPAGATING,
        phase_since=NOW,
    )
    obs = observe(webhook_secret=propagating)
    action = decide(obs, mem, TIMING)
    assert action == Wait("in sync", NOW + TIMING.propagation_grace)
    # Grace over: register the new token, completing the rotation.
    obs = observe(webhook_secret=propagating, now=NOW + TIMING.propagation_grace)
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.completes_rotation
    assert action.params.secret_token == "N" * 64
    # Retiring: the new token is registered; the old one goes after the second grace.
    retiring = replace(propagating, phase=RotationPhase.RETIRING, phase_since=NOW)
    obs = observe(webhook_secret=retiring)
    mem = synced(obs)
    assert decide(obs, mem, TIMING) == Wait("in sync", NOW + TIMING.retire_grace)
    obs = observe(webhook_secret=retiring, now=NOW + TIMING.retire_grace)
    assert isinstance(decide(obs, mem, TIMING), RetirePreviousToken)


def test_rotation_request_waits_for_the_running_rotation() -> None:
    retiring = secret(
        secret_token="N" * 64, previous_secret_token="S" * 64, phase=RotationPhase.RETIRING, phase_since=NOW
    )
    obs = observe(webhook_secret=retiring, rotate_request="again")
    assert isinstance(decide(obs, synced(obs), TIMING), Wait)


@pytest.mark.parametrize("phase", [RotationPhase.PROPAGATING, RotationPhase.RETIRING])
def test_phase_without_previous_token_moves_on(phase: RotationPhase) -> None:
    state = secret(phase=phase, phase_since=NOW)
    obs = observe(webhook_secret=state)
    action = decide(obs, synced(obs), TIMING)
    assert isinstance(action, SetWebhook | RetirePreviousToken)


# --- self-signed certificate renewal: never a moment when the served certificate is untrusted ---


def _registered(mem: Memory, action: SetWebhook) -> Memory:
    """What the worker remembers after that setWebhook succeeded (and a look at the live webhook)."""
    live = WebhookInfo(
        url=action.params.url,
        has_custom_certificate=True,
        pending_update_count=0,
        max_connections=action.params.max_connections,
    )
    return replace(mem, registration=Registration(action.fingerprint, NOW, URL), live=live)


def test_renewal_trusts_both_certificates_while_mounts_update() -> None:
    selfsigned = spec(certificate={"mode": "SelfSigned"})
    old = generate_self_signed("bots.example.com", NOW - timedelta(days=340))  # expires in 25 days
    new = generate_self_signed("bots.example.com", NOW)
    current = secret(tls_crt=old[0], tls_key=old[1])
    obs = observe(spec=selfsigned, webhook_secret=current)
    mem = synced(obs)
    assert desired(obs) is not None
    # 1. The current certificate still works: a new pair is staged beside it, not swapped in.
    action = decide(obs, mem, TIMING)
    assert isinstance(action, StageCertificate)
    assert "expires" in action.reason
    # 2. Telegram is told to trust both (the new one first) before any sidecar serves the new one.
    staged = replace(current, next_tls_crt=new[0], next_tls_key=new[1])
    obs = observe(spec=selfsigned, webhook_secret=staged)
    action = decide(obs, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.params.certificate == new[0] + old[0]
    assert "renewal" in action.reason
    # 3. Once it does: the swap; the Secret's tls.crt/tls.key (what sidecars serve) change now.
    mem = _registered(mem, action)
    assert isinstance(decide(obs, mem, TIMING), SwapCertificate)
    until = NOW + TIMING.propagation_grace
    swapped = replace(
        current,
        tls_crt=new[0],
        tls_key=new[1],
        previous_tls_crt=old[0],
        previous_certificate_until=until,
    )
    obs = observe(spec=selfsigned, webhook_secret=swapped)
    # 4. Same two certificates, same upload: nothing to do until the grace is over.
    action = decide(obs, mem, TIMING)
    assert isinstance(action, Wait)
    assert action.until is not None
    assert action.until <= until
    # 5. Then the new certificate alone, and the old one is forgotten.
    later = observe(spec=selfsigned, webhook_secret=swapped, now=until + timedelta(seconds=1))
    mem = replace(mem, next_live_check=until + timedelta(hours=1))
    action = decide(later, mem, TIMING)
    assert isinstance(action, SetWebhook)
    assert action.params.certificate == new[0]
    mem = _registered(mem, action)
    assert isinstance(decide(later, mem, TIMING), DropPreviousCertificate)


def test_a_certificate_that_no_longer_works_is_replaced_at_once() -> None:
    selfsigned = spec(certificate={"mode": "SelfSigned"})
    other_host = generate_self_signed("old.example.com", NOW)
    obs = observe(spec=selfsigned, webhook_secret=secret(tls_crt=other_host[0], tls_key=other_host[1]))
    action = decide(obs, synced(observe()), TIMING)
    assert isinstance(action, RenewCertificate)
    assert "does not cover" in action.reason


def test_renew_before_comes_from_the_timing() -> None:
    selfsigned = spec(certificate={"mode": "SelfSigned"})
    young = generate_self_signed("bots.example.com", NOW - timedelta(days=100))
    obs = observe(spec=selfsigned, webhook_secret=secret(tls_crt=young[0], tls_key=young[1]))
    mem = synced(obs)
    assert not isinstance(decide(obs, mem, TIMING), StageCertificate)
    eager = replace(TIMING, certificate_renew_before=timedelta(days=300))
    assert isinstance(decide(obs, mem, eager), StageCertificate)


def test_the_scheduled_check_is_periodic_and_other_looks_are_not() -> None:
    obs = observe()
    mem = synced(obs)
    mem.next_live_check = NOW
    assert decide(obs, mem, TIMING) == GetWebhookInfo("periodic check", periodic=True)
    mem.next_live_check = None  # right after a registration
    action = decide(obs, mem, TIMING)
    assert isinstance(action, GetWebhookInfo)
    assert not action.periodic


def resumed(obs: Observation, **changes: Any) -> Memory:
    """What a restarted worker knows: the last check as status recorded it, its first check placed."""
    mem = replace(synced(obs), live_from_status=True, next_live_check=NOW + timedelta(seconds=120))
    for key, value in changes.items():
        setattr(mem, key, value)
    return mem


def test_a_resumed_bot_in_sync_waits_for_its_placed_check_without_a_call() -> None:
    obs = observe()
    assert decide(obs, resumed(obs), TIMING) == Wait("in sync", NOW + timedelta(seconds=120))


@pytest.mark.parametrize(
    "changes",
    [
        {"live": WebhookInfo(url="https://elsewhere/", has_custom_certificate=False, pending_update_count=0)},
        {"registration": None},
        {"registration": Registration("sha256:another", NOW, URL)},
        {
            "live": WebhookInfo(
                url=URL,
                has_custom_certificate=False,
                pending_update_count=3,
                max_connections=40,
                last_error_date=int(NOW.timestamp()),
                last_error_message="Wrong response from the webhook: 401 Unauthorized",
            )
        },
    ],
    ids=["drift", "not-registered", "spec-changed", "401"],
)
def test_a_resumed_bot_looks_before_it_acts_on_the_recorded_status(changes: dict[str, Any]) -> None:
    obs = observe()
    action = decide(obs, resumed(obs, **changes), TIMING)
    assert isinstance(action, GetWebhookInfo), action  # never a setWebhook on a stale record
    assert not action.periodic
