"""Flags and TGBOT_OPERATOR_* variables -> one settings model."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tgbot_kit import ListenAddress, parse_duration
from tgbot_operator.cli import liveness_url, settings_from_args
from tgbot_operator.settings import OperatorSettings


def test_defaults() -> None:
    s = settings_from_args([])
    assert s.clusterwide
    assert s.check_interval == 300
    assert s.token_check_interval == 30
    assert s.rotation_propagation_grace == 90
    assert s.deletion_timeout == 300
    assert s.default_bot_api_server == "https://api.telegram.org"
    assert s.peering is None


def test_flags() -> None:
    s = settings_from_args(
        [
            "--namespace",
            "a",
            "-n",
            "b",
            "--check-interval",
            "2s",
            "--token-check-interval",
            "1",
            "--rotation-propagation-grace",
            "1500ms",
            "--rotation-retire-grace",
            "1m",
            "--deletion-timeout",
            "1h",
            "--json-logs",
            "--log-level",
            "DEBUG",
            "--peering",
            "tgbot",
            "--metrics-listen",
            ":9090",
            "--liveness-listen",
            "127.0.0.1:8080",
            "--default-bot-api-server",
            "http://127.0.0.1:8081",
            "--kubeconfig",
            "/tmp/kc",
        ]
    )
    assert s.namespaces == ["a", "b"]
    assert not s.clusterwide
    assert (s.check_interval, s.token_check_interval) == (2, 1)
    assert (s.rotation_propagation_grace, s.rotation_retire_grace, s.deletion_timeout) == (1.5, 60, 3600)
    assert s.json_logs
    assert s.log_level == "debug"
    assert s.peering == "tgbot"
    assert str(s.kubeconfig) == "/tmp/kc"
    assert liveness_url(s.liveness_listen) == "http://127.0.0.1:8080/healthz"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBOT_OPERATOR_NAMESPACES", "x, y")
    monkeypatch.setenv("TGBOT_OPERATOR_CHECK_INTERVAL", "5m")
    monkeypatch.setenv("TGBOT_OPERATOR_JSON_LOGS", "true")
    s = settings_from_args([])
    assert s.namespaces == ["x", "y"]
    assert s.check_interval == 300
    assert s.json_logs
    # Flags win over the environment.
    assert settings_from_args(["--check-interval", "7"]).check_interval == 7


def test_all_namespaces_and_namespace_exclude_each_other() -> None:
    assert settings_from_args(["--all-namespaces"]).clusterwide
    with pytest.raises(SystemExit):
        settings_from_args(["--all-namespaces", "--namespace", "a"])


@pytest.mark.parametrize(
    "bad", [["--check-interval", "soon"], ["--log-level", "loud"], ["--metrics-listen", "x:y"]]
)
def test_invalid(bad: list[str]) -> None:
    with pytest.raises(ValidationError):
        settings_from_args(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("720h", 720 * 3600),
        ("1h30m", 5400),
        ("90s", 90),
        ("250ms", 0.25),
        ("2", 2),
        ("1.5", 1.5),
        ("1d", 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "1x", "1h 30m", "-5"])
def test_bad_durations(text: str) -> None:
    if text == "-5":
        with pytest.raises(ValidationError):
            OperatorSettings.model_validate({"check_interval": text})
        return
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_listen_addresses() -> None:
    for text, host, port in [(":9090", "0.0.0.0", 9090), ("9090", "0.0.0.0", 9090), ("[::1]:80", "::1", 80)]:
        address = ListenAddress(text)
        assert (address.host, address.port) == (host, port)
    s = settings_from_args(["--metrics-listen", "[::]:9090"])
    assert s.metrics_listen == "[::]:9090"
    assert s.metrics_listen is not None
    assert (s.metrics_listen.host, s.metrics_listen.port) == ("::", 9090)


def test_help_names_values_as_users_write_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings_from_args(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--namespace NS, -n NS" in text
    assert "--check-interval DURATION getWebhookInfo drift check (default: 300s)" in text
    assert "(default: 8760h)" in text
    assert "[env TGBOT_OPERATOR_NAMESPACE, " not in text  # the field's own name comes first
    assert "[env TGBOT_OPERATOR_NAMESPACES, TGBOT_OPERATOR_NAMESPACE]" in text
    assert "--tgbot-operator-namespace" not in text
    assert "default factory" not in text


def test_peering_priority_is_drawn_per_process_unless_given() -> None:
    # kopf pauses every peer that shares the highest priority: replicas must not share one.
    drawn = {settings_from_args(["--peering", "x"]).peering_priority for _ in range(20)}
    assert len(drawn) > 1
    assert all(1 <= value <= 1_000_000 for value in drawn)
    assert settings_from_args(["--peering", "x", "--peering-priority", "7"]).peering_priority == 7


def test_namespace_env_variable_matches_the_flag_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBOT_OPERATOR_NAMESPACE", "bots")
    assert settings_from_args([]).namespaces == ["bots"]
    # The flag wins over the environment, -A included.
    assert settings_from_args(["-A"]).namespaces == []
    assert settings_from_args(["-n", "other"]).namespaces == ["other"]


@pytest.mark.parametrize("flag", ["--check-interval", "--token-check-interval", "--telegram-timeout"])
def test_zero_intervals_are_refused(flag: str) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        settings_from_args([flag, "0"])


def test_bad_flags_exit_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from tgbot_operator.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--check-interval", "5x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--check-interval: " in err
    assert "errors.pydantic.dev" not in err


def test_self_signed_certificate_lifetimes(capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_from_args([])
    assert (s.self_signed_validity, s.self_signed_renew_before) == (365 * 86400, 30 * 86400)
    s = settings_from_args(["--self-signed-validity", "40s", "--self-signed-renew-before", "30s"])
    assert (s.self_signed_validity, s.self_signed_renew_before) == (40, 30)
    from tgbot_operator.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--self-signed-validity", "10s", "--self-signed-renew-before", "30s"])
    assert info.value.code == 2
    assert "--self-signed-renew-before must be shorter" in capsys.readouterr().err
