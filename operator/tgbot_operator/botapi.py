"""A small async Bot API client: the four methods the operator needs, with typed errors.

Error messages never contain the bot token: aiohttp's errors carry request URLs with
``/bot<token>/`` in them, so they are redacted and re-raised without their cause chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .redaction import redact

#: Called once per Bot API call: (method, outcome, seconds). Outcome is "ok" or an error class name.
CallObserver = Callable[[str, str, float], None]


class BotApiError(Exception):
    """A failed Bot API call. ``str()`` is safe to log: it never holds the token."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class Unauthorized(BotApiError):
    """401: the token is wrong or was revoked."""


class NotFound(BotApiError):
    """404: Telegram's answer to a malformed token (or an unknown method)."""


class BadRequest(BotApiError):
    """400 (and other 4xx): the request itself is wrong; ``description`` says why."""

    def __init__(self, method: str, description: str, status: int = 400) -> None:
        super().__init__(method, f"{status} {description}")
        self.description = description
        self.status = status


class RetryAfter(BotApiError):
    """429: flood control; retry after ``seconds``."""

    def __init__(self, method: str, seconds: float) -> None:
        super().__init__(method, f"429 Too Many Requests: retry after {seconds:g}s")
        self.seconds = seconds


class ServerError(BotApiError):
    """5xx from the Bot API server."""

    def __init__(self, method: str, status: int, description: str) -> None:
        super().__init__(method, f"{status} {description}".strip())
        self.status = status


class ServerNotAllowed(BotApiError):
    """The Bot API server is not on the operator's allow-list: nothing was sent to it."""


class NetworkError(BotApiError):
    """The server could not be reached, or did not answer in time, or answered gibberish."""


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
    def from_result(cls, result: Mapping[str, Any]) -> WebhookInfo:
        allowed = result.get("allowed_updates")
        return cls(
            url=str(result.get("url") or ""),
            has_custom_certificate=bool(result.get("has_custom_certificate", False)),
            pending_update_count=int(result.get("pending_update_count") or 0),
            ip_address=result.get("ip_address") or None,
            last_error_date=_opt_int(result.get("last_error_date")),
            last_error_message=result.get("last_error_message") or None,
            last_synchronization_error_date=_opt_int(result.get("last_synchronization_error_date")),
            max_connections=_opt_int(result.get("max_connections")),
            allowed_updates=tuple(allowed) if isinstance(allowed, list) else None,
        )


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class SetWebhookParams:
    url: str
    secret_token: str
    max_connections: int
    allowed_updates: Sequence[str] | None
    drop_pending_updates: bool
    ip_address: str | None
    certificate: bytes | None

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


class BotApiClient:
    """One bot's view of one Bot API server. Reuses the caller's ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        observer: CallObserver | None = None,
    ) -> None:
        self._session = session
        self._base = f"{server.rstrip('/')}/bot{token}/"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer

    def __repr__(self) -> str:
        return "BotApiClient(<redacted>)"

    async def get_me(self) -> BotUser:
        result = await self._call("getMe", {})
        if not isinstance(result, Mapping) or "id" not in result:
            raise NetworkError("getMe", "unexpected result")
        return BotUser(
            id=int(result["id"]), username=result.get("username"), first_name=result.get("first_name", "")
        )

    async def get_webhook_info(self) -> WebhookInfo:
        result = await self._call("getWebhookInfo", {})
        if not isinstance(result, Mapping):
            raise NetworkError("getWebhookInfo", "unexpected result")
        return WebhookInfo.from_result(result)

    async def set_webhook(self, params: SetWebhookParams) -> None:
        await self._call("setWebhook", params.fields(), certificate=params.certificate)

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        await self._call("deleteWebhook", {"drop_pending_updates": drop_pending_updates})

    async def _call(self, method: str, params: Mapping[str, Any], *, certificate: bytes | None = None) -> Any:
        started = time.monotonic()
        outcome = "ok"
        try:
            return await self._request(method, params, certificate)
        except BotApiError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if self._observer is not None:
                self._observer(method, outcome, time.monotonic() - started)

    async def _request(self, method: str, params: Mapping[str, Any], certificate: bytes | None) -> Any:
        kwargs: dict[str, Any]
        if certificate is not None:
            form = aiohttp.FormData()
            for key, value in params.items():
                form.add_field(key, value if isinstance(value, str) else json.dumps(value))
            form.add_field(
                "certificate", certificate, filename="certificate.pem", content_type="application/x-pem-file"
            )
            kwargs = {"data": form}
        else:
            kwargs = {"json": dict(params)}
        try:
            async with self._session.post(self._base + method, timeout=self._timeout, **kwargs) as response:
                status = response.status
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            detail = redact(str(exc), self._token) or "no details"
            raise NetworkError(method, f"{type(exc).__name__}: {detail}") from None
        return self._parse(method, status, text)

    def _parse(self, method: str, status: int, text: str) -> Any:
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            if status >= 500:
                raise ServerError(method, status, "non-JSON answer")
            raise NetworkError(method, f"HTTP {status} with a non-JSON answer")
        if payload.get("ok") is True and status < 400:
            return payload.get("result")
        code = int(payload.get("error_code") or status)
        description = redact(str(payload.get("description") or ""), self._token)
        if code == 401:
            raise Unauthorized(method, f"401 {description or 'Unauthorized'}")
        if code == 404:
            raise NotFound(method, f"404 {description or 'Not Found'}")
        if code == 429:
            parameters = payload.get("parameters") or {}
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise RetryAfter(method, float(retry_after) if isinstance(retry_after, int | float) else 5.0)
        if code >= 500:
            raise ServerError(method, code, description)
        raise BadRequest(method, description or "Bad Request", code)
