"""Fingerprints and drift: what setWebhook should say and whether the live webhook says it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tgbot_operator.model import TelegramBotSpec
from tgbot_operator.registration import desired_params, drift, fingerprint, rejected_with_401_since
from tgbot_operator.telegram import SetWebhookParams, WebhookInfo

BOT_TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "s" * 64
SPEC = TelegramBotSpec.from_body(
    {
        "tokenSecretRef": {"name": "echo-token"},
        "webhook": {
            "url": "https://bots.example.com/echo",
            "allowedUpdates": ["message", "callback_query"],
            "maxConnections": 10,
            "ipAddress": "203.0.113.10",
        },
    }
)


def params(**kw: object) -> SetWebhookParams:
    return replace(desired_params(SPEC, SECRET, None), **kw)  # type: ignore[arg-type]


def test_params_carry_every_spec_field() -> None:
    p = params()
    fields = p.fields()
    assert fields == {
        "url": "https://bots.example.com/echo",
        "secret_token": SECRET,
        "max_connections": 10,
        "drop_pending_updates": False,
        "allowed_updates": ["message", "callback_query"],
        "ip_address": "203.0.113.10",
    }
    assert p.certificate is None


def test_certificate_only_when_the_mode_wants_one() -> None:
    assert desired_params(SPEC, SECRET, b"PEM").certificate is None
    spec = TelegramBotSpec.from_body(
        {
            "tokenSecretRef": {"name": "t"},
            "webhook": {"url": "https://h/x", "certificate": {"mode": "SelfSigned"}},
        }
    )
    assert desired_params(spec, SECRET, b"PEM").certificate == b"PEM"


def test_absent_allowed_updates_resets_to_the_default() -> None:
    spec = TelegramBotSpec.from_body({"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://h/x"}})
    assert desired_params(spec, SECRET, None).fields()["allowed_updates"] == []


def test_fingerprint_is_stable_and_hides_secrets() -> None:
    one = fingerprint(params(), BOT_TOKEN)
    assert one == fingerprint(params(), BOT_TOKEN)
    assert one.startswith("sha256:")
    assert SECRET not in one
    assert BOT_TOKEN not in one
    # Order of allowed_updates does not matter; drop_pending_updates does not either.
    assert fingerprint(params(allowed_updates=("callback_query", "message")), BOT_TOKEN) == one
    assert fingerprint(params(drop_pending_updates=True), BOT_TOKEN) == one


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://bots.example.com/other"},
        {"max_connections": 11},
        {"allowed_updates": ("message",)},
        {"allowed_updates": None},
        {"ip_address": None},
        {"certificate": b"PEM"},
        {"secret_token": "t" * 64},
    ],
)
def test_fingerprint_changes_with_every_parameter(change: dict[str, object]) -> None:
    assert fingerprint(params(**change), BOT_TOKEN) != fingerprint(params(), BOT_TOKEN)


def test_fingerprint_changes_with_the_bot_token() -> None:
    assert fingerprint(params(), BOT_TOKEN) != fingerprint(params(), BOT_TOKEN + "x")


def live(**kw: object) -> WebhookInfo:
    base = WebhookInfo(
        url="https://bots.example.com/echo",
        has_custom_certificate=False,
        pending_update_count=0,
        ip_address="203.0.113.10",
        max_connections=10,
        allowed_updates=("callback_query", "message"),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_no_drift_when_live_matches() -> None:
    assert drift(params(), live()) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"url": "https://evil.example.com/"}, "url is"),
        ({"url": ""}, "url is not set"),
        ({"max_connections": 40}, "max_connections"),
        ({"allowed_updates": ("message",)}, "allowed_updates"),
        ({"allowed_updates": None}, "allowed_updates"),
        ({"ip_address": "198.51.100.1"}, "ip_address"),
        ({"has_custom_certificate": True}, "has_custom_certificate"),
    ],
)
def test_drift_is_named(change: dict[str, object], words: str) -> None:
    found = drift(params(), live(**change))
    assert found
    assert words in found[0]


def test_live_fields_the_server_does_not_report_are_not_drift() -> None:
    assert drift(params(), live(max_connections=None, ip_address=None)) == []
    assert drift(params(allowed_updates=None), live(allowed_updates=("message",))) == []


def test_401_after_registration_only() -> None:
    registered = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ts = int(registered.timestamp())
    rejected = live(
        last_error_date=ts + 5, last_error_message="Wrong response from the webhook: 401 Unauthorized"
    )
    assert rejected_with_401_since(rejected, registered)
    assert not rejected_with_401_since(replace(rejected, last_error_date=ts - 5), registered)
    assert not rejected_with_401_since(replace(rejected, last_error_message="Connection refused"), registered)
    assert not rejected_with_401_since(live(), registered)
