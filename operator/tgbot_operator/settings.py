"""The operator's settings: one model, from flags (cli.py) and ``TGBOT_OPERATOR_*`` variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import names
from .model import parse_duration
from .servers import AllowedServers, InvalidServerUrl, normalise


def _seconds(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value).total_seconds()
    raise ValueError(f"not a duration: {value!r}")


Seconds = Annotated[float, BeforeValidator(_seconds)]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to 0.0.0.0."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"not a listen address: {value!r} (expected HOST:PORT)") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, number


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TGBOT_OPERATOR_", extra="ignore", frozen=True, populate_by_name=True
    )

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch; empty: all namespaces.",
        # The flag is --namespace, so TGBOT_OPERATOR_NAMESPACE must work as well as ..._NAMESPACES.
        validation_alias=AliasChoices("namespaces", "tgbot_operator_namespaces", "tgbot_operator_namespace"),
    )
    liveness_listen: str | None = Field(default=None, description="HOST:PORT for kopf's /healthz.")
    metrics_listen: str | None = Field(default=None, description="HOST:PORT for Prometheus /metrics.")
    json_logs: bool = False
    log_level: str = "info"
    default_bot_api_server: str = names.DEFAULT_BOT_API_SERVER
    allow_bot_api_server: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bot API servers TelegramBots may name besides the default one (exact URLs).",
    )
    check_interval: Seconds = 300.0
    token_check_interval: Seconds = 30.0
    rotation_propagation_grace: Seconds = 90.0
    rotation_retire_grace: Seconds = 120.0
    deletion_timeout: Seconds = 300.0
    unauthorized_retry_interval: Seconds = 600.0
    telegram_timeout: Seconds = 30.0
    self_signed_validity: Seconds = 365 * 86400.0
    self_signed_renew_before: Seconds = 30 * 86400.0
    peering: str | None = Field(default=None, description="kopf peering name (HA); None: standalone.")
    # kopf pauses *every* peer that shares the highest priority, so the replicas of one Deployment
    # (which all get the same flags) must not share one: by default each process draws its own.
    peering_priority: int = Field(
        default_factory=lambda: secrets.randbelow(1_000_000) + 1,
        description="kopf peering priority; the highest runs, the others pause (default: random).",
    )
    kubeconfig: Path | None = None

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_bot_api_server", mode="before")
    @classmethod
    def _split_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_bot_api_server")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for url in value:
            _check_server(url)
        return value

    @field_validator("default_bot_api_server")
    @classmethod
    def _default_server(cls, value: str) -> str:
        _check_server(value)
        return value

    @field_validator("liveness_listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("log level must be one of debug, info, warning, error, critical")
        return value

    @field_validator(
        "check_interval",
        "token_check_interval",
        "rotation_propagation_grace",
        "rotation_retire_grace",
        "deletion_timeout",
        "unauthorized_retry_interval",
        "telegram_timeout",
        "self_signed_validity",
        "self_signed_renew_before",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if value < 0:
            raise ValueError("durations must not be negative")
        return value

    @field_validator("check_interval", "token_check_interval", "telegram_timeout", "self_signed_validity")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        # An interval of 0 would spin; a timeout of 0 would fail every call.
        if value <= 0:
            raise ValueError("must be more than 0")
        return value

    @model_validator(mode="after")
    def _renewal_inside_validity(self) -> OperatorSettings:
        if self.self_signed_renew_before >= self.self_signed_validity:
            raise ValueError(
                "--self-signed-renew-before must be shorter than --self-signed-validity "
                "(otherwise every certificate is renewed at once)"
            )
        return self

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def allowed_servers(self) -> AllowedServers:
        return AllowedServers(self.default_bot_api_server, self.allow_bot_api_server)


def _check_server(url: str) -> None:
    try:
        normalise(url)
    except InvalidServerUrl as exc:
        raise ValueError(f"{exc}: {url.split('@')[-1]!r}") from None
