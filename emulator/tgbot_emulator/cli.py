"""Command line entry point: ``tgbot-emulator --listen 127.0.0.1:8081 --bot TOKEN=name``.

Every flag has an environment variable TGBOT_EMULATOR_<FLAG> (flags win). Once the
server listens, one line ``tgbot-emulator listening on http://HOST:PORT`` goes to
stdout so a parent process can learn the port (``--listen HOST:0`` picks a free one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .config import BotSpec, EmulatorConfig
from .logs import setup_logging
from .server import EmulatorServer


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGBOT_EMULATOR_", extra="ignore")

    listen: str = "127.0.0.1:8081"
    # Env form: comma- or space-separated TOKEN=username items, or a JSON list.
    bot: Annotated[list[str], NoDecode] = []
    allow_local_webhooks: bool = False
    retry_cap: float = 60.0
    delivery_timeout: float = 60.0
    extra_ca_file: Path | None = None
    setwebhook_rate_limit: bool = True
    global_rate_limit: float | None = None
    log_level: str = "info"
    json_logs: bool = False

    @field_validator("bot", mode="before")
    @classmethod
    def _split_bots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item for item in text.replace(",", " ").split() if item]
        return value

    def host_port(self) -> tuple[str, int]:
        text = self.listen.strip()
        if text.isdigit():
            return "127.0.0.1", int(text)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("--listen takes HOST:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)

    def to_config(self) -> EmulatorConfig:
        host, port = self.host_port()
        return EmulatorConfig(
            host=host,
            port=port,
            allow_local_webhooks=self.allow_local_webhooks,
            retry_cap_seconds=self.retry_cap,
            delivery_timeout_seconds=self.delivery_timeout,
            extra_ca_file=self.extra_ca_file,
            bots=[BotSpec.parse(item) for item in self.bot],
            setwebhook_rate_limit=self.setwebhook_rate_limit,
            global_rate_limit_per_second=self.global_rate_limit,
        )


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS keeps unset flags out of the namespace, so environment variables apply.
    parser = argparse.ArgumentParser(
        prog="tgbot-emulator",
        description="The Telegram Bot API emulator.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (port 0: any free)")
    parser.add_argument(
        "--bot", action="append", metavar="TOKEN=USERNAME", help="a bot known from the start (repeatable)"
    )
    parser.add_argument(
        "--allow-local-webhooks", action="store_true", help="like a --local Bot API server: http, any port"
    )
    parser.add_argument("--retry-cap", type=float, metavar="SECONDS", help="longest delay between retries")
    parser.add_argument("--delivery-timeout", type=float, metavar="SECONDS", help="webhook request timeout")
    parser.add_argument("--extra-ca-file", metavar="PEM", help="extra CA for webhooks without a custom cert")
    parser.add_argument(
        "--setwebhook-rate-limit",
        action=argparse.BooleanOptionalAction,
        help="429 on a second new webhook URL within a second (default on)",
    )
    parser.add_argument("--global-rate-limit", type=float, metavar="PER_SECOND", help="calls per second")
    parser.add_argument("--log-level", help="debug, info, warning, error")
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines")
    return parser


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
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = CliSettings(**vars(args))
        config = settings.to_config()
    except ValidationError as exc:
        # Without input values: they may hold a bot token.
        parser.error("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(settings.log_level, settings.json_logs)
    asyncio.run(serve(config))
    sys.exit(0)
