"""Which Bot API servers the operator may send bot tokens to.

A TelegramBot's ``spec.botApiServer`` is untrusted input: whoever can create a TelegramBot could
otherwise make the operator send the value of any Secret of the namespace (in the URL path) to any
host. Only servers named by the operator's own flags are called; URLs are compared normalised.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidServerUrl(ValueError):
    """Not an absolute http(s) URL without user info, query or fragment."""


def normalise(url: str) -> str:
    """``scheme://host:port/path``: scheme and host lowercase, the port explicit, no trailing slash.

    Raises :class:`InvalidServerUrl` for anything else (the message never repeats user info).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidServerUrl("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidServerUrl("only http:// and https:// URLs name a Bot API server")
    if "@" in parts.netloc:
        raise InvalidServerUrl("a Bot API server URL must not contain user info (user:password@)")
    if parts.query or url.rstrip().endswith("?"):
        raise InvalidServerUrl("a Bot API server URL must not contain a query (?...)")
    if parts.fragment or "#" in url:
        raise InvalidServerUrl("a Bot API server URL must not contain a fragment (#...)")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidServerUrl("a Bot API server URL needs a host")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}{path}"


class AllowedServers:
    """The normalised allow-list. The default server is always on it (bots without botApiServer
    use it); any other, ``http://`` ones included, only when named exactly."""

    def __init__(self, default: str, allowed: Iterable[str] = ()) -> None:
        self._allowed = frozenset(normalise(url) for url in (default, *allowed))

    def allows(self, url: str) -> bool:
        try:
            return normalise(url) in self._allowed
        except InvalidServerUrl:
            return False

    def __len__(self) -> int:
        return len(self._allowed)


def shown_server(server: str) -> str:
    """The server URL as status and Events may show it: never user info (a password) in it."""
    scheme, sep, rest = server.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f'"{(scheme + sep + authority + slash + path)[:200]}"'
