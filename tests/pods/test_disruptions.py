"""Updates keep flowing through the pods while the kubelet rotates the secret token on disk, the bot
Deployment is restarted, a bot pod is deleted and the operator pod is deleted: none is lost."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.pods.conftest import PodTestCluster
from tgbot_localdev.polling import wait_for
from tgbot_localdev.releases import BotRelease, OperatorRelease, kube_json, pod_ready_since


@contextmanager
def flowing(release: BotRelease, interval: float = 0.5) -> Iterator[list[int]]:
    """Send a message every ``interval`` seconds (from several chats) until the block ends."""
    sent: list[int] = []
    stop = threading.Event()

    def sender() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            sent.append(release.bot.send(f"m{n}", chat_id=1000 + n % 5))
            stop.wait(interval)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(30)


def assert_none_lost(release: BotRelease, sent: list[int], record: object) -> int:
    """Every update delivered and answered; a second answer only where Telegram retried.

    Returns the number of duplicate answers.
    """
    assert sent, "no update was sent"
    release.bot.wait_delivered(sent, timeout=180)
    replies = wait_for(
        "a reply to every update",
        lambda: (r := release.bot.replies()) and all(u in r for u in sent) and r,
        timeout=60,
    )
    attempts = {u["update_id"]: u["attempts"] for u in release.bot.updates()}
    duplicates = {u: len(replies[u]) - 1 for u in sent if len(replies[u]) > 1}
    # At-least-once: an update answered twice was delivered more than once (its first answer
    # did not reach the emulator), never duplicated by the pods themselves.
    assert all(attempts[u] > 1 for u in duplicates), (duplicates, attempts)
    assert callable(record)
    record("updates", len(sent))
    record("duplicates", sum(duplicates.values()))
    return sum(duplicates.values())


def _no_401(release: BotRelease) -> None:
    rejected = [d for d in release.bot.deliveries() if d["status"] == 401]
    assert not rejected, rejected


def _secret(cluster: PodTestCluster, release: BotRelease) -> dict[str, str]:
    data = kube_json(cluster, "get", "secret", f"{release.fullname}-webhook", "-n", release.namespace)["data"]
    # secret-token and previous-secret-token are text; other keys (if any) need not be.
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}


@pytest.fixture
def bot_release(shared_bot_release: BotRelease) -> BotRelease:
    """The session's bot release: these tests disturb it, and each checks it serves again."""
    return shared_bot_release


@pytest.mark.timeout(600)
def test_secret_token_rotation_with_the_kubelet_updating_the_volume(
    pod_cluster: PodTestCluster, bot_release: BotRelease, record_property: object
) -> None:
    old = _secret(pod_cluster, bot_release)["secret-token"]
    with flowing(bot_release) as sent:
        pod_cluster.kubectl(
            "annotate",
            "tgbot",
            bot_release.fullname,
            "-n",
            bot_release.namespace,
            f"tgbot.dev/rotate-secret-token={secrets.token_hex(4)}",
        )
        # Telegram gets the new token only after the propagation grace; the kubelet has
        # updated the sidecar's volume by then, or deliveries would be refused with 401.
        new = wait_for(
            "setWebhook with the new token",
            lambda: (t := bot_release.bot.webhook(reveal_secrets=True)["secret_token"]) != old and t,
            timeout=180,
        )
        wait_for(
            "the previous token retired",
            lambda: "previous-secret-token" not in _secret(pod_cluster, bot_release),
            timeout=180,
        )
        time.sleep(3)  # a few deliveries with only the new token left
    assert _secret(pod_cluster, bot_release)["secret-token"] == new
    assert_none_lost(bot_release, sent, record_property)
    _no_401(bot_release)
    (pod,) = bot_release.pods()
    assert all(s["restartCount"] == 0 for s in pod["status"]["containerStatuses"]), "no restart was needed"


@pytest.mark.timeout(600)
def test_rollout_restart_and_pod_delete_lose_no_update(
    pod_cluster: PodTestCluster, bot_release: BotRelease, record_property: object
) -> None:
    deployment = f"deployment/{bot_release.fullname}"
    with flowing(bot_release) as sent:
        time.sleep(2)
        pod_cluster.kubectl("rollout", "restart", deployment, "-n", bot_release.namespace)
        pod_cluster.kubectl(
            "rollout", "status", deployment, "-n", bot_release.namespace, "--timeout=240s", timeout=260
        )
        time.sleep(2)
        (pod,) = [p for p in bot_release.pods() if not p["metadata"].get("deletionTimestamp")]
        pod_cluster.kubectl(
            "delete", "pod", pod["metadata"]["name"], "-n", bot_release.namespace, "--wait=false"
        )
        wait_for(
            "a new Ready pod",
            lambda: [
                p
                for p in bot_release.pods()
                if p["metadata"]["name"] != pod["metadata"]["name"] and pod_ready_since(p)
            ],
            timeout=240,
        )
        time.sleep(3)
    assert_none_lost(bot_release, sent, record_property)
    _no_401(bot_release)


@pytest.mark.timeout(600)
def test_operator_pod_deleted_comes_back_without_an_extra_set_webhook(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease, bot_release: BotRelease
) -> None:
    calls_before = len(bot_release.bot.calls("setWebhook"))
    checks_before = len(bot_release.bot.calls("getWebhookInfo"))
    (old,) = operator_release.pods()
    pod_cluster.kubectl("delete", "pod", old["metadata"]["name"], "-n", operator_release.namespace)
    new = wait_for(
        "a new Ready operator pod",
        lambda: [
            p
            for p in operator_release.pods()
            if p["metadata"]["name"] != old["metadata"]["name"] and pod_ready_since(p)
        ],
        timeout=240,
    )[0]
    # It has looked at the bot again (one getWebhookInfo) and found nothing to change.
    wait_for(
        "the new operator checking the bot",
        lambda: len(bot_release.bot.calls("getWebhookInfo")) > checks_before,
        timeout=120,
    )
    time.sleep(15)  # three token-check intervals
    assert len(bot_release.bot.calls("setWebhook")) == calls_before
    assert new["status"]["containerStatuses"][0]["restartCount"] == 0
    update_id = bot_release.bot.send("after the operator came back")
    bot_release.bot.wait_delivered([update_id], timeout=60)
