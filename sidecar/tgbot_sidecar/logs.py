"""Logging setup: text for people, JSON lines for log pipelines.

Nothing on the request path logs a token or an update body; at INFO and above only state
changes (tokens or certificate reloaded) and failures to deliver (update_id and reason) appear.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def setup_logging(level: str, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would log every probe; the admin port does not need it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
