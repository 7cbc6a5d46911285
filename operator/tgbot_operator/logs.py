"""Logging setup: plain or JSON lines, with a last-line-of-defence token filter."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from .redaction import redact


class RedactingFilter(logging.Filter):
    """Masks bot-token-looking strings and ``/bot<token>`` paths in every record.

    The operator never logs tokens on purpose; this catches third-party messages (URLs in errors).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned_exc = redact(text)
            if cleaned_exc != text:
                record.exc_info = None
                record.exc_text = cleaned_exc
        return True


def setup_logging(level: str, json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter that is noise at INFO.
    for noisy in ("urllib3", "kubernetes", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
