"""The sidecar's configuration: one pydantic-settings model for flags and environment variables.

Every field is a flag ``--kebab-name`` (see :mod:`tgbot_sidecar.cli`) and an environment variable
``TGBOT_SIDECAR_UPPER_NAME``. Flags win over the environment. The sidecar's whole world is this
model plus the files it names: it needs neither the bot token nor Kubernetes access.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tgbot_kit import CommaList, Duration, ListenAddress, LogLevel, Metavar, split_host_port

ENV_PREFIX = "TGBOT_SIDECAR_"

#: Telegram's published webhook source ranges (https://core.telegram.org/bots/webhooks).
TELEGRAM_NETWORKS = ("149.154.160.0/20", "91.108.4.0/22")

Cidrs = Annotated[CommaList, Metavar("CIDR")]

__all__ = ["ENV_PREFIX", "TELEGRAM_NETWORKS", "Settings", "split_host_port"]


class Settings(BaseSettings):
    """Configuration of one sidecar process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    listen: ListenAddress = Field(
        ListenAddress("0.0.0.0:8443"),
        description="HOST:PORT of the webhook server ([::]:8443 listens dual-stack)",
    )
    path: str = Field("/webhook", description="the webhook path; every other path answers 404")
    secret_token_file: Path = Field(
        description="file holding the current secret token (re-read when it changes)",
    )
    previous_secret_token_file: Path | None = Field(
        None,
        description="file holding the previous token, accepted too while it exists and is non-empty",
    )
    upstream: Annotated[str, Metavar("URL")] = Field(
        description="URL of the dispatcher's webhook, e.g. http://127.0.0.1:8081/webhook",
    )
    upstream_unix_socket: Path | None = Field(
        None,
        description="connect to the upstream through this Unix socket; --upstream then gives Host and path",
    )
    allow_network: Cidrs = Field(
        default_factory=lambda: list(TELEGRAM_NETWORKS),
        description="CIDR allowed to deliver updates (repeatable; default: Telegram's ranges)",
    )
    trusted_proxy: Cidrs = Field(
        default_factory=list,
        description="CIDR of proxies whose X-Forwarded-For is believed (repeatable; default: none)",
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate chain; serve TLS 1.2+ (reloaded on change)"
    )
    tls_key: Path | None = Field(None, description="PEM private key for --tls-cert")
    admin_listen: ListenAddress = Field(
        ListenAddress("0.0.0.0:9090"),
        description="HOST:PORT of /healthz, /readyz and /metrics (never filtered)",
    )
    max_body_bytes: Annotated[int, Metavar("BYTES")] = Field(
        1 << 20, gt=0, description="largest accepted update body in bytes"
    )
    # 57, not 55: aiogram answers by itself after 55 s (moving the handler to the background);
    # its empty 200 must win the race against our 504, or Telegram redelivers an update the bot
    # is still handling. Still below Telegram's own 60 s.
    upstream_timeout: Duration = Field(
        57.0, gt=0, description="how long to wait for the dispatcher (below Telegram's 60 s)"
    )
    max_in_flight: int = Field(100, gt=0, description="concurrent forwards; beyond that answer 503")
    max_connections: int = Field(
        1000, gt=0, description="open webhook connections; beyond that a new one gets a bare 503, then closed"
    )
    max_head_bytes: Annotated[int, Metavar("BYTES")] = Field(
        16 * 1024,
        ge=1024,
        description="largest request head in bytes; also bounds a chunked body's chunk lines and trailers",
    )
    head_timeout: Duration = Field(
        10.0,
        gt=0,
        description="how long a client has to send a whole request head (a new connection: from the accept)",
    )
    body_timeout: Duration = Field(
        30.0, gt=0, description="how long a client has to send a whole request body once its head is in"
    )
    idle_timeout: Duration = Field(
        120.0, gt=0, description="how long a kept-alive connection may wait for its next request"
    )
    send_timeout: Duration = Field(
        30.0, gt=0, description="how long an answer may wait for a client that does not read it"
    )
    dedup_window: Duration = Field(
        120.0, ge=0, description="how long an update_id forwarded successfully is answered as a duplicate"
    )
    # 5: a restart or a short blip of what the handler needs is over within a few redeliveries,
    # while every attempt runs the handler again (its side effects too) and holds up the chat.
    max_delivery_attempts: int = Field(
        5,
        ge=0,
        description="failed attempts of one update (5xx, timeout, connection lost) before it is answered "
        "200 and dead-lettered; 0: never give up",
    )
    dead_letter_file: Path | None = Field(
        None, description="append the updates given up on to this file as JSON lines (default: none)"
    )
    drain_timeout: Duration = Field(
        25.0, ge=0, description="how long SIGTERM waits for in-flight forwards before exiting"
    )
    ready_requires_upstream: bool = Field(
        False, description="make /readyz also require that the upstream accepts connections"
    )
    reload_interval: Duration = Field(
        1.0, gt=0, description="time between checks of token and TLS files for changes"
    )
    json_logs: bool = Field(False, description="log JSON lines instead of text")
    log_level: LogLevel = Field("info", description="log level")
    uvloop: bool = Field(True, description="use uvloop when it is installed")

    @field_validator("allow_network", "trusted_proxy")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in " ?#\r\n"):
            raise ValueError("path must start with / and contain no spaces, ? or #")
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("upstream must be an http:// URL (the dispatcher lives in the same pod)")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.listen.port == self.admin_listen.port != 0:
            raise ValueError("--admin-listen must not share the webhook port")
        return self
