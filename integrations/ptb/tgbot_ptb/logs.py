"""Keep the bot token out of the logs.

Two places print it with PTB: httpx logs every request at INFO as
``HTTP Request: POST https://.../bot<TOKEN>/sendMessage``, and PTB's Bot logs its base URL
(``.../bot<TOKEN>``) at DEBUG when it is built. So httpx and httpcore stay at WARNING, and a
log record factory masks anything shaped like a token in every record, whichever logger made
it (a filter on one logger would not cover its children).
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Telegram tokens: the bot id, a colon, 35 characters of [A-Za-z0-9_-].
_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
MASK = "<token>"


class _Redacting:
    """Wraps the current record factory; marks itself so it is installed once."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.tokens: set[str] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's error to report (at emit), not ours
            return record
        redacted = _TOKEN.sub(MASK, message)
        for token in self.tokens:
            redacted = redacted.replace(token, MASK)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record


def keep_tokens_out_of_logs(token: str | None = None) -> None:
    """httpx/httpcore below INFO; every log record masked (also for ``token``, whatever its shape)."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _Redacting):
        factory = _Redacting(factory)
        logging.setLogRecordFactory(factory)
    if token:
        factory.tokens.add(token)
