"""Secret-token rotation without losing (or rejecting) a single update."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from tests.support import Cluster, Emulator
from tgbot_operator.kube import Kube, KubeError
from tgbot_operator.login import connection_info
from tgbot_operator.webhook_secret import generate_self_signed

from .conftest import OperatorFactory
from .support import (
    Bots,
    assert_no_secrets_leaked,
    events,
    eventually,
    get,
    kubectl,
    secret_data,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

#: How stale the receiver's view of the Secret is, like a kubelet that updates mounts late.
MOUNT_LAG = 1.0


def reader(cluster: Cluster) -> Kube:
    """Reads Secrets by name, as a kubelet refreshing a mount does."""
    return Kube(functools.partial(connection_info, cluster.kubeconfig), secret_reads="poll")


@dataclass
class MountedSecretReceiver:
    """A webhook receiver that knows the secret tokens only as a mounted Secret would show them:
    it re-reads the generated Secret every 0.2 s and uses the copy it read ``MOUNT_LAG`` ago."""

    cluster: Cluster
    namespace: str
    secret_name: str
    snapshots: list[tuple[float, set[str]]] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    seen_tokens: set[str] = field(default_factory=set)

    async def _read(self, kube: Kube) -> set[str]:
        try:
            secret = await kube.get_secret(self.namespace, self.secret_name)
        except KubeError:
            return set()
        data = secret.data if secret else {}
        return {data[k].decode() for k in ("secret-token", "previous-secret-token") if k in data}

    async def poll(self) -> None:
        kube = reader(self.cluster)
        try:
            while True:
                tokens = await self._read(kube)
                self.snapshots.append((time.monotonic(), tokens))
                self.seen_tokens |= tokens
                await asyncio.sleep(0.2)
        finally:
            await kube.close()

    def mounted(self) -> set[str]:
        cutoff = time.monotonic() - MOUNT_LAG
        current: set[str] = set()
        for at, tokens in self.snapshots:
            if at <= cutoff:
                current = tokens
        return current

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") in self.mounted():
            self.accepted += 1
            return web.json_response({})
        self.rejected += 1
        return web.json_response({"error": "wrong secret"}, status=401)


async def start_receiver(receiver: MountedSecretReceiver) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/webhook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_rotation_on_demand_rejects_nothing(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator("--rotation-propagation-grace", "3", "--rotation-retire-grace", "3")
    receiver = MountedSecretReceiver(cluster, namespace, "rot-webhook")
    runner, port = await start_receiver(receiver)
    poller = asyncio.create_task(receiver.poll())
    try:
        token = (await bots.ready_bot("rot", 2001, webhook={"url": f"http://127.0.0.1:{port}/webhook"})).token
        first = (await secret_data(cluster, namespace, "rot-webhook"))["secret-token"].decode()
        await asyncio.sleep(MOUNT_LAG + 0.5)  # the "sidecar" has the first token mounted

        update_ids: list[int] = []
        stop_sending = asyncio.Event()

        async def send() -> None:
            n = 0
            while not stop_sending.is_set():
                n += 1
                update_ids.append(await emulator.client.send_user_message(2001, f"message {n}"))
                await asyncio.sleep(0.15)

        sender = asyncio.create_task(send())
        await asyncio.sleep(1)
        await kubectl(cluster, "annotate", "-n", namespace, "tgbot", "rot", "tgbot.dev/rotate-secret-token=1")

        def rotated(secret: dict[str, bytes]) -> bool:
            return secret["secret-token"].decode() != first and "previous-secret-token" not in secret

        await eventually(
            lambda: secret_data(cluster, namespace, "rot-webhook"),
            rotated,
            timeout=60,
            what="rotation to finish",
        )
        await asyncio.sleep(1.5)
        stop_sending.set()
        await sender
        result = await emulator.client.wait_delivered(2001, update_ids, timeout=60)
        assert result, result

        second = (await secret_data(cluster, namespace, "rot-webhook"))["secret-token"].decode()
        live = await emulator.client.webhook(2001, reveal_secrets=True)
        assert live["secret_token"] == second
        deliveries = await emulator.client.deliveries(2001)
        statuses = [d["status"] for d in deliveries]
        assert 401 not in statuses, [d for d in deliveries if d["status"] == 401]
        assert receiver.rejected == 0
        assert receiver.accepted >= len(update_ids)
        assert {first, second} <= receiver.seen_tokens
        bot = await get(cluster, namespace, "tgbot", "rot")
        assert bot is not None
        assert bot["status"]["rotationPhase"] == "Idle"
        assert "secretTokenRotatedAt" in bot["status"]
        reasons = [e["reason"] for e in await events(cluster, namespace)]
        for reason in ("SecretTokenRotationStarted", "SecretTokenRotated", "PreviousSecretTokenRetired"):
            assert reason in reasons
        setwebhooks = await emulator.client.calls(2001, method="setWebhook")
        assert len(setwebhooks) == 2
        # The same annotation value again does not rotate again.
        await asyncio.sleep(3)
        assert (await secret_data(cluster, namespace, "rot-webhook"))["secret-token"].decode() == second
        await assert_no_secrets_leaked(cluster, namespace, operator, token, first, second)
    finally:
        poller.cancel()
        await runner.cleanup()


async def test_rotation_resumes_after_an_operator_restart(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator("--rotation-propagation-grace", "6", "--rotation-retire-grace", "2")
    await bots.ready_bot("res", 2002)
    first = (await secret_data(cluster, namespace, "res-webhook"))["secret-token"].decode()
    await kubectl(cluster, "annotate", "-n", namespace, "tgbot", "res", "tgbot.dev/rotate-secret-token=now")
    await eventually(
        lambda: secret_data(cluster, namespace, "res-webhook"),
        lambda s: "previous-secret-token" in s,
        timeout=30,
        what="rotation to start",
    )
    operator.stop()
    # Mid-propagation: the old token is still the registered one.
    assert (await emulator.client.webhook(2002, reveal_secrets=True))["secret_token"] == first
    operator.start()
    await eventually(
        lambda: secret_data(cluster, namespace, "res-webhook"),
        lambda s: "previous-secret-token" not in s and s["secret-token"].decode() != first,
        timeout=60,
        what="the rotation to complete after the restart",
    )
    second = (await secret_data(cluster, namespace, "res-webhook"))["secret-token"].decode()
    assert (await emulator.client.webhook(2002, reveal_secrets=True))["secret_token"] == second
    assert len(await emulator.client.calls(2002, method="setWebhook")) == 2


async def test_scheduled_rotation(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator("--rotation-propagation-grace", "1", "--rotation-retire-grace", "1")
    await bots.ready_bot("sched", 2003, secretToken={"rotationInterval": "8s"})
    first = (await secret_data(cluster, namespace, "sched-webhook"))["secret-token"].decode()
    await eventually(
        lambda: emulator.client.webhook(2003, reveal_secrets=True),
        lambda w: w["secret_token"] != first,
        timeout=40,
        what="a scheduled rotation",
    )


@dataclass
class MountedCertificateReceiver:
    """A TLS webhook receiver that serves the certificate of the generated Secret only as a mounted
    Secret would show it: the copy it read ``MOUNT_LAG`` ago (re-read every 0.2 s)."""

    cluster: Cluster
    namespace: str
    secret_name: str
    folder: Path
    snapshots: list[tuple[float, tuple[bytes, bytes] | None]] = field(default_factory=list)
    contexts: dict[bytes, ssl.SSLContext] = field(default_factory=dict)
    served: set[bytes] = field(default_factory=set)
    accepted: int = 0

    def __post_init__(self) -> None:
        placeholder = generate_self_signed("127.0.0.1", datetime.now(UTC))
        self.front = self._context(placeholder)
        self.front.sni_callback = self._pick  # called on every handshake, SNI or not

    def _context(self, pair: tuple[bytes, bytes]) -> ssl.SSLContext:
        context = self.contexts.get(pair[0])
        if context is None:
            name = hashlib.sha256(pair[0]).hexdigest()[:16]
            (self.folder / f"{name}.crt").write_bytes(pair[0])
            (self.folder / f"{name}.key").write_bytes(pair[1])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.folder / f"{name}.crt", self.folder / f"{name}.key")
            self.contexts[pair[0]] = context
        return context

    async def _read(self, kube: Kube) -> tuple[bytes, bytes] | None:
        try:
            secret = await kube.get_secret(self.namespace, self.secret_name)
        except KubeError:
            return None
        data = secret.data if secret else {}
        if "tls.crt" not in data or "tls.key" not in data:
            return None
        return data["tls.crt"], data["tls.key"]

    async def poll(self) -> None:
        kube = reader(self.cluster)
        try:
            while True:
                pair = await self._read(kube)
                if pair is not None:
                    await asyncio.to_thread(self._context, pair)
                self.snapshots.append((time.monotonic(), pair))
                await asyncio.sleep(0.2)
        finally:
            await kube.close()

    def mounted(self) -> tuple[bytes, bytes] | None:
        cutoff = time.monotonic() - MOUNT_LAG
        current = None
        for at, pair in self.snapshots:
            if at <= cutoff:
                current = pair
        return current

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        pair = self.mounted()
        if pair is not None and pair[0] in self.contexts:
            sslobj.context = self.contexts[pair[0]]
            self.served.add(pair[0])

    async def handle(self, request: web.Request) -> web.Response:
        self.accepted += 1
        return web.json_response({})


async def test_certificate_renewal_never_breaks_delivery(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    bots: Bots,
    tmp_path: Path,
) -> None:
    """Self-signed renewals while updates flow, Telegram (the emulator) pinning what is uploaded and
    the receiver serving the Secret's certificate a mount lag late: every delivery succeeds."""
    # Certificates valid 40 s, renewed 30 s before they expire: one renewal every ~10 s.
    operator = start_operator(
        "--self-signed-validity", "40s", "--self-signed-renew-before", "30s",
        "--rotation-propagation-grace", "3",
    )  # fmt: skip
    receiver = MountedCertificateReceiver(cluster, namespace, "tls-webhook", tmp_path)
    app = web.Application()
    app.router.add_post("/webhook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=receiver.front)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    poller = asyncio.create_task(receiver.poll())
    try:
        webhook = {"url": f"https://127.0.0.1:{port}/webhook", "certificate": {"mode": "SelfSigned"}}
        token = (await bots.ready_bot("tls", 2004, webhook=webhook)).token
        first = (await secret_data(cluster, namespace, "tls-webhook"))["tls.crt"]
        await asyncio.sleep(MOUNT_LAG + 0.5)  # the "sidecar" serves the first certificate
        update_ids: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < 25:
            update_ids.append(await emulator.client.send_user_message(2004, f"message {len(update_ids)}"))
            await asyncio.sleep(0.2)
        result = await emulator.client.wait_delivered(2004, update_ids, timeout=60)
        assert result, result
        deliveries = await emulator.client.deliveries(2004)
        failed = [d for d in deliveries if d["status"] != 200 or d["error"]]
        assert not failed, failed[:5]
        assert receiver.accepted >= len(update_ids)
        current = (await secret_data(cluster, namespace, "tls-webhook"))["tls.crt"]
        assert current != first
        assert len(receiver.served) >= 2, "no renewal reached the receiver"
        reasons = [e["reason"] for e in await events(cluster, namespace)]
        for reason in ("CertificateRenewalStarted", "CertificateRenewed", "PreviousCertificateRetired"):
            assert reason in reasons
        await assert_no_secrets_leaked(cluster, namespace, operator, token)
    finally:
        poller.cancel()
        await runner.cleanup()
