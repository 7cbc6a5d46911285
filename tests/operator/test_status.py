"""Status building: conditions, merge patches, and no secrets anywhere."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tgbot_operator import names
from tgbot_operator.actions import ActionKind
from tgbot_operator.conditions import Condition, merge_conditions
from tgbot_operator.observation import Failure, Memory, Problem
from tgbot_operator.registration import Registration
from tgbot_operator.status import build_status, merge_patch
from tgbot_operator.telegram import BotUser, ErrorKind, WebhookInfo

from .test_reconcile import NOW, TOKEN, observe, secret, synced


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def text_of(status: dict[str, Any]) -> str:
    return json.dumps(status)


def test_ready_status_has_everything_and_no_secret() -> None:
    obs = observe()
    mem = synced(obs)
    status = build_status(obs, mem, secret_name="echo-webhook", existing_conditions=None)
    conds = conditions(status)
    assert [c["type"] for c in status["conditions"]] == list(names.CONDITION_TYPES)
    assert all(c["status"] == "True" for c in conds.values())
    assert conds["TokenValid"]["message"] == "the token belongs to @echo_bot (id 123)"
    bot = dict(status["bot"])
    identity = bot.pop("identityHash")
    assert bot == {"id": 123, "username": "echo_bot", "mention": "@echo_bot"}
    # A keyed hash of what getMe accepted (so that a restart can skip getMe), never the token
    # itself, and not its plain sha256 either: that would confirm a guessed token to any reader.
    assert identity.startswith("hmac-sha256:")
    assert obs.token_hash is not None
    assert obs.token_hash not in identity
    assert hashlib.sha256(f"{obs.server}\n{TOKEN}".encode()).hexdigest() not in text_of(status)
    other_key = observe(webhook_secret=secret(identity_key=b"other key, other hash.........."))
    other = build_status(other_key, synced(other_key), secret_name="echo-webhook", existing_conditions=None)
    assert other["bot"]["identityHash"] != identity
    no_key = observe(webhook_secret=secret(identity_key=None))
    assert (
        "identityHash"
        not in build_status(no_key, synced(no_key), secret_name="echo-webhook", existing_conditions=None)[
            "bot"
        ]
    )
    assert status["webhookSecretName"] == "echo-webhook"
    assert status["observedGeneration"] == 1
    assert status["webhook"]["url"] == "https://bots.example.com/echo"
    assert status["registration"]["fingerprint"].startswith("sha256:")
    text = json.dumps(status)
    assert TOKEN not in text
    assert TOKEN.split(":")[1] not in text
    assert "S" * 64 not in text


def test_missing_key_is_named() -> None:
    problem = Problem("SecretKeyMissing", 'Secret "echo-token" has no key "token"')
    status = build_status(observe(token=problem), Memory(), secret_name="x", existing_conditions=None)
    conds = conditions(status)
    assert conds["TokenValid"]["status"] == "False"
    assert conds["TokenValid"]["reason"] == "SecretKeyMissing"
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "SecretKeyMissing"
    assert 'has no key "token"' in str(conds["Ready"]["message"])


def test_unauthorized_token() -> None:
    obs = observe()
    mem = Memory(
        auth_failure=Failure(
            ActionKind.GET_ME, ErrorKind.UNAUTHORIZED, "401 Unauthorized", NOW, obs.token_hash
        )
    )
    conds = conditions(build_status(obs, mem, secret_name="x", existing_conditions=None))
    assert conds["TokenValid"]["reason"] == "Unauthorized"
    assert 'Secret "echo-token" key "token"' in str(conds["TokenValid"]["message"])
    assert conds["Ready"]["status"] == "False"


def test_transient_failure_makes_ready_false_with_its_kind() -> None:
    obs = observe()
    mem = synced(obs)
    mem.failure = Failure(ActionKind.SET_WEBHOOK, ErrorKind.SERVER_ERROR, "setWebhook: 502 Bad Gateway", NOW)
    conds = conditions(build_status(obs, mem, secret_name="x", existing_conditions=None))
    assert conds["WebhookRegistered"]["reason"] == "ServerError"
    assert conds["Ready"]["reason"] == "ServerError"


def test_drifted_webhook_is_not_registered() -> None:
    obs = observe()
    mem = synced(obs)
    mem.live = WebhookInfo(url="https://elsewhere/", has_custom_certificate=False, pending_update_count=3)
    conds = conditions(build_status(obs, mem, secret_name="x", existing_conditions=None))
    assert conds["WebhookRegistered"]["reason"] == "Drifted"


def test_last_error_is_shown() -> None:
    obs = observe()
    mem = synced(obs)
    assert mem.live is not None
    mem.live = WebhookInfo(
        url=mem.live.url,
        has_custom_certificate=False,
        pending_update_count=2,
        last_error_date=int(NOW.timestamp()),
        last_error_message="Connection refused",
        max_connections=40,
    )
    status = build_status(obs, mem, secret_name="x", existing_conditions=None)
    assert status["webhook"]["lastErrorMessage"] == "Connection refused"
    assert status["webhook"]["lastErrorDate"] == "2026-01-01T12:00:00Z"
    assert status["webhook"]["pendingUpdateCount"] == 2


def test_transition_time_moves_only_on_status_change() -> None:
    t0 = NOW
    first = merge_conditions(None, [Condition("Ready", "False", "Pending")], now=t0, generation=1)
    later = t0 + timedelta(minutes=5)
    same = merge_conditions(first, [Condition("Ready", "False", "Other", "m")], now=later, generation=2)
    assert same[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert same[0]["reason"] == "Other"
    assert same[0]["observedGeneration"] == 2
    flipped = merge_conditions(same, [Condition("Ready", "True", "Ready")], now=later, generation=2)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_foreign_conditions_are_kept() -> None:
    existing = [{"type": "Custom", "status": "True", "reason": "X"}]
    merged = merge_conditions(existing, [Condition("Ready", "True", "Ready")], now=NOW, generation=1)
    assert [c["type"] for c in merged] == ["Ready", "Custom"]


def test_merge_patch() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "gone": True, "same": [1]}
    new = {"a": 1, "b": {"c": 5, "d": 3}, "same": [1], "added": "x"}
    assert merge_patch(old, new) == {"b": {"c": 5}, "gone": None, "added": "x"}
    assert merge_patch(new, new) == {}


def test_registration_survives_in_status() -> None:
    obs = observe()
    mem = Memory(
        me=BotUser(1, None), me_token_hash=obs.token_hash, registration=Registration("sha256:x", NOW, "u")
    )
    status = build_status(obs, mem, secret_name="x", existing_conditions=None)
    assert status["registration"] == {
        "fingerprint": "sha256:x",
        "registeredAt": "2026-01-01T12:00:00Z",
        "url": "u",
    }
    assert status["bot"]["mention"] == "1"
    assert datetime.now(UTC) > NOW


def test_a_failing_getme_says_why_in_token_valid_and_ready() -> None:
    obs = observe()
    mem = Memory(
        failure=Failure(
            ActionKind.GET_ME, ErrorKind.MALFORMED_ANSWER, "getMe: the result has no id", NOW, obs.token_hash
        )
    )
    status = build_status(obs, mem, secret_name="echo-webhook", existing_conditions=None)
    conds = conditions(status)
    assert (conds["TokenValid"]["status"], conds["TokenValid"]["reason"]) == ("Unknown", "MalformedAnswer")
    assert conds["Ready"]["reason"] == "MalformedAnswer"
    assert "no id" in conds["Ready"]["message"]


def test_the_recorded_check_comes_back_from_status_as_it_was_written() -> None:
    from tgbot_operator.observation import live_from_status
    from tgbot_operator.status import live_status

    full = WebhookInfo(
        url="https://bots.example.com/echo",
        has_custom_certificate=True,
        pending_update_count=4,
        ip_address="203.0.113.7",
        last_error_date=1_760_000_000,
        last_error_message="Connection refused",
        last_synchronization_error_date=1_760_000_100,
        max_connections=12,
        allowed_updates=("message",),
    )
    bare = WebhookInfo(url="", has_custom_certificate=False, pending_update_count=0)
    for live in (full, bare):
        written = json.loads(json.dumps(live_status(live, NOW)))
        assert live_from_status(written) == (live, NOW)
    # Anything odd: no record (the worker looks at once instead).
    odd: list[Any] = [None, [], {"url": "x"}, {**live_status(full, NOW), "pendingUpdateCount": "4"}]
    for odd_status in odd:
        assert live_from_status(odd_status) is None
