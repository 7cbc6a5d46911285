"""The Bot API client against a tiny local aiohttp server: typed errors, multipart, redaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.helpers import ProxyInfo
from yarl import URL

from tgbot_operator.botapi import BotApiClient, EnvProxies
from tgbot_operator.redaction import redact
from tgbot_operator.telegram import (
    BadRequest,
    BotApiError,
    MalformedAnswer,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    SetWebhookParams,
    Unauthorized,
)

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class FakeBotApi:
    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.hosts: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.hosts.append(request.host)
        if request.content_type == "multipart/form-data":
            form: dict[str, Any] = {}
            async for part in await request.multipart():
                assert isinstance(part, aiohttp.BodyPartReader)
                form[part.name or ""] = (
                    (part.filename, await part.read()) if part.filename else await part.text()
                )
            self.requests.append((method, form))
        else:
            self.requests.append((method, await request.json()))
        status, payload = self.answers.pop(0) if self.answers else (200, {"ok": True, "result": True})
        if isinstance(payload, str):
            return web.Response(status=status, text=payload)
        return web.json_response(payload, status=status)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeBotApi, str]]:
    api = FakeBotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield api, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_get_me_and_webhook_info(fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession) -> None:
    api, url = fake
    calls: list[tuple[str, str]] = []
    client = BotApiClient(session, url, TOKEN, observer=lambda m, o, s: calls.append((m, o)))
    api.answers = [
        (
            200,
            {"ok": True, "result": {"id": 123456, "is_bot": True, "username": "echo_bot", "first_name": "E"}},
        ),
        (
            200,
            {
                "ok": True,
                "result": {
                    "url": "https://x/y",
                    "has_custom_certificate": True,
                    "pending_update_count": 4,
                    "max_connections": 9,
                    "allowed_updates": ["message"],
                    "last_error_date": 5,
                    "last_error_message": "boom",
                },
            },
        ),
    ]
    me = await client.get_me()
    assert (me.id, me.username) == (123456, "echo_bot")
    info = await client.get_webhook_info()
    assert info.url == "https://x/y"
    assert info.has_custom_certificate
    assert info.pending_update_count == 4
    assert info.allowed_updates == ("message",)
    assert (info.last_error_date, info.last_error_message, info.max_connections) == (5, "boom", 9)
    assert calls == [("getMe", "ok"), ("getWebhookInfo", "ok")]
    assert "123456" not in repr(client)


async def test_set_webhook_json_and_multipart(
    fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    client = BotApiClient(session, url, TOKEN)
    params = SetWebhookParams(
        url="https://h/x",
        secret_token="s" * 64,
        max_connections=5,
        allowed_updates=("message",),
        drop_pending_updates=True,
        ip_address="203.0.113.10",
        certificate=None,
    )
    await client.set_webhook(params)
    assert api.requests[-1] == (
        "setWebhook",
        {
            "url": "https://h/x",
            "secret_token": "s" * 64,
            "max_connections": 5,
            "allowed_updates": ["message"],
            "drop_pending_updates": True,
            "ip_address": "203.0.113.10",
        },
    )
    await client.set_webhook(SetWebhookParams(**{**params.__dict__, "certificate": b"-----PEM-----"}))
    method, form = api.requests[-1]
    assert method == "setWebhook"
    assert form["certificate"] == ("certificate.pem", b"-----PEM-----")
    assert json.loads(str(form["allowed_updates"])) == ["message"]
    assert form["max_connections"] == "5"
    assert form["drop_pending_updates"] == "true"
    assert form["url"] == "https://h/x"


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, Unauthorized),
        (404, {"ok": False, "error_code": 404, "description": "Not Found"}, NotFound),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: bad webhook"}, BadRequest),
        (502, "<html>bad gateway</html>", ServerError),
        (500, {"ok": False, "error_code": 500, "description": "Internal"}, ServerError),
    ],
)
async def test_typed_errors(
    fake: tuple[FakeBotApi, str],
    session: aiohttp.ClientSession,
    status: int,
    payload: Any,
    error: type[Exception],
) -> None:
    api, url = fake
    api.answers = [(status, payload)]
    with pytest.raises(error) as info:
        await BotApiClient(session, url, TOKEN).get_me()
    assert TOKEN not in str(info.value)


async def test_retry_after(fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession) -> None:
    api, url = fake
    api.answers = [
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        )
    ]
    with pytest.raises(RetryAfter) as info:
        await BotApiClient(session, url, TOKEN).get_webhook_info()
    assert info.value.seconds == 7


async def test_bad_request_description(fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession) -> None:
    api, url = fake
    api.answers = [(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {TOKEN} leaked"})]
    with pytest.raises(BadRequest) as info:
        await BotApiClient(session, url, TOKEN).delete_webhook()
    assert TOKEN not in info.value.description
    assert "***" in info.value.description


async def test_network_errors_never_show_the_token(session: aiohttp.ClientSession) -> None:
    # Nothing listens on port 9 of localhost (discard): connection refused.
    with pytest.raises(NetworkError) as info:
        await BotApiClient(session, "http://127.0.0.1:9", TOKEN, timeout=5).get_me()
    assert TOKEN not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    # An invalid URL puts the whole URL (with the token) into aiohttp's message.
    with pytest.raises(NetworkError) as info:
        await BotApiClient(session, "http://[::1", TOKEN).get_me()
    assert TOKEN not in str(info.value)
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in str(info.value)


def test_redact() -> None:
    text = f"POST http://h/bot{TOKEN}/getMe failed; token {TOKEN}; tail AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    cleaned = redact(text, TOKEN)
    assert TOKEN not in cleaned
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in cleaned
    assert "/bot***/getMe" in cleaned
    # Without being told the token, token-looking words and bot paths are still masked.
    assert TOKEN not in redact(text)
    assert redact("nothing secret here: 12:30") == "nothing secret here: 12:30"


# --- SSRF: no redirects, generic transport errors ------------------------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed(status: int, session: aiohttp.ClientSession) -> None:
    hits: list[str] = []

    async def target(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"ok": True, "result": {"id": 1, "username": "x"}})

    target_app = web.Application()
    target_app.router.add_route("*", "/{tail:.*}", target)
    target_runner, target_url = await _serve(target_app)

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": f"{target_url}{request.path}"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner, url = await _serve(app)
    try:
        with pytest.raises(NetworkError) as info:
            await BotApiClient(session, url, TOKEN).get_me()
        assert "redirect" in str(info.value)
        assert hits == []
    finally:
        await runner.cleanup()
        await target_runner.cleanup()


async def test_connection_refused_is_said_without_host_or_port(session: aiohttp.ClientSession) -> None:
    with pytest.raises(NetworkError) as info:
        await BotApiClient(session, "http://127.0.0.1:9", TOKEN, timeout=5).get_me()
    assert str(info.value) == "getMe: connection refused"


async def test_a_silent_server_times_out_generically(session: aiohttp.ClientSession) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(NetworkError) as info:
            await BotApiClient(session, f"http://127.0.0.1:{port}", TOKEN, timeout=0.5).get_me()
    assert str(info.value) == "getMe: timed out"


async def test_tls_to_a_plain_port_is_a_tls_error(
    fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession
) -> None:
    _, url = fake
    with pytest.raises(NetworkError) as info:
        await BotApiClient(session, url.replace("http://", "https://"), TOKEN, timeout=5).get_me()
    assert str(info.value) == "getMe: TLS error"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, "<html><body>internal admin panel v1.2 on db-0:5432</body></html>"),
        (403, "<html>Forbidden by db-0:5432</html>"),
        (200, "SSH-2.0-OpenSSH_9.6 db-0:5432"),
    ],
)
async def test_answers_that_are_no_bot_api_json_are_never_echoed(
    status: int, body: str, session: aiohttp.ClientSession
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner, url = await _serve(app)
    try:
        with pytest.raises(NetworkError) as info:
            await BotApiClient(session, url, TOKEN).get_me()
    finally:
        await runner.cleanup()
    assert "db-0" not in str(info.value)
    assert "5432" not in str(info.value)
    assert "html" not in str(info.value).lower()


# --- malformed answers: typed errors, never ValueError/KeyError/TypeError ------------------------


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


@pytest.mark.parametrize(
    ("method", "status", "payload"),
    [
        ("getMe", 200, "<html>Welcome to nginx!</html>"),
        ("getMe", 200, "[1, 2, 3]"),
        ("getMe", 200, _ok({"id": "12345", "username": "x"})),
        ("getMe", 200, _ok({"id": True})),
        ("getMe", 200, _ok({"id": 1.5})),
        ("getMe", 200, _ok({"username": "no_id"})),
        ("getMe", 200, _ok({"id": 1, "username": ["a"]})),
        ("getMe", 200, _ok([{"id": 1}])),
        ("getMe", 200, _ok(None)),
        ("getWebhookInfo", 200, _ok({"url": "", "pending_update_count": "lots"})),
        ("getWebhookInfo", 200, _ok({"url": 5})),
        ("getWebhookInfo", 200, _ok({"url": "", "allowed_updates": [1, 2]})),
        ("getWebhookInfo", 200, _ok({"url": "", "allowed_updates": "message"})),
        ("getWebhookInfo", 200, _ok({"url": "", "has_custom_certificate": "yes"})),
        ("getWebhookInfo", 200, _ok({"url": "", "last_error_date": "yesterday"})),
        ("getWebhookInfo", 200, _ok({"url": "", "max_connections": {"n": 1}})),
        ("getWebhookInfo", 200, _ok({"url": "x" * 100_000})),
        ("getWebhookInfo", 200, _ok("not an object")),
        ("getWebhookInfo", 400, {"ok": False, "error_code": "four hundred", "description": 7}),
        ("getWebhookInfo", 429, {"ok": False, "error_code": 429, "parameters": {"retry_after": "soon"}}),
        ("getWebhookInfo", 429, {"ok": False, "error_code": 429, "parameters": [1]}),
        ("getWebhookInfo", 200, {"ok": False, "error_code": 200}),
        ("getWebhookInfo", 200, {"ok": "true", "result": {}}),
        ("deleteWebhook", 200, "\x00\xff garbage"),
    ],
)
async def test_malformed_answers_raise_typed_errors(
    fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession, method: str, status: int, payload: Any
) -> None:
    api, url = fake
    api.answers = [(status, payload)]
    client = BotApiClient(session, url, TOKEN)
    call = {
        "getMe": client.get_me,
        "getWebhookInfo": client.get_webhook_info,
        "deleteWebhook": client.delete_webhook,
    }[method]
    # The old client raised bare ValueError, KeyError or TypeError here: pytest.raises lets them through.
    with pytest.raises(BotApiError) as info:
        await call()
    assert TOKEN not in str(info.value)
    assert len(str(info.value)) < 400


async def test_retry_after_is_bounded(fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession) -> None:
    api, url = fake
    api.answers = [(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 10**12}})]
    with pytest.raises(RetryAfter) as info:
        await BotApiClient(session, url, TOKEN).get_webhook_info()
    assert info.value.seconds <= 3600


@pytest.mark.parametrize("chunked", [False, True])
async def test_huge_answers_are_cut_off(chunked: bool, session: aiohttp.ClientSession) -> None:
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()
        if not chunked:
            response.content_length = 64 * 1024 * 1024
        await response.prepare(request)
        await response.write(b'{"ok": true, "result": {"url": "')
        chunk = b"x" * 65536
        try:
            for _ in range(1024):  # 64 MiB if the client read it all
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", huge)
    runner, url = await _serve(app)
    try:
        with pytest.raises(MalformedAnswer) as info:
            await BotApiClient(session, url, TOKEN).get_webhook_info()
    finally:
        await runner.cleanup()
    assert "larger than" in str(info.value)
    assert sent < 16 * 1024 * 1024


# --- the proxy environment, read once ----------------------------------------------------------


def test_the_proxy_comes_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3128")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "bots.internal,localhost")
    monkeypatch.delenv("no_proxy", raising=False)
    proxies = EnvProxies.from_env()
    info = proxies.for_url("https://api.telegram.org")
    assert info is not None
    assert str(info.proxy) == "http://proxy.example:3128"
    assert info.proxy_auth is not None
    assert (info.proxy_auth.login, info.proxy_auth.password) == ("user", "pw")
    assert proxies.for_url("https://bots.internal:8081") is None  # NO_PROXY
    assert proxies.for_url("http://api.telegram.org") is None  # no HTTP_PROXY
    monkeypatch.setenv("NO_PROXY", "api.telegram.org")
    assert proxies.for_url("https://api.telegram.org") is info  # decided once per server


async def test_calls_go_through_the_proxy(
    fake: tuple[FakeBotApi, str], session: aiohttp.ClientSession
) -> None:
    api, url = fake
    # The fake server plays the proxy: a proxied plain-HTTP request names the server in its
    # request line and Host header, and the path is the same.
    proxies = EnvProxies({"http": ProxyInfo(URL(url), None)})
    api.answers.append((200, {"ok": True, "result": {"id": 1, "username": "b", "first_name": "B"}}))
    client = BotApiClient(session, "http://bots.invalid", TOKEN, proxy=proxies.for_url("http://bots.invalid"))
    me = await client.get_me()
    assert me.id == 1
    assert api.hosts == ["bots.invalid"]
