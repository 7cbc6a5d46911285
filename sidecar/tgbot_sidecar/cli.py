"""``tgbot-sidecar``: flags generated from :class:`~tgbot_sidecar.settings.Settings`.

argparse builds ``--help`` and parses; only flags actually given are passed to the model, so
everything else comes from ``TGBOT_SIDECAR_*`` environment variables or the defaults - one
model, one set of validators, two ways in.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from .app import Sidecar
from .logs import setup_logging
from .settings import ENV_PREFIX, Settings


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list or any(
        typing.get_origin(arg) is list for arg in typing.get_args(annotation)
    )


_METAVARS = {
    "listen": "HOST:PORT",
    "admin_listen": "HOST:PORT",
    "upstream": "URL",
    "log_level": "LEVEL",
    "max_body_bytes": "BYTES",
    "max_in_flight": "N",
    "max_connections": "N",
    "max_delivery_attempts": "N",
    "max_head_bytes": "BYTES",
    "<class 'float'>": "SECONDS",
    "<class 'pathlib.Path'>": "PATH",
    "pathlib.Path | None": "PATH",
    "<class 'str'>": "VALUE",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgbot-sidecar",
        description=(
            "Receive Telegram webhook updates, enforce the secret token and Telegram's address "
            "ranges, and forward each valid update to the bot's dispatcher in the same pod."
        ),
        epilog=f"Every flag can also be set as an environment variable {ENV_PREFIX}<FLAG> "
        f"(e.g. {ENV_PREFIX}SECRET_TOKEN_FILE); lists there are comma separated. Flags win.",
    )
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = ENV_PREFIX + name.upper()
        required = field.is_required()
        help_text = f"{field.description} [env {env}]" + (" (required)" if required else "")
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif _is_list(field.annotation):
            kwargs["action"] = "append"
            kwargs["metavar"] = "CIDR"
        else:
            kwargs["metavar"] = _METAVARS.get(name) or _METAVARS.get(str(field.annotation), "VALUE")
        if not required and field.default_factory is None and field.default is not None:
            kwargs["help"] += f" (default: {field.default})"
        elif field.default_factory is not None:
            factory = typing.cast(Callable[[], Any], field.default_factory)
            default = factory()
            kwargs["help"] += f" (default: {', '.join(default) if default else 'none'})"
        parser.add_argument(flag, **{k: v for k, v in kwargs.items() if v is not None})
    return parser


def load_settings(argv: list[str] | None = None) -> Settings:
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in error['loc']).replace('_', '-')}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors()
        )
        parser.error(problems)


def _runner(use_uvloop: bool) -> asyncio.Runner:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(argv)
    setup_logging(settings.log_level, settings.json_logs)
    with _runner(settings.uvloop) as runner:
        runner.run(Sidecar(settings).run())
    sys.exit(0)
