"""The Bot API server allow-list: normalised URLs, exact matches, http only when named."""

from __future__ import annotations

import pytest

from tgbot_operator.cli import main, settings_from_args
from tgbot_operator.servers import AllowedServers, InvalidServerUrl, normalise


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://api.telegram.org", "https://api.telegram.org:443"),
        ("HTTPS://API.Telegram.ORG/", "https://api.telegram.org:443"),
        ("https://api.telegram.org:443/", "https://api.telegram.org:443"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://bot-api.bots/", "http://bot-api.bots:80"),
        ("http://[::1]:8081/base/", "http://[::1]:8081/base"),
        ("https://h.example/a/b//", "https://h.example:443/a/b"),
    ],
)
def test_normalise(url: str, normal: str) -> None:
    assert normalise(url) == normal


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.telegram.org",
        "api.telegram.org",
        "https://user:pw@api.telegram.org",
        "https://@api.telegram.org",
        "https://api.telegram.org/?x=1",
        "https://api.telegram.org?",
        "https://api.telegram.org/#frag",
        "https://:443",
        "https://api.telegram.org:99999",
    ],
)
def test_normalise_refuses(url: str) -> None:
    with pytest.raises(InvalidServerUrl) as info:
        normalise(url)
    assert "pw" not in str(info.value)


def test_only_the_default_server_by_default() -> None:
    allowed = settings_from_args([]).allowed_servers()
    assert allowed.allows("https://api.telegram.org")
    assert allowed.allows("https://API.telegram.org:443/")
    for other in (
        "http://api.telegram.org",  # the same host over http is another server
        "https://api.telegram.org:8443",
        "https://api.telegram.org/other",
        "https://api.telegram.org.evil.example",
        "http://127.0.0.1:8081",
        "https://user@api.telegram.org",
        "https://api.telegram.org/?a",
        "not a url",
    ):
        assert not allowed.allows(other), other


def test_http_only_when_named_exactly() -> None:
    allowed = AllowedServers("https://api.telegram.org", ["http://bot-api.bots:8081"])
    assert allowed.allows("http://bot-api.bots:8081/")
    assert allowed.allows("HTTP://Bot-Api.Bots:8081")
    assert not allowed.allows("http://bot-api.bots:8082")
    assert not allowed.allows("http://bot-api.bots")
    assert not allowed.allows("https://bot-api.bots:8081")


def test_flag_is_repeatable_and_the_environment_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from_args(
        ["--allow-bot-api-server", "http://127.0.0.1:8081", "--allow-bot-api-server", "https://b.example"]
    )
    assert s.allow_bot_api_server == ["http://127.0.0.1:8081", "https://b.example"]
    assert s.allowed_servers().allows("http://127.0.0.1:8081")
    assert s.allowed_servers().allows("https://api.telegram.org")  # the default stays allowed
    monkeypatch.setenv("TGBOT_OPERATOR_ALLOW_BOT_API_SERVER", "http://a.example:81, https://b.example")
    s = settings_from_args([])
    assert s.allow_bot_api_server == ["http://a.example:81", "https://b.example"]
    assert len(s.allowed_servers()) == 3


def test_the_default_server_is_allowed_even_over_http() -> None:
    s = settings_from_args(["--default-bot-api-server", "http://telegram-bot-api.bots:8081"])
    assert s.allowed_servers().allows("http://telegram-bot-api.bots:8081")
    assert not s.allowed_servers().allows("https://api.telegram.org")


@pytest.mark.parametrize("flag", ["--allow-bot-api-server", "--default-bot-api-server"])
def test_bad_server_urls_exit_2_without_the_password(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([flag, "https://user:hunter2@bot-api.example"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err
    assert "user info" in err
    assert "hunter2" not in err
