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


#: Runs of Telegram's token alphabet: where a bot token's secret half or a secret token can hide.
_RUN = re.compile(rf"[A-Za-z0-9_-]{{{MIN_SECRET_LENGTH},}}")
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class SecretRegistry:
    """The secrets the operator holds right now (bot tokens, webhook secret tokens), by owner.

    Workers tell it what they read; the log filter and the Event sink mask every one of them, so a
    secret token (random, shaped like nothing) is caught as surely as a bot token. Thread-safe:
    log records are filtered in whatever thread logs them.

    Masking costs set look-ups per run of the token alphabet in the text, not a pass per secret:
    with a thousand bots (three thousand secrets) a log line still takes microseconds.
    """

    def __init__(self) -> None:
        self._by_owner: dict[str, frozenset[str]] = {}
        self._counts: dict[str, int] = {}  # a value two owners hold stays until both let go
        self._lock = threading.Lock()
        # Kept up to date value by value (rebuilding them on every change was O(all secrets):
        # 9 % of the operator's CPU while 10,000 bots registered). ``redact`` reads them without
        # the lock: membership tests on a set another thread adds to are safe, and the two
        # tuples are replaced whole.
        self._plain: set[str] = set()
        self._length_counts: dict[int, int] = {}
        self._lengths: tuple[int, ...] = ()
        self._odd_set: set[str] = set()
        self._odd: tuple[str, ...] = ()

    def set(self, owner: str, *secrets: str | None) -> None:
        values = frozenset(
            variant
            for secret in secrets
            if secret and len(secret) >= MIN_SECRET_LENGTH
            for variant in _variants(secret)
        )
        with self._lock:
            old = self._by_owner.get(owner, frozenset())
            if old == values:
                return
            if values:
                self._by_owner[owner] = values
            else:
                self._by_owner.pop(owner, None)
            self._update(added=values - old, removed=old - values)

    def drop(self, owner: str) -> None:
        with self._lock:
            old = self._by_owner.pop(owner, None)
            if old is not None:
                self._update(added=frozenset(), removed=old)

    def _update(self, *, added: frozenset[str], removed: frozenset[str]) -> None:
        for value in added:
            held = self._counts.get(value, 0)
            self._counts[value] = held + 1
            if not held:
                self._mask(value, True)
        for value in removed:
            left = self._counts.get(value, 0) - 1
            if left > 0:
                self._counts[value] = left
            else:
                self._counts.pop(value, None)
                self._mask(value, False)

    def _mask(self, value: str, on: bool) -> None:
        if _ALPHABET.issuperset(value):
            (self._plain.add if on else self._plain.discard)(value)
            before = self._length_counts.get(len(value), 0)
            after = before + (1 if on else -1)
            if after:
                self._length_counts[len(value)] = after
            else:
                self._length_counts.pop(len(value), None)
            if not before or not after:
                self._lengths = tuple(sorted(self._length_counts, reverse=True))
        elif not _tail_is_plain(value):
            # A bot token ("<id>:<tail>") needs no pass of its own: its tail (one of its
            # variants, held with it) is masked as a plain value.
            (self._odd_set.add if on else self._odd_set.discard)(value)
            self._odd = tuple(sorted(self._odd_set, key=len, reverse=True))

    def redact(self, text: str) -> str:
        plain, lengths, odd = self._plain, self._lengths, self._odd
        for value in odd:
            text = text.replace(value, REDACTED)
        if plain:
            text = _RUN.sub(lambda match: _mask_run(match.group(0), plain, lengths), text)
        return redact(text)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_owner)

    def __repr__(self) -> str:
        return f"SecretRegistry({len(self)} owners)"


def _tail_is_plain(value: str) -> bool:
    _, sep, tail = value.partition(":")
    return bool(sep) and len(tail) >= MIN_SECRET_LENGTH and _ALPHABET.issuperset(tail)


def _mask_run(run: str, values: set[str], lengths: tuple[int, ...]) -> str:
    """``run`` with every known secret inside it masked (longest first)."""
    if run in values:
        return REDACTED
    parts: list[str] = []
    start = i = 0
    end = len(run)
    while i < end:
        for length in lengths:
            if i + length <= end and run[i : i + length] in values:
                parts += (run[start:i], REDACTED)
                i += length
                start = i
                break
        else:
            i += 1
    if not parts:
        return run
    parts.append(run[start:])
    return "".join(parts)
