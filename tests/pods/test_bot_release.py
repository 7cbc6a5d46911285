"""The bot chart installed with the echo-bot and sidecar images: Ready once the webhook Secret exists,
a message round trip from the emulator through the pod network, deleteWebhook on uninstall."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.pods.conftest import PodTestCluster
from tgbot_localdev.emulatorproc import Emulator
from tgbot_localdev.polling import wait_for
from tgbot_localdev.releases import BotRelease, OperatorRelease, kube_json, pod_ready_since


def _round_trip(release: BotRelease, text: str) -> None:
    update_id = release.bot.send(text)
    release.bot.wait_delivered([update_id], timeout=120)
    replies = wait_for("the webhook reply", lambda: release.bot.replies().get(update_id), timeout=30)
    assert replies == [text]


@pytest.mark.parametrize("helm_command", ["helm", "helm3"])
def test_bot_release_round_trip_and_uninstall(
    pod_cluster: PodTestCluster,
    operator_release: OperatorRelease,
    emulator: Emulator,
    pod_namespace: str,
    helm_command: str,
) -> None:
    bot = emulator.add_bot(f"pods_{secrets.token_hex(3)}_bot")
    release = BotRelease.install(pod_cluster, pod_namespace, bot, helm=helm_command)

    (pod,) = release.pods()
    ready_at = pod_ready_since(pod)
    assert ready_at, pod["status"]
    assert [c["image"] for c in pod["spec"]["containers"]] == [
        pod_cluster.images["echo-bot"].ref,
        pod_cluster.images["tgbot-sidecar"].ref,
    ]
    secret = kube_json(pod_cluster, "get", "secret", f"{release.fullname}-webhook", "-n", pod_namespace)
    # Ready only once the operator wrote the webhook Secret (and the sidecar read its token).
    assert secret["metadata"]["creationTimestamp"] <= ready_at
    webhook = bot.webhook()
    assert webhook["url"] == f"http://{release.cluster_ip}:8443/webhook"
    assert len(bot.calls("setWebhook")) == 1

    _round_trip(release, "hello from a pod")
    # Ready means ready: no delivery was answered with an error (a refused connection before the
    # pod joined the Service is not an answer).
    failed = [
        (d["attempt"], d["status"], d["error"]) for d in bot.deliveries() if d["status"] not in (200, None)
    ]
    assert not failed

    release.uninstall()
    wait_for("deleteWebhook", lambda: bot.calls("deleteWebhook"), timeout=90)
    assert bot.webhook()["url"] == ""


def test_selfsigned_tls_is_served_from_the_mounted_secret_and_pinned(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease, emulator: Emulator, pod_namespace: str
) -> None:
    bot = emulator.add_bot(f"tls_{secrets.token_hex(3)}_bot")
    release = BotRelease.install(pod_cluster, pod_namespace, bot, mode="SelfSigned")
    secret = kube_json(pod_cluster, "get", "secret", f"{release.fullname}-webhook", "-n", pod_namespace)
    pem = base64.b64decode(secret["data"]["tls.crt"])
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    webhook = bot.webhook()
    assert webhook["url"] == f"https://{release.cluster_ip}:8443/webhook"
    assert webhook["has_custom_certificate"] is True
    # The emulator trusts only the uploaded certificate: a delivery succeeds only if the sidecar
    # serves exactly the one in the Secret.
    assert webhook["certificate_sha256"] == hashlib.sha256(der).hexdigest()
    _round_trip(release, "hello over pinned TLS")
