"""Keep tokens out of anything that is logged, posted as an Event or written to status."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "***"
_BOT_PATH = re.compile(r"/bot[^/\s?#]+")
_TOKEN_LIKE = re.compile(r"\b\d{3,20}:[A-Za-z0-9_-]{20,}")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
#: Shorter values are not masked by value (they would mask ordinary words); secret tokens the
#: operator generates are 64 characters, bot tokens 40 or more.
MIN_SECRET_LENGTH = 8


def _variants(secret: str) -> Iterable[str]:
    yield secret
    # A bot token's secret half alone (after "<id>:") is a secret too.
    _, sep, tail = secret.partition(":")
    if sep and len(tail) >= MIN_SECRET_LENGTH:
        yield tail


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, every ``/bot<token>`` path, every token-looking word and
    every PEM private key masked."""
    for secret in secrets:
        if secret:
            for variant in _variants(secret):
                text = text.replace(variant, REDACTED)
    text = _BOT_PATH.sub(f"/bot{REDACTED}", text)
    text = _TOKEN_LIKE.sub(REDACTED, text)
    return _PRIVATE_KEY.sub(REDACTED, text)


class SecretRegistry:
    """The secrets the operator holds right now (bot tokens, webhook secret tokens), by owner.

    Workers tell it what they read; the log filter and the Event sink mask every one of them, so a
    secret token (random, shaped like nothing) is caught as surely as a bot token. Thread-safe:
    log records are filtered in whatever thread logs them.
    """

    def __init__(self) -> None:
        self._by_owner: dict[str, frozenset[str]] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def set(self, owner: str, *secrets: str | None) -> None:
        values = frozenset(
            variant
            for secret in secrets
            if secret and len(secret) >= MIN_SECRET_LENGTH
            for variant in _variants(secret)
        )
        with self._lock:
            if self._by_owner.get(owner) == values:
                return
            if values:
                self._by_owner[owner] = values
            else:
                self._by_owner.pop(owner, None)
            self._pattern = None

    def drop(self, owner: str) -> None:
        with self._lock:
            if self._by_owner.pop(owner, None) is not None:
                self._pattern = None

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._by_owner:
                values = sorted({v for vs in self._by_owner.values() for v in vs}, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in values))
            return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return redact(text)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_owner)

    def __repr__(self) -> str:
        return f"SecretRegistry({len(self)} owners)"
