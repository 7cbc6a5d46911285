"""The emulator's configuration: one pydantic model used in-process and by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BotSpec(BaseModel):
    """A bot known from the start. Written on the command line as ``TOKEN=username``."""

    model_config = ConfigDict(frozen=True)

    token: str
    username: str
    first_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> BotSpec:
        token, sep, username = text.partition("=")
        if not sep or not token or not username:
            raise ValueError("a bot is written as TOKEN=username")
        return cls(token=token.strip(), username=username.strip())

    @field_validator("token")
    @classmethod
    def _token_has_id(cls, value: str) -> str:
        bot_id, sep, secret = value.partition(":")
        if not sep or not bot_id.isdigit() or not secret:
            # Never echo the token back in the error: it may be a real one.
            raise ValueError("a bot token looks like <digits>:<secret>")
        return value


class EmulatorConfig(BaseModel):
    """Everything that changes how the emulator behaves. All fields have defaults."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    # Behave like a self-hosted Bot API server (--local): http, any port, local hosts.
    allow_local_webhooks: bool = False
    retry_initial_seconds: float = Field(default=1.0, gt=0)
    retry_cap_seconds: float = Field(default=60.0, gt=0)
    delivery_timeout_seconds: float = Field(default=60.0, gt=0)
    # Extra trust anchor for webhooks without an uploaded certificate (tests use trustme).
    extra_ca_file: Path | None = None
    bots: list[BotSpec] = Field(default_factory=list)
    # Telegram answers 429 to a second setWebhook with a new URL within a second.
    setwebhook_rate_limit: bool = True
    # Calls per second over all bots; None disables the limit.
    global_rate_limit_per_second: float | None = Field(default=None, gt=0)
    # How long getUpdates may long-poll at most, whatever the client asks for.
    max_long_poll_seconds: float = Field(default=50.0, ge=0)

    @field_validator("bots", mode="before")
    @classmethod
    def _bots_from_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [BotSpec.parse(item) if isinstance(item, str) else item for item in value]
        return value
