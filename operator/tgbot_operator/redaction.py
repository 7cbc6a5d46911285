"""Keep tokens out of anything that is logged, posted as an Event or written to status."""

from __future__ import annotations

import re

REDACTED = "***"
_BOT_PATH = re.compile(r"/bot[^/\s?#]+")
_TOKEN_LIKE = re.compile(r"\b\d{3,20}:[A-Za-z0-9_-]{20,}")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, every ``/bot<token>`` path and every token-looking word masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
            # A bot token's secret half alone (after "<id>:") is a secret too.
            _, sep, tail = secret.partition(":")
            if sep and len(tail) >= 8:
                text = text.replace(tail, REDACTED)
    text = _BOT_PATH.sub(f"/bot{REDACTED}", text)
    return _TOKEN_LIKE.sub(REDACTED, text)
