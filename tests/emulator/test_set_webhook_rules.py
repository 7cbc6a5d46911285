"""setWebhook validation: each rule answers exactly what Telegram answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.emulator.helpers import TOKEN, BotApi
from tgbot_emulator import BotSpec, EmulatorConfig, EmulatorServer


@pytest.fixture
async def cloud_api() -> AsyncIterator[BotApi]:
    """An emulator behaving like api.telegram.org (no local webhooks), no rate limit."""
    config = EmulatorConfig(port=0, setwebhook_rate_limit=False, bots=[BotSpec(token=TOKEN, username="b")])
    async with EmulatorServer(config) as server, aiohttp.ClientSession() as session:
        yield BotApi(session, server.url)


def bad_request(description: str) -> dict[str, object]:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


HTTPS = "bad webhook: An HTTPS URL must be provided for webhook"
PORTS = "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"


@pytest.mark.parametrize(
    ("url", "description"),
    [
        ("http://bot.example.com/hook", HTTPS),
        ("ftp://bot.example.com/hook", HTTPS),
        ("bot.example.com/hook", HTTPS),
        ("https://bot.example.com:8080/hook", PORTS),
        ("https://bot.example.com:1/hook", PORTS),
        ("https://bot.example.com:99999/hook", "bad webhook: Wrong port number specified in the URL"),
        ("https://127.0.0.1/hook", "bad webhook: IP address 127.0.0.1 is reserved"),
        ("https://localhost/hook", "bad webhook: IP address 127.0.0.1 is reserved"),
        ("https://10.1.2.3/hook", "bad webhook: IP address 10.1.2.3 is reserved"),
        ("https://192.168.0.10:8443/hook", "bad webhook: IP address 192.168.0.10 is reserved"),
    ],
)
async def test_bad_urls_are_refused(cloud_api: BotApi, url: str, description: str) -> None:
    status, body = await cloud_api.json("setWebhook", url=url)
    assert status == 400
    assert body == bad_request(description)


@pytest.mark.parametrize("port", ["", ":443", ":80", ":88", ":8443"])
async def test_allowed_ports(cloud_api: BotApi, port: str) -> None:
    status, body = await cloud_api.json("setWebhook", url=f"https://bot.example.com{port}/hook")
    assert (status, body) == (200, {"ok": True, "result": True, "description": "Webhook was set"})


async def test_local_mode_allows_http_any_port_and_local_hosts(api: BotApi) -> None:
    for url in ("http://127.0.0.1:9999/a", "https://localhost:1234/b", "http://10.0.0.5/c"):
        status, body = await api.json("setWebhook", url=url)
        assert status == 200, body
        assert (await api.ok("getWebhookInfo"))["url"] == url
        await api.ok("deleteWebhook")
    status, body = await api.json("setWebhook", url="ftp://127.0.0.1/x")
    assert body == bad_request(HTTPS)


async def test_secret_token_too_long(cloud_api: BotApi) -> None:
    status, body = await cloud_api.json("setWebhook", url="https://a.example.com/", secret_token="a" * 257)
    assert (status, body) == (400, bad_request("secret token is too long"))


@pytest.mark.parametrize("secret", ["a b", "a.b", "секрет", "a+b", "a/b", "a=b", "x:y"])
async def test_secret_token_characters(cloud_api: BotApi, secret: str) -> None:
    status, body = await cloud_api.json("setWebhook", url="https://a.example.com/", secret_token=secret)
    assert (status, body) == (400, bad_request("secret token contains unallowed characters"))


async def test_secret_token_longest_and_all_allowed_characters(cloud_api: BotApi) -> None:
    secret = ("AZaz09_-" * 32)[:256]
    status, _ = await cloud_api.json("setWebhook", url="https://a.example.com/", secret_token=secret)
    assert status == 200


async def test_ip_address_rules(cloud_api: BotApi) -> None:
    status, body = await cloud_api.json("setWebhook", url="https://a.example.com/", ip_address="not-an-ip")
    assert (status, body) == (400, bad_request("invalid IP address specified"))
    status, body = await cloud_api.json("setWebhook", url="https://a.example.com/", ip_address="::1")
    assert (status, body) == (400, bad_request("invalid IP address specified"))
    status, body = await cloud_api.json("setWebhook", url="https://a.example.com/", ip_address="10.0.0.1")
    assert (status, body) == (400, bad_request("bad webhook: IP address 10.0.0.1 is reserved"))
    status, _ = await cloud_api.json("setWebhook", url="https://a.example.com/", ip_address="8.8.8.8")
    assert status == 200
    assert (await cloud_api.ok("getWebhookInfo"))["ip_address"] == "8.8.8.8"


async def test_private_ip_address_allowed_in_local_mode(api: BotApi) -> None:
    await api.ok("setWebhook", url="https://a.example.com/", ip_address="127.0.0.1")
    assert (await api.ok("getWebhookInfo"))["ip_address"] == "127.0.0.1"


@pytest.mark.parametrize(("given", "stored"), [(0, 1), (1, 1), (40, 40), (100, 100), (101, 100), (-5, 1)])
async def test_max_connections_is_clamped_to_1_100(cloud_api: BotApi, given: int, stored: int) -> None:
    # The Bot API server clamps instead of refusing (get_integer_arg with min/max).
    await cloud_api.ok("setWebhook", url=f"https://a{given}.example.com/", max_connections=given)
    assert (await cloud_api.ok("getWebhookInfo"))["max_connections"] == stored


async def test_max_connections_default_is_40(cloud_api: BotApi) -> None:
    await cloud_api.ok("setWebhook", url="https://a.example.com/")
    assert (await cloud_api.ok("getWebhookInfo"))["max_connections"] == 40


async def test_certificate_as_string_is_refused(cloud_api: BotApi) -> None:
    status, body = await cloud_api.json(
        "setWebhook", url="https://a.example.com/", certificate="-----BEGIN CERTIFICATE-----"
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: bad webhook: certificate must be uploaded as a file")


async def test_certificate_file_must_be_pem(cloud_api: BotApi) -> None:
    status, body = await cloud_api.multipart(
        "setWebhook", files={"certificate": ("cert.pem", b"garbage")}, url="https://a.example.com/"
    )
    assert (status, body) == (400, bad_request("bad webhook: Failed to set custom certificate file"))


async def test_allowed_updates_must_be_a_json_array(cloud_api: BotApi) -> None:
    status, body = await cloud_api.form("setWebhook", url="https://a.example.com/", allowed_updates="message")
    assert status == 400
    assert body["error_code"] == 400


async def test_setwebhook_errors_have_telegram_shape(cloud_api: BotApi) -> None:
    status, body = await cloud_api.json("setWebhook", url="http://a.example.com/")
    assert set(body) == {"ok", "error_code", "description"}
    assert body["ok"] is False
    assert body["error_code"] == status == 400
