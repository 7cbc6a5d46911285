"""``tgbot-sidecar``: flags and ``TGBOT_SIDECAR_*`` variables -> :class:`~tgbot_sidecar.settings.Settings`.

tgbot_kit derives the flags from the model (pydantic-settings' CliApp): one model, one set of
validators, two ways in; flags win.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import tgbot_kit

from .app import Sidecar
from .settings import ENV_PREFIX, Settings

PROG = "tgbot-sidecar"
DESCRIPTION = (
    "Receive Telegram webhook updates, enforce the secret token and Telegram's address "
    "ranges, and forward each valid update to the bot's dispatcher in the same pod."
)
EPILOG = (
    f"Every flag can also be set as an environment variable {ENV_PREFIX}<FLAG> "
    f"(e.g. {ENV_PREFIX}SECRET_TOKEN_FILE); lists there are comma separated. Flags win."
)


def load_settings(argv: list[str] | None = None) -> Settings:
    """The settings; invalid ones are reported on stderr with exit status 2."""
    return tgbot_kit.parse_or_exit(Settings, argv, prog=PROG, description=DESCRIPTION, epilog=EPILOG)


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
    # Nothing on the request path logs a token or an update body; at INFO and above only state
    # changes (tokens or certificate reloaded) and failures to deliver (update_id and reason).
    # aiohttp's access log would log every probe; the admin port does not need it.
    tgbot_kit.setup_logging(settings.log_level, settings.json_logs, quiet={"aiohttp.access": logging.WARNING})
    with _runner(settings.uvloop) as runner:
        runner.run(Sidecar(settings).run())
    sys.exit(0)
