"""Command line entry point: ``tgbot-emulator --listen 127.0.0.1:8081 --bot TOKEN=name``.

Every flag has an environment variable TGBOT_EMULATOR_<FLAG> (flags win). Once the
server listens, one line ``tgbot-emulator listening on http://HOST:PORT`` goes to
stdout so a parent process can learn the port (``--listen HOST:0`` picks a free one).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import tgbot_kit
from tgbot_kit import Duration, ListenAddress, LogLevel, Metavar

from .config import BotSpec, EmulatorConfig
from .server import EmulatorServer


class CliSettings(BaseSettings):
    """The Telegram Bot API emulator."""

    model_config = SettingsConfigDict(env_prefix="TGBOT_EMULATOR_", extra="ignore")

    listen: ListenAddress = Field(
        default=ListenAddress("127.0.0.1:8081"), description="address to serve on (port 0: any free)"
    )
    # Env form: comma- or space-separated TOKEN=username items, or a JSON list.
    bot: Annotated[list[str], NoDecode, Metavar("TOKEN=USERNAME")] = Field(
        default_factory=list, description="a bot known from the start (repeatable)"
    )
    allow_local_webhooks: bool = Field(
        default=False, description="like a --local Bot API server: http, any port"
    )
    retry_cap: Duration = Field(default=60.0, gt=0, description="longest delay between retries")
    delivery_timeout: Duration = Field(default=60.0, gt=0, description="webhook request timeout")
    extra_ca_file: Annotated[Path | None, Metavar("PEM")] = Field(
        default=None, description="extra CA for webhooks without a custom cert"
    )
    setwebhook_rate_limit: bool = Field(
        default=True, description="429 on a second new webhook URL within a second"
    )
    global_rate_limit: Annotated[float | None, Metavar("PER_SECOND")] = Field(
        default=None, gt=0, description="calls per second over all bots (default: no limit)"
    )
    log_level: LogLevel = Field(default="info", description="log level")
    json_logs: bool = Field(default=False, description="log JSON lines")

    @field_validator("bot", mode="before")
    @classmethod
    def _split_bots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item for item in text.replace(",", " ").split() if item]
        return value

    @field_validator("bot")
    @classmethod
    def _bots(cls, value: list[str]) -> list[str]:
        for item in value:
            BotSpec.parse(item)  # its errors never echo the token
        return value

    def to_config(self) -> EmulatorConfig:
        return EmulatorConfig(
            host=self.listen.host,
            port=self.listen.port,
            allow_local_webhooks=self.allow_local_webhooks,
            retry_cap_seconds=self.retry_cap,
            delivery_timeout_seconds=self.delivery_timeout,
            extra_ca_file=self.extra_ca_file,
            bots=[BotSpec.parse(item) for item in self.bot],
            setwebhook_rate_limit=self.setwebhook_rate_limit,
            global_rate_limit_per_second=self.global_rate_limit,
        )


async def serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with EmulatorServer(config) as server:
            print(f"tgbot-emulator listening on {server.url}", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> None:
    settings = tgbot_kit.parse_or_exit(CliSettings, argv, prog="tgbot-emulator")
    config = settings.to_config()
    # stderr: stdout is for the ready line.
    tgbot_kit.setup_logging(settings.log_level, settings.json_logs)
    asyncio.run(serve(config))
    sys.exit(0)
