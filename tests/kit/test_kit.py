"""tgbot_kit: the value types, the CliApp command line and the one log schema the programs share."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tgbot_kit import (
    CommaList,
    Duration,
    ListenAddress,
    LogLevel,
    Metavar,
    format_duration,
    parse,
    parse_duration,
    parse_or_exit,
    setup_logging,
)


class Demo(BaseSettings):
    """A demo program."""

    model_config = SettingsConfigDict(env_prefix="TGBOT_DEMO_", frozen=True)

    listen: ListenAddress = Field(ListenAddress("0.0.0.0:8443"), description="where to listen")
    upstream: Annotated[str, Metavar("URL")] = Field(description="where to forward")
    network: Annotated[CommaList, Metavar("CIDR")] = Field(default_factory=list, description="networks")
    timeout: Duration = Field(30.0, gt=0, description="how long to wait")
    uvloop: bool = Field(True, description="use uvloop")
    log_level: LogLevel = Field("info", description="log level")
    state: Path | None = Field(None, description="a file")


class Values(BaseModel):
    duration: Duration = 0.0
    level: LogLevel = "info"
    listen: ListenAddress | None = None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300s", 300),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1d", 86400),
        ("2", 2),
        ("1.5", 1.5),
        (7, 7),
    ],
)
def test_durations_in_any_unit_or_plain_seconds(text: str | int, seconds: float) -> None:
    assert Values(duration=text).duration == seconds  # type: ignore[arg-type]
    if isinstance(text, str):
        assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "1x", "1h 30m", "-5", "inf", "nan", True])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValidationError):
        Values(duration=text)  # type: ignore[arg-type]


def test_defaults_are_shown_as_durations() -> None:
    assert [format_duration(v) for v in (300.0, 0.25, 8760 * 3600.0, 5400.0)] == [
        "300s",
        "0.25s",
        "8760h",
        "5400s",
    ]


@pytest.mark.parametrize(("text", "level"), [("DEBUG", "debug"), ("Info", "info"), ("warn", "warning")])
def test_log_levels_in_any_case(text: str, level: str) -> None:
    assert Values(level=text).level == level  # type: ignore[arg-type]


def test_unknown_log_levels_are_refused() -> None:
    with pytest.raises(ValidationError):
        Values(level="loud")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:80", "127.0.0.1", 80), (":9090", "0.0.0.0", 9090), ("9090", "0.0.0.0", 9090),
     ("[::]:8443", "::", 8443), ("[fe80::1%eth0]:1", "fe80::1%eth0", 1), ("localhost:0", "localhost", 0)],
)  # fmt: skip
def test_listen_addresses(text: str, host: str, port: int) -> None:
    address = Values(listen=text).listen  # type: ignore[arg-type]
    assert address == text  # it stays the text users wrote
    assert address is not None
    assert (address.host, address.port) == (host, port)


@pytest.mark.parametrize("text", ["x:y", "1.2.3.4:70000", "::1:80", "[nope]:80", "host:"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValidationError):
        Values(listen=text)  # type: ignore[arg-type]


def test_flags_environment_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBOT_DEMO_NETWORK", "10.0.0.0/8, 127.0.0.0/8")
    monkeypatch.setenv("TGBOT_DEMO_TIMEOUT", "5m")
    monkeypatch.setenv("TGBOT_DEMO_LISTEN", "127.0.0.1:1")
    s = parse(
        Demo,
        ["--upstream", "http://bot/", "--listen", "[::1]:0", "--no-uvloop", "--log-level", "DEBUG"],
        prog="d",
    )
    assert (s.network, s.timeout, s.listen.host, s.uvloop, s.log_level) == (
        ["10.0.0.0/8", "127.0.0.0/8"], 300, "::1", False, "debug",
    )  # fmt: skip
    repeated = parse(Demo, ["--upstream", "u", "--network", "1.0.0.0/8", "--network", "2.0.0.0/8"], prog="d")
    assert repeated.network == ["1.0.0.0/8", "2.0.0.0/8"]  # flags win over the environment


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse(Demo, ["--help"], prog="tgbot-demo")
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: tgbot-demo" in text
    assert "A demo program." in text
    assert "--listen HOST:PORT where to listen (default: 0.0.0.0:8443) [env TGBOT_DEMO_LISTEN]" in text
    assert "--upstream URL where to forward (required) [env TGBOT_DEMO_UPSTREAM]" in text
    assert "--network CIDR networks (default: none)" in text
    assert "--timeout DURATION how long to wait (default: 30s)" in text
    assert "--uvloop, --no-uvloop use uvloop (default: on)" in text
    assert "--log-level LEVEL" in text
    assert "--state PATH a file [env TGBOT_DEMO_STATE]" in text


def test_invalid_settings_exit_2_naming_each_flag_without_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_or_exit(Demo, ["--timeout", "0", "--listen", "123456:SECRET"], prog="tgbot-demo")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tgbot-demo: invalid settings:\n")
    for line in (
        "  --timeout: Input should be greater than 0",
        "  --upstream: Field required",
        "  --listen: ",
    ):
        assert line in err
    assert "errors.pydantic.dev" not in err


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("debug", True, context=lambda record: {"object": "ns/b"}, hidden_extras=("settings",))
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("tgbot_demo.x").exception(
                "failed %s", 1, extra={"update_id": 7, "settings": object()}
            )
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert list(record)[:4] == ["time", "level", "logger", "message"]
    assert record["time"].endswith("+00:00")
    assert (record["level"], record["logger"], record["message"]) == ("ERROR", "tgbot_demo.x", "failed 1")
    assert (record["object"], record["update_id"]) == ("ns/b", 7)
    assert "settings" not in record
    assert "RuntimeError: boom" in record["exc_info"]
