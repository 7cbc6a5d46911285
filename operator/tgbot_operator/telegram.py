"""What the Bot API answers and how it fails, as types: no I/O, no aiohttp (pure).

The client (``botapi.py``) raises these errors and returns these types; the decisions
(``reconcile.py``, ``profile_*.py``) and the status (``status.py``) use them without any network code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
D = TypeVar("D")

#: The longest string field accepted from the Bot API (URLs are at most 2048 there, but room).
MAX_STRING = 8192


class ErrorKind(enum.StrEnum):
    """How a Bot API call failed: the metric label, the condition reason, what the worker does."""

    UNAUTHORIZED = "Unauthorized"
    NOT_FOUND = "NotFound"
    BAD_REQUEST = "BadRequest"
    RETRY_AFTER = "RetryAfter"
    SERVER_ERROR = "ServerError"
    SERVER_NOT_ALLOWED = "ServerNotAllowed"
    NETWORK_ERROR = "NetworkError"
    MALFORMED_ANSWER = "MalformedAnswer"

    @property
    def rejects_token(self) -> bool:
        """401, or the 404 Telegram answers a malformed token with: the token is the problem."""
        return self in (ErrorKind.UNAUTHORIZED, ErrorKind.NOT_FOUND)


class BotApiError(Exception):
    """A failed Bot API call. ``str()`` is safe to log: it never holds the token."""

    kind: ClassVar[ErrorKind]

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class Unauthorized(BotApiError):
    """401: the token is wrong or was revoked."""

    kind = ErrorKind.UNAUTHORIZED


class NotFound(BotApiError):
    """404: Telegram's answer to a malformed token (or an unknown method)."""

    kind = ErrorKind.NOT_FOUND


class BadRequest(BotApiError):
    """400 (and other 4xx): the request itself is wrong; ``description`` says why."""

    kind = ErrorKind.BAD_REQUEST

    def __init__(self, method: str, description: str, status: int = 400) -> None:
        super().__init__(method, f"{status} {description}")
        self.description = description
        self.status = status


class RetryAfter(BotApiError):
    """429: flood control; retry after ``seconds``."""

    kind = ErrorKind.RETRY_AFTER

    def __init__(self, method: str, seconds: float) -> None:
        super().__init__(method, f"429 Too Many Requests: retry after {seconds:g}s")
        self.seconds = seconds


class ServerError(BotApiError):
    """5xx from the Bot API server."""

    kind = ErrorKind.SERVER_ERROR

    def __init__(self, method: str, status: int, description: str) -> None:
        super().__init__(method, f"{status} {description}".strip())
        self.status = status


class ServerNotAllowed(BotApiError):
    """The Bot API server is not on the operator's allow-list: nothing was sent to it."""

    kind = ErrorKind.SERVER_NOT_ALLOWED


class NetworkError(BotApiError):
    """The server could not be reached, or did not answer in time."""

    kind = ErrorKind.NETWORK_ERROR


class MalformedAnswer(NetworkError):
    """The server answered, but not as the Bot API does (HTML, wrong types, too large)."""

    kind = ErrorKind.MALFORMED_ANSWER


@dataclass(frozen=True)
class BotUser:
    id: int
    username: str | None
    first_name: str = ""


@dataclass(frozen=True)
class WebhookInfo:
    url: str
    has_custom_certificate: bool
    pending_update_count: int
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    last_synchronization_error_date: int | None = None
    max_connections: int | None = None
    allowed_updates: tuple[str, ...] | None = None

    @classmethod
    def from_result(cls, result: Any) -> WebhookInfo:
        """Parse getWebhookInfo's result; :class:`MalformedAnswer` when it is not what the Bot API sends."""
        method = "getWebhookInfo"
        if not isinstance(result, Mapping):
            raise MalformedAnswer(method, "the result is not an object")
        allowed = result_field(method, result, "allowed_updates", list, None)
        if allowed is not None and not all(isinstance(item, str) for item in allowed):
            raise MalformedAnswer(method, "allowed_updates is not a list of strings")
        return cls(
            url=result_field(method, result, "url", str, ""),
            has_custom_certificate=result_field(method, result, "has_custom_certificate", bool, False),
            pending_update_count=result_field(method, result, "pending_update_count", int, 0),
            ip_address=result_field(method, result, "ip_address", str, None) or None,
            last_error_date=result_field(method, result, "last_error_date", int, None),
            last_error_message=result_field(method, result, "last_error_message", str, None) or None,
            last_synchronization_error_date=result_field(
                method, result, "last_synchronization_error_date", int, None
            ),
            max_connections=result_field(method, result, "max_connections", int, None),
            allowed_updates=tuple(allowed) if allowed is not None else None,
        )


def result_field(method: str, result: Mapping[str, Any], key: str, kind: type[T], default: D) -> T | D:
    """``result[key]`` when it has the Bot API's type (``default`` when absent or null).

    Raises :class:`MalformedAnswer`: a bool is no int here, and strings are capped.
    """
    value = result.get(key)
    if value is None:
        return default
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise MalformedAnswer(method, f"{key} is not an integer")
    if not isinstance(value, kind):
        raise MalformedAnswer(method, f"{key} is not a {kind.__name__}")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise MalformedAnswer(method, f"{key} is longer than {MAX_STRING} characters")
    return value


@dataclass(frozen=True)
class SetWebhookParams:
    url: str
    secret_token: str = field(repr=False)
    max_connections: int
    allowed_updates: Sequence[str] | None
    drop_pending_updates: bool
    ip_address: str | None
    certificate: bytes | None = field(repr=False)  # public, but long

    def fields(self) -> dict[str, Any]:
        """Every parameter but the certificate, as the Bot API names them."""
        result: dict[str, Any] = {
            "url": self.url,
            "secret_token": self.secret_token,
            "max_connections": self.max_connections,
            "drop_pending_updates": self.drop_pending_updates,
            # An empty list resets to Telegram's default set; omitting it would keep the old one.
            "allowed_updates": list(self.allowed_updates or []),
        }
        if self.ip_address:
            result["ip_address"] = self.ip_address
        return result
