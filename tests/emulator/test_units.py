"""Pure pieces: redaction, secret-token rules, body parsing, faults, update shapes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgbot_emulator.errors import ApiError
from tgbot_emulator.faults import Fault, FaultQueue
from tgbot_emulator.params import get_bool, get_int, parse_body
from tgbot_emulator.redact import redact_path, redact_token, redact_url
from tgbot_emulator.updates import is_allowed, ordering_key
from tgbot_emulator.validation import parse_set_webhook

SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
secrets_ok = st.text(alphabet=SECRET_CHARS, min_size=1, max_size=256)
token_secrets = st.text(alphabet=SECRET_CHARS, min_size=5, max_size=50)


@given(bot_id=st.integers(min_value=1, max_value=10**12), secret=token_secrets)
def test_redaction_never_shows_the_secret(bot_id: int, secret: str) -> None:
    token = f"{bot_id}:{secret}"
    assert redact_token(token) == f"{bot_id}:***"
    path = redact_path(f"/bot{token}/setWebhook")
    assert path == f"/bot{bot_id}:***/setWebhook"
    # Exact equality says it all: a substring check would trip over secrets like "00000" that
    # also occur in the bot id (hypothesis found that one).


def test_redact_url_keeps_only_origin() -> None:
    assert redact_url("https://h.example.com:8443/bot123:SECRET/hook?x=1") == "https://h.example.com:8443/..."


@given(secret=secrets_ok)
def test_valid_secret_tokens_are_accepted(secret: str) -> None:
    request = parse_set_webhook({"url": "https://a.example.com/", "secret_token": secret}, allow_local=False)
    assert request.secret_token == secret


@given(secret=st.text(min_size=1, max_size=256).filter(lambda s: any(c not in SECRET_CHARS for c in s)))
def test_secret_tokens_with_other_characters_are_refused(secret: str) -> None:
    with pytest.raises(ApiError) as error:
        parse_set_webhook({"url": "https://a.example.com/", "secret_token": secret}, allow_local=False)
    assert error.value.description == "Bad Request: secret token contains unallowed characters"


@given(params=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=5))
def test_urlencoded_round_trip(params: dict[str, str]) -> None:
    parsed = parse_body("application/x-www-form-urlencoded; charset=utf-8", urlencode(params).encode())
    assert parsed == params


def test_json_body_keeps_types_and_must_be_an_object() -> None:
    assert parse_body("application/json", b'{"a": 1, "b": [true]}') == {"a": 1, "b": [True]}
    assert parse_body("application/json", b"") == {}
    with pytest.raises(ApiError):
        parse_body("application/json", b"[1, 2]")


def test_multipart_body_fields_and_files() -> None:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="url"\r\n\r\nhttps://a/\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="certificate"; filename="c.pem"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\nPEMDATA\r\n--XX--\r\n"
    )
    parsed = parse_body("multipart/form-data; boundary=XX", body)
    assert parsed["url"] == "https://a/"
    assert parsed["certificate"].filename == "c.pem"
    assert parsed["certificate"].content == b"PEMDATA"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("false", False), (True, True), ("0", False)])
def test_booleans(raw: object, expected: bool) -> None:
    assert get_bool({"x": raw}, "x") is expected


def test_integers_like_the_bot_api_server() -> None:
    assert get_int({"x": "12"}, "x") == 12
    assert get_int({"x": "junk"}, "x") == 0
    assert get_int({}, "x", 40) == 40


def test_fault_queue_counts_down_and_matches() -> None:
    queue = FaultQueue()
    queue.add(Fault("500", 2, method="SendMessage", bot_id=1))
    assert queue.take(2, "sendMessage") is None
    assert queue.take(1, "getMe") is None
    assert queue.take(1, "sendmessage") is not None
    assert queue.take(1, "sendMessage") is not None
    assert queue.take(1, "sendMessage") is None


def test_ordering_keys() -> None:
    message = {"update_id": 1, "message": {"chat": {"id": 5}, "from": {"id": 6}}}
    callback = {"update_id": 2, "callback_query": {"from": {"id": 6}, "message": {"chat": {"id": 5}}}}
    inline = {"update_id": 3, "inline_query": {"from": {"id": 6}}}
    poll = {"update_id": 4, "poll": {"id": "p"}}
    assert ordering_key(message) == ordering_key(callback) == "chat:5"
    assert ordering_key(inline) == "user:6"
    assert ordering_key(poll) == "update:4"


def test_default_allowed_updates() -> None:
    assert is_allowed("message", None)
    assert not is_allowed("chat_member", None)
    assert not is_allowed("message_reaction", None)
    assert is_allowed("chat_member", ["chat_member"])


def test_redact_path_hides_tokens_anywhere_and_control_characters() -> None:
    token = "123456:SECRET_abc-def"
    path = redact_path(f"/bot{token}/send{token}.x\x1b[2J\n")
    assert "SECRET" not in path
    assert path == "/bot123456:***/send123456:***.x?[2J?"
