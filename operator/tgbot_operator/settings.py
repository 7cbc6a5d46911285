"""The operator's settings: one model, from flags (cli.py) and ``TGBOT_OPERATOR_*`` variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, CliToggleFlag, SettingsConfigDict

from tgbot_kit import CommaList, Duration, ListenAddress, LogLevel, Metavar

from . import names
from .servers import AllowedServers, InvalidServerUrl, normalise

Url = Annotated[str, Metavar("URL")]


class OperatorSettings(BaseSettings):
    """Runs Telegram bots' webhooks on Kubernetes (TelegramBot resources, tgbot.dev/v1alpha1)."""

    model_config = SettingsConfigDict(
        env_prefix="TGBOT_OPERATOR_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    namespaces: Annotated[CommaList, Metavar("NS")] = Field(
        default_factory=list,
        description="watch NS (repeatable); default: all namespaces",
        # The flag is --namespace, so TGBOT_OPERATOR_NAMESPACE must work as well as ..._NAMESPACES.
        validation_alias=AliasChoices("namespaces", "tgbot_operator_namespaces", "tgbot_operator_namespace"),
    )
    all_namespaces: CliToggleFlag[bool] = Field(
        default=False, description="watch all namespaces (the default; wins over TGBOT_OPERATOR_NAMESPACE)"
    )
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file (default: in-cluster, else $KUBECONFIG)"
    )
    liveness_listen: ListenAddress | None = Field(
        default=None, description="serve kopf's liveness probe at /healthz"
    )
    metrics_listen: ListenAddress | None = Field(
        default=None, description="serve Prometheus metrics at /metrics"
    )
    json_logs: bool = Field(default=False, description="log JSON lines")
    log_level: LogLevel = Field(default="info", description="log level")
    default_bot_api_server: Url = Field(
        default=names.DEFAULT_BOT_API_SERVER, description="when spec.botApiServer is absent (always allowed)"
    )
    allow_bot_api_server: Annotated[CommaList, Metavar("URL")] = Field(
        default_factory=list,
        description="a Bot API server TelegramBots may name in spec.botApiServer (repeatable; exact URL, "
        "http:// only when named so); default: only the default server",
    )
    # gt=0: an interval of 0 would spin; a timeout of 0 would fail every call.
    check_interval: Duration = Field(default=300.0, gt=0, description="getWebhookInfo drift check")
    token_check_interval: Duration = Field(default=30.0, gt=0, description="re-read token Secrets")
    rotation_propagation_grace: Duration = Field(default=90.0, description="new token -> setWebhook wait")
    rotation_retire_grace: Duration = Field(default=120.0, description="setWebhook -> old token dropped")
    deletion_timeout: Duration = Field(default=300.0, description="give up deleteWebhook after")
    unauthorized_retry_interval: Duration = Field(default=600.0, description="retry a rejected token after")
    telegram_timeout: Duration = Field(default=30.0, gt=0, description="timeout of one Bot API call")
    bot_api_rate_limit: Annotated[float | None, Metavar("N")] = Field(
        default=None,
        gt=0,
        description="at most N requests per second to each Bot API server, shared by all its bots "
        "(for self-hosted servers); default: no limit",
    )
    self_signed_validity: Duration = Field(
        default=365 * 86400.0, gt=0, description="validity of self-signed certificates"
    )
    self_signed_renew_before: Duration = Field(
        default=30 * 86400.0, description="renew a self-signed certificate this long before it expires"
    )
    secret_reads: Annotated[Literal["watch", "poll"], Metavar("watch|poll")] = Field(
        default="watch",
        description="watch: Secrets through a metadata-only watch (needs list/watch on secrets), "
        "GET only on change; poll: GET by name at every token check",
    )
    peering: Annotated[str | None, Metavar("NAME")] = Field(
        default=None, description="kopf peering for HA (default: standalone)"
    )
    # kopf pauses *every* peer that shares the highest priority, so the replicas of one Deployment
    # (which all get the same flags) must not share one: by default each process draws its own.
    peering_priority: int = Field(
        default_factory=lambda: secrets.randbelow(1_000_000) + 1,
        description="with --peering: the highest priority runs, others pause (default: random per process)",
    )

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

    @model_validator(mode="after")
    def _all_namespaces_wins(self) -> OperatorSettings:
        # -A on the command line must beat TGBOT_OPERATOR_NAMESPACE(S) from the environment; by
        # now both are merged, so the flag's meaning is applied here (the model is frozen after).
        if self.all_namespaces:
            object.__setattr__(self, "namespaces", [])
        return self

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
