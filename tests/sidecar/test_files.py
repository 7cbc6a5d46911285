"""Files that change under a running sidecar: token rotation and certificate renewal."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import trustme
from cryptography import x509

from .conftest import OLD_TOKEN, TOKEN, EchoBot, KubeletSecret, MakeSidecar, update, wait_for


async def test_token_rotation_kubelet_style_loses_nothing(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, secret: KubeletSecret
):
    secret.write({"secret-token": OLD_TOKEN})
    running = await make_sidecar()
    tokens = running.sidecar.tokens
    assert tokens is not None
    signer = OLD_TOKEN  # what Telegram currently signs with
    statuses: list[int] = []
    stop = asyncio.Event()

    async def telegram() -> None:
        update_id = 0
        while not stop.is_set():
            update_id += 1
            statuses.append((await running.post(update(update_id), token=signer))[0])

    sender = asyncio.create_task(telegram())

    async def deliveries(count: int = 5) -> None:
        # Counted, not timed: a loaded machine delivers fewer per second, never fewer per phase.
        start = len(statuses)
        await wait_for(lambda: len(statuses) >= start + count)

    await deliveries()
    # 1. The operator writes the new token and keeps the old one as previous ...
    loads = tokens.reloads
    secret.write({"secret-token": TOKEN, "previous-secret-token": OLD_TOKEN})
    await wait_for(lambda: tokens.reloads > loads)
    await deliveries()
    # 2. ... then calls setWebhook with the new token; Telegram switches ...
    signer = TOKEN
    await deliveries()
    # 3. ... and once that is done, the previous token goes away.
    loads = tokens.reloads
    secret.write({"secret-token": TOKEN})
    await wait_for(lambda: tokens.reloads > loads)
    await deliveries()
    stop.set()
    await sender
    assert len(statuses) > 20
    assert set(statuses) == {200}
    assert (await running.post(update(10**6), token=OLD_TOKEN))[0] == 401


async def test_missing_or_empty_token_file_rejects_everything(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, secret: KubeletSecret
):
    secret.write({"secret-token": "\n"})
    running = await make_sidecar()
    assert (await running.post(update(1), token=""))[0] == 401
    assert (await running.post(update(1), token=" "))[0] == 401
    async with running.session.get(running.admin_url + "/readyz") as response:
        assert response.status == 503
        assert "secret token" in await response.text()
    secret.write({"secret-token": TOKEN + "\n"})  # a trailing newline is an editor's, not the token's
    await wait_for(lambda: running.sidecar.tokens is not None and running.sidecar.tokens.ready)
    assert (await running.post(update(1)))[0] == 200
    async with running.session.get(running.admin_url + "/readyz") as response:
        assert response.status == 200


def write_pair(ca: trustme.CA, directory: Path) -> tuple[Path, Path, int]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    for name, blob in (
        ("tls.crt", cert.cert_chain_pems[0].bytes()),
        ("tls.key", cert.private_key_pem.bytes()),
    ):
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, directory / name)
    serial = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).serial_number
    return directory / "tls.crt", directory / "tls.key", serial


async def served_serial(host: str, port: int, context: ssl.SSLContext, sni: str | None = "localhost") -> int:
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=sni)
    sslobj = writer.get_extra_info("ssl_object")
    peer = sslobj.getpeercert()
    writer.close()
    return int(peer["serialNumber"], 16)


async def test_tls_certificate_is_reloaded_for_new_connections(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, tmp_path: Path
):
    ca = trustme.CA()
    cert, key, first = write_pair(ca, tmp_path)
    running = await make_sidecar(tls_cert=cert, tls_key=key)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    host, port = running.sidecar.webhook_address
    assert await served_serial(host, port, client) == first
    async with running.session.post(
        running.url, data=update(2), ssl=client, headers={"X-Telegram-Bot-Api-Secret-Token": TOKEN}
    ) as response:
        assert response.status == 200

    tls = running.sidecar.tls
    assert tls is not None
    _, _, second = write_pair(ca, tmp_path)
    await wait_for(lambda: tls.reloads == 1)
    assert await served_serial(host, port, client) == second
    # Without SNI too (Telegram connecting to a bare IP address in self-signed mode).
    no_sni = ssl.create_default_context()
    no_sni.check_hostname = False
    ca.configure_trust(no_sni)
    assert await served_serial(host, port, no_sni, sni=None) == second

    # A broken renewal (key does not match) keeps the working certificate.
    (tmp_path / "tls.key").write_bytes(ca.issue_cert("localhost").private_key_pem.bytes())
    await asyncio.sleep(0.2)
    assert tls.reloads == 1
    assert await served_serial(host, port, client) == second


async def test_tls_refuses_old_protocols(echo_bot: EchoBot, make_sidecar: MakeSidecar, tmp_path: Path):
    ca = trustme.CA()
    cert, key, _ = write_pair(ca, tmp_path)
    running = await make_sidecar(tls_cert=cert, tls_key=key)
    tls = running.sidecar.tls
    assert tls is not None
    assert tls.front.minimum_version == ssl.TLSVersion.TLSv1_2
