"""A small async Bot API client: the four methods the operator needs, with typed errors.

Error messages never contain the bot token: aiohttp's errors carry request URLs with
``/bot<token>/`` in them, so they are redacted and re-raised without their cause chain.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

import aiohttp

# What aiohttp's trust_env itself uses to read HTTP(S)_PROXY (credentials stripped, ~/.netrc).
from aiohttp.helpers import ProxyInfo, proxies_from_env

from .ratelimit import RateLimiter
from .redaction import redact
from .telegram import (
    BadRequest,
    BotApiError,
    BotUser,
    MalformedAnswer,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    SetWebhookParams,
    Unauthorized,
    WebhookInfo,
    result_field,
)

#: Called once per Bot API call: (method, outcome, seconds). Outcome is "ok" or an error class name.
CallObserver = Callable[[str, str, float], None]


class EnvProxies:
    """``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` for the Bot API, read once (``from_env``
    reads ~/.netrc for proxy credentials: call it off the event loop).

    aiohttp's ``trust_env=True`` read the environment and ~/.netrc in a thread on every request:
    with 10,000 bots registering, 2.7 % of the operator's CPU samples, plus a thread hop per call.
    The answer per server is kept (the servers are the few on the allow-list).
    """

    def __init__(self, proxies: Mapping[str, ProxyInfo]) -> None:
        self._proxies = dict(proxies)
        self._by_origin: dict[tuple[str, str], ProxyInfo | None] = {}

    @classmethod
    def from_env(cls) -> EnvProxies:
        return cls(proxies_from_env())

    def for_url(self, url: str) -> ProxyInfo | None:
        """The proxy for ``url`` as aiohttp's ``trust_env`` chooses it (None: connect directly)."""
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if (scheme, host) not in self._by_origin:
            info = self._proxies.get(scheme)
            if info is not None and host and urllib.request.proxy_bypass(host):
                info = None
            self._by_origin[scheme, host] = info
        return self._by_origin[scheme, host]


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
        limiter: RateLimiter | None = None,
        on_wait: Callable[[float], None] | None = None,
        proxy: ProxyInfo | None = None,
    ) -> None:
        self._proxy: dict[str, Any] = (
            {} if proxy is None else {"proxy": proxy.proxy, "proxy_auth": proxy.proxy_auth}
        )
        self._limiter = limiter
        self._on_wait = on_wait
        self._session = session
        self._base = f"{server.rstrip('/')}/bot{token}/"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer

    def __repr__(self) -> str:
        return "BotApiClient(<redacted>)"

    async def get_me(self) -> BotUser:
        result = await self._call("getMe", {})
        if not isinstance(result, Mapping):
            raise MalformedAnswer("getMe", "the result is not an object")
        bot_id = result_field("getMe", result, "id", int, None)
        if bot_id is None:
            raise MalformedAnswer("getMe", "the result has no id")
        return BotUser(
            id=bot_id,
            username=result_field("getMe", result, "username", str, None),
            first_name=result_field("getMe", result, "first_name", str, ""),
        )

    async def get_webhook_info(self) -> WebhookInfo:
        return WebhookInfo.from_result(await self._call("getWebhookInfo", {}))

    async def set_webhook(self, params: SetWebhookParams) -> None:
        await self._call("setWebhook", params.fields(), certificate=params.certificate)

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        await self._call("deleteWebhook", {"drop_pending_updates": drop_pending_updates})

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Any other method (the profile's setMyCommands & co.), parameters as JSON; its result."""
        return await self._call(method, params)

    async def _call(self, method: str, params: Mapping[str, Any], *, certificate: bytes | None = None) -> Any:
        if self._limiter is not None:
            waited = await self._limiter.acquire()  # --bot-api-rate-limit: this server's pace
            if waited and self._on_wait is not None:
                self._on_wait(waited)
        started = time.monotonic()
        outcome = "ok"
        try:
            return await self._request(method, params, certificate)
        except BotApiError as exc:
            outcome = exc.kind
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
            # No redirects: a Bot API server never sends one, and following it would carry the
            # token (in the path) to wherever the Location points.
            async with self._session.post(
                self._base + method, timeout=self._timeout, allow_redirects=False, **self._proxy, **kwargs
            ) as response:
                status = response.status
                if 300 <= status < 400:
                    raise NetworkError(
                        method, "the Bot API server answered with a redirect (3xx): not followed"
                    )
                body = await _read_capped(method, response)
        except BotApiError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            # A generic description only: connector errors name host:port (and what answered
            # there), which would make Events and status a port scanner.
            raise NetworkError(method, transport_problem(exc)) from None
        return self._parse(method, status, body)

    def _parse(self, method: str, status: int, body: bytes) -> Any:
        try:
            payload = json.loads(body)
        except ValueError:  # UnicodeDecodeError included
            payload = None
        if not isinstance(payload, dict):
            if status >= 500:
                raise ServerError(method, status, "(not a Bot API answer)")
            if status >= 400:
                raise MalformedAnswer(
                    method, f"HTTP {status // 100}xx with an answer that is not Bot API JSON"
                )
            raise MalformedAnswer(method, "an answer that is not Bot API JSON")
        if payload.get("ok") is True and status < 400:
            return payload.get("result")
        error_code = payload.get("error_code")
        code = error_code if isinstance(error_code, int) and 100 <= error_code <= 599 else status
        description = clean_description(payload.get("description"), self._token)
        if code == 401:
            raise Unauthorized(method, f"401 {description or 'Unauthorized'}")
        if code == 404:
            raise NotFound(method, f"404 {description or 'Not Found'}")
        if code == 429:
            parameters = payload.get("parameters")
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            seconds = float(retry_after) if _is_number(retry_after) else 5.0
            raise RetryAfter(method, min(max(seconds, 0.0), MAX_RETRY_AFTER))
        if code >= 500:
            raise ServerError(method, code, description)
        if code < 400:
            raise MalformedAnswer(method, f"HTTP {status // 100}xx with ok={payload.get('ok')!r}"[:80])
        raise BadRequest(method, description or "Bad Request", code)


#: The largest answer read: getWebhookInfo is a few hundred bytes; a server that sends megabytes
#: is broken (or hostile) and must not grow the operator's memory.
MAX_ANSWER_BYTES = 256 * 1024
#: Flood control waits longer than this are capped (the worker looks again then).
MAX_RETRY_AFTER = 3600.0
MAX_DESCRIPTION = 300


async def _read_capped(method: str, response: aiohttp.ClientResponse) -> bytes:
    too_large = MalformedAnswer(method, f"the answer is larger than {MAX_ANSWER_BYTES // 1024} KiB")
    if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def clean_description(value: Any, token: str) -> str:
    """The server's ``description``: a string, printable, short, and without the token."""
    if not isinstance(value, str):
        return ""
    text = "".join(ch if ch.isprintable() else " " for ch in value[: MAX_DESCRIPTION * 2])
    return redact(text, token)[:MAX_DESCRIPTION].strip()


def transport_problem(exc: BaseException) -> str:
    """What went wrong on the way, in words that name no host, port or answer."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS error"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(cause, TimeoutError):
            return "timed out"
        return "cannot connect"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError | UnicodeError):
        return "the answer is not valid HTTP"
    return "network error"
