"""One webhook delivery attempt: POST an update, classify what happened like Telegram."""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .params import Params, parse_body
from .state import Webhook
from .tls import TlsContexts

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_RETRY_AFTER_SECONDS = 3600
# A bot's reply-in-webhook body is small; don't let a broken receiver make us buffer much.
MAX_REPLY_BYTES = 1 << 20


@dataclass
class Outcome:
    status: int | None
    error: str | None
    duration_ms: float
    retry_after: float | None = None
    reply: Params | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def post_update(
    session: aiohttp.ClientSession,
    tls: TlsContexts,
    webhook: Webhook,
    payload: dict[str, Any],
    timeout_seconds: float,
) -> Outcome:
    headers = {"Content-Type": "application/json"}
    if webhook.secret_token:
        headers[SECRET_HEADER] = webhook.secret_token
    url, server_hostname = _target(webhook, headers)
    https = url.lower().startswith("https://")
    context = await tls.for_certificate(webhook.certificate) if https else None
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        async with asyncio.timeout(timeout_seconds):
            async with session.post(
                url,
                data=json.dumps(payload, ensure_ascii=False).encode(),
                headers=headers,
                ssl=context if context is not None else True,
                server_hostname=server_hostname if https else None,
                allow_redirects=False,
            ) as response:
                body = await _read_limited(response)
                if 200 <= response.status < 300:
                    return Outcome(response.status, None, elapsed(), reply=_reply(response, body))
                reason = response.reason or ""
                return Outcome(
                    response.status,
                    f"Wrong response from the webhook: {response.status} {reason}".rstrip(),
                    elapsed(),
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
    except TimeoutError:
        return Outcome(None, "Read timeout expired", elapsed())
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        return Outcome(None, f"SSL error {_ssl_detail(exc)}", elapsed())
    except aiohttp.ClientConnectorDNSError:
        return Outcome(None, "Failed to resolve host: Name or service not known", elapsed())
    except aiohttp.ClientConnectorError as exc:
        return Outcome(None, _connect_error(exc), elapsed())
    except aiohttp.ServerDisconnectedError:
        return Outcome(None, "Connection closed by remote server", elapsed())
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(None, f"Connection error: {type(exc).__name__}", elapsed())


def _target(webhook: Webhook, headers: dict[str, str]) -> tuple[str, str | None]:
    """With a fixed ip_address, connect there but keep the name for Host, SNI and checks."""
    parts = urlsplit(webhook.url)
    if not webhook.ip_address or parts.hostname is None:
        return webhook.url, None
    netloc = webhook.ip_address if parts.port is None else f"{webhook.ip_address}:{parts.port}"
    headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), parts.hostname


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    """The whole body (it may arrive in several chunks), or b"" when it is too big to be a reply."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            return b""
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(response: aiohttp.ClientResponse, body: bytes) -> Params | None:
    try:
        params = parse_body(response.headers.get("Content-Type", ""), body)
    except Exception:
        # A malformed reply is the bot's problem; the update still counts as delivered.
        return None
    return params or None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def _ssl_detail(exc: BaseException) -> str:
    inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return getattr(inner, "verify_message", None) or getattr(inner, "reason", None) or str(inner)


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    code = exc.os_error.errno
    # Several addresses (localhost: ::1 and 127.0.0.1) fail together without an errno.
    if code == errno.ECONNREFUSED or (code is None and "refused" in str(exc.os_error).lower()):
        return "Connection refused"
    if code == errno.ETIMEDOUT:
        return "Connection timed out"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "No route to host"
    return f"Failed to connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
