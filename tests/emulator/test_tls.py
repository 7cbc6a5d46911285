"""Certificate pinning: an uploaded certificate is the only trust anchor for its webhook."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.emulator.helpers import BOT_ID, TOKEN, BotApi, Receiver, eventually, start_receiver
from tgbot_emulator import BotSpec, EmulatorClient, EmulatorConfig, EmulatorServer


def self_signed(common_name: str = "127.0.0.1", dns_name: str | None = None) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) like `openssl req -x509 -newkey ...` from Telegram's guide."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                + ([x509.DNSName(dns_name)] if dns_name else [])
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes, tmp_path: Path) -> ssl.SSLContext:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def fingerprint(cert_pem: bytes) -> str:
    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, bytes]]:
    cert_pem, key_pem = self_signed()
    receiver = await start_receiver(ssl_context=server_context(cert_pem, key_pem, tmp_path))
    yield receiver, cert_pem
    await receiver.stop()


async def set_with_certificate(api: BotApi, url: str, cert_pem: bytes) -> None:
    status, body = await api.multipart("setWebhook", files={"certificate": ("cert.pem", cert_pem)}, url=url)
    assert status == 200, body


async def test_uploaded_self_signed_certificate_is_trusted(
    api: BotApi, client: EmulatorClient, tls_receiver: tuple[Receiver, bytes]
) -> None:
    receiver, cert_pem = tls_receiver
    await set_with_certificate(api, receiver.url, cert_pem)
    info = await api.ok("getWebhookInfo")
    assert info["has_custom_certificate"] is True
    view = await client.webhook(BOT_ID)
    assert view["certificate_sha256"] == fingerprint(cert_pem)
    [call] = await client.calls(BOT_ID, method="setWebhook")
    assert call["params"]["certificate"] == {"filename": "cert.pem", "sha256": fingerprint(cert_pem)}
    update_id = await client.send_user_message(BOT_ID, "over tls")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    assert receiver.texts() == ["over tls"]


async def test_other_certificate_fails_with_ssl_error(
    api: BotApi, client: EmulatorClient, tls_receiver: tuple[Receiver, bytes]
) -> None:
    receiver, _ = tls_receiver
    other_pem, _ = self_signed()
    await set_with_certificate(api, receiver.url, other_pem)
    update_id = await client.send_user_message(BOT_ID, "x")

    async def failed() -> bool:
        return any(d["update_id"] == update_id for d in await client.deliveries(BOT_ID))

    await eventually(failed)
    attempt = (await client.deliveries(BOT_ID))[0]
    assert attempt["status"] is None
    assert attempt["error"].startswith("SSL error")
    assert receiver.received == []
    assert (await api.ok("getWebhookInfo"))["last_error_message"].startswith("SSL error")


async def test_same_certificate_again_is_a_change(api: BotApi, tls_receiver: tuple[Receiver, bytes]) -> None:
    receiver, cert_pem = tls_receiver
    await set_with_certificate(api, receiver.url, cert_pem)
    _status, body = await api.multipart(
        "setWebhook", files={"certificate": ("cert.pem", cert_pem)}, url=receiver.url
    )
    assert body["description"] == "Webhook was set"


async def test_certificate_by_attach_reference(api: BotApi, tls_receiver: tuple[Receiver, bytes]) -> None:
    receiver, cert_pem = tls_receiver
    status, body = await api.multipart(
        "setWebhook", files={"mycert": ("c.pem", cert_pem)}, url=receiver.url, certificate="attach://mycert"
    )
    assert status == 200, body
    assert (await api.ok("getWebhookInfo"))["has_custom_certificate"] is True


async def test_without_upload_the_system_store_does_not_trust_self_signed(
    api: BotApi, client: EmulatorClient, tls_receiver: tuple[Receiver, bytes]
) -> None:
    receiver, _ = tls_receiver
    await api.ok("setWebhook", url=receiver.url)
    await client.send_user_message(BOT_ID, "x")

    async def failed() -> bool:
        return bool(await client.deliveries(BOT_ID))

    await eventually(failed)
    assert (await client.deliveries(BOT_ID))[0]["error"].startswith("SSL error")


async def test_extra_ca_file_is_trusted_without_upload(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_ssl)
    receiver = await start_receiver(ssl_context=server_ssl)
    config = EmulatorConfig(
        port=0,
        allow_local_webhooks=True,
        extra_ca_file=ca_file,
        setwebhook_rate_limit=False,
        bots=[BotSpec(token=TOKEN, username="b")],
    )
    try:
        async with (
            EmulatorServer(config) as server,
            EmulatorClient(server.url) as client,
            aiohttp.ClientSession() as session,
        ):
            api = BotApi(session, server.url)
            await api.ok("setWebhook", url=receiver.url)
            update_id = await client.send_user_message(BOT_ID, "trusted")
            await client.wait_delivered(BOT_ID, [update_id], timeout=10)
            # Pinning the leaf of that CA works as well (partial chain anchor).
            await set_with_certificate(api, receiver.url, leaf.cert_chain_pems[0].bytes())
            second = await client.send_user_message(BOT_ID, "pinned leaf")
            await client.wait_delivered(BOT_ID, [second], timeout=10)
    finally:
        await receiver.stop()
    assert receiver.texts() == ["trusted", "pinned leaf"]


async def test_fixed_ip_address_keeps_the_name_for_tls(
    api: BotApi, client: EmulatorClient, tmp_path: Path
) -> None:
    # webhook.test does not resolve: delivery must go to ip_address, verifying the name.
    cert_pem, key_pem = self_signed("webhook.test", dns_name="webhook.test")
    receiver = await start_receiver(ssl_context=server_context(cert_pem, key_pem, tmp_path))
    try:
        port = receiver.url.split(":")[2].split("/")[0]
        url = f"https://webhook.test:{port}/hook"
        status, body = await api.multipart(
            "setWebhook", files={"certificate": ("c.pem", cert_pem)}, url=url, ip_address="127.0.0.1"
        )
        assert status == 200, body
        update_id = await client.send_user_message(BOT_ID, "by ip")
        await client.wait_delivered(BOT_ID, [update_id], timeout=10)
        assert receiver.received[0].headers["Host"] == f"webhook.test:{port}"
    finally:
        await receiver.stop()
