"""HTTP to the API server with aiohttp, on the event loop, with the credentials login.py found.

Why not the ``kubernetes`` client: it is blocking, so every call took a thread of a small pool
(apply->Ready waited ~40 s in line with 1,000 bots), each call built urllib3 and model machinery for
a few hundred bytes of JSON, and its import alone is ~43 MB of RSS. aiohttp is already the
operator's HTTP library (kopf's watches and the Bot API run on it); ``benchmarks.kube_clients`` has
the numbers behind the choice. A 401 logs in again once (a rotated ServiceAccount token, an expired
exec-plugin token) and repeats the call.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import aiohttp


class KubeError(Exception):
    """A failed Kubernetes API call. The message names the object, never its data."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Conflict(KubeError):
    """409: someone else wrote the object first (or it already exists)."""


#: Connect and read timeouts of one call: an API server that hangs instead of refusing must not
#: block a worker forever (the worker retries with backoff).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: Connections to the API server at once; HTTP/1.1 keep-alive reuses them. Enough to keep the
#: server busy, few enough that a burst of 10,000 bots does not open 10,000 TLS sessions.
#: Measured (1,000 bots at once, quiet 2-core machine): 8 connections saved 5 MB of RSS but took
#: 134 s to all Ready instead of 97 s (the API server answers in ~100 ms under a burst).
MAX_CONNECTIONS = 32

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class Credentials(Protocol):
    """What a transport needs of a ``kopf.ConnectionInfo`` (this layer does not import kopf)."""

    @property
    def server(self) -> str: ...

    @property
    def proxy_url(self) -> str | None: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...

    def as_http_headers(self) -> dict[str, str]: ...


#: Logs in (again): blocking file reads or an exec plugin, so it runs in a thread on the loop.
Login = Callable[[], Credentials]


class Transport:
    """Requests to one API server; the session is opened lazily on the running loop."""

    def __init__(self, login: Login) -> None:
        self._login = login
        credentials = login()
        self.base = credentials.server.rstrip("/")
        self.proxy = credentials.proxy_url or None
        try:
            self._ssl: ssl.SSLContext | bool = (
                credentials.as_ssl_context() if self.base.startswith("https") else False
            )
        except (OSError, ValueError) as exc:  # a missing CA file, a key that is no PEM...
            raise KubeError(f"cannot load the TLS credentials of {self.base}: {type(exc).__name__}") from None
        self._auth = credentials.as_http_headers()
        self._relogin = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Calls started and not answered yet, waiting for a connection included (not watches):
        #: more than the connections means calls queue behind a slow API server.
        self.in_flight = 0

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT
                ),
                headers={"User-Agent": "tgbot-operator"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _headers(self, accept: str, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": accept, **self._auth}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    async def _log_in_again(self, rejected: Mapping[str, str], what: str) -> bool:
        """After a 401 with ``rejected``: True when there are other credentials to try now."""
        async with self._relogin:
            if self._auth is not rejected:
                return True  # another call logged in meanwhile
            try:
                fresh = await asyncio.to_thread(self._login)
            except Exception as exc:  # kopf.LoginError, OSError, an exec plugin's failure
                raise KubeError(
                    f"cannot {what}: 401, and logging in again failed ({type(exc).__name__})"
                ) from None
            headers = fresh.as_http_headers()
            if headers == self._auth:
                return False
            self._auth = headers
            return True

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        accept: str = JSON,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """The decoded answer; None for 404 when ``missing_ok``; else a KubeError."""
        self.in_flight += 1
        try:
            return await self._request(method, path, what, body, content_type, params, accept, missing_ok)
        finally:
            self.in_flight -= 1

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        body: Mapping[str, Any] | None,
        content_type: str | None,
        params: Mapping[str, str] | None,
        accept: str,
        missing_ok: bool,
    ) -> dict[str, Any] | None:
        data = json.dumps(body).encode() if body is not None else None
        retried = False
        while True:
            auth = self._auth
            headers = self._headers(accept, content_type or (JSON if data is not None else None))
            try:
                async with self._open().request(
                    method, self.base + path, data=data, params=params, headers=headers, proxy=self.proxy
                ) as response:
                    raw = await response.read()
                    status = response.status
                    reason = response.reason or ""
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise unreachable(exc, what) from None
            if status == 401 and not retried and await self._log_in_again(auth, what):
                retried = True  # once: credentials the server still refuses are a KubeError
                continue
            if status == 404 and missing_ok:
                return None
            if status >= 400:
                raise http_error(status, reason, raw, what)
            answer: dict[str, Any] = json.loads(raw) if raw else {}
            return answer

    async def stream(
        self, path: str, *, what: str, params: Mapping[str, str], accept: str, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """A watch: one decoded event per line, until the server ends it (a 401 logs in again
        before the KubeError: the caller's next watch has the fresh credentials)."""
        auth = self._auth
        headers = self._headers(accept, None)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)
        try:
            async with self._open().get(
                self.base + path, params=params, headers=headers, timeout=timeout, proxy=self.proxy
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    if response.status == 401:
                        await self._log_in_again(auth, what)
                    raise http_error(response.status, response.reason or "", raw, what)
                buffer = b""
                # Chunks, not readline(): a line carries a whole object's metadata, and
                # annotations (last-applied-configuration) can exceed readline's limit.
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise unreachable(exc, what) from None


def http_error(status: int, reason: str, raw: bytes, what: str) -> KubeError:
    """The API server's own Status message (it names objects, never Secret data)."""
    detail = reason
    try:
        payload = json.loads(raw) if raw else None
    except (TypeError, ValueError):
        payload = None
    if isinstance(payload, dict) and payload.get("kind") == "Status" and payload.get("message"):
        detail = str(payload["message"])
    message = f"cannot {what}: {status} {detail}".strip()
    if status == 409:
        return Conflict(message, status)
    return KubeError(message, status)


def unreachable(exc: BaseException, what: str) -> KubeError:
    """No HTTP answer: a KubeError like any other failed call (the worker retries with backoff)."""
    return KubeError(f"cannot {what}: the API server did not answer ({type(exc).__name__})")
