"""Redaction of bot tokens and secret tokens before anything is logged or shown."""

from __future__ import annotations

import re

REDACTED = "***"

# A token in a request path: /bot<id>:<secret>/method. The id is public (it is the
# bot's user id); everything after the colon is the credential.
_PATH_TOKEN = re.compile(r"/bot(\d+):[^/]*")
# A token anywhere else in a path (e.g. pasted into the method name by mistake).
_ANY_TOKEN = re.compile(r"(\d+):[A-Za-z0-9_-]+")


def redact_token(token: str) -> str:
    """ "123:ABC" -> "123:***"; anything without a colon is hidden entirely."""
    bot_id, sep, _ = token.partition(":")
    if not sep:
        return REDACTED
    return f"{bot_id}:{REDACTED}"


def redact_path(path: str) -> str:
    """Hide the token inside a /bot<token>/<method> path (for access logs), and any other
    token-like text in it; control characters become "?" so a path can't forge log lines."""
    redacted = _PATH_TOKEN.sub(lambda m: f"/bot{m.group(1)}:{REDACTED}", path)
    redacted = _ANY_TOKEN.sub(lambda m: f"{m.group(1)}:{REDACTED}", redacted)
    return "".join(ch if ch.isprintable() else "?" for ch in redacted)


def redact_url(url: str) -> str:
    """Keep only scheme://host[:port] of a webhook URL: its path may hold a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return REDACTED
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{host}/..."
