"""`helm test` runs both charts' test hooks for real: the operator chart's pod curls /healthz and
/metrics through its Service; the bot chart's pod proves a delivered update end to end (sidecar
ready through the Service, the webhook registered at the Bot API server, no recent delivery error,
a message sent through the emulator delivered to the bot and answered) - and fails when the bot
is down."""

from __future__ import annotations

import re

import pytest

from tests.pods.conftest import PodTestCluster
from tgbot_localdev.polling import wait_for
from tgbot_localdev.releases import BotRelease, OperatorRelease, ReleaseError, pod_ready_since


def test_helm_test_of_the_operator_chart_passes(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease
) -> None:
    # The test pod curls http://<service>:<port>: our cluster's DNS (clusterdns.py) resolves it.
    assert "curl" in pod_cluster.images, "hack/build-images.sh builds the helm test image"
    output = operator_release.test()
    assert "Succeeded" in output, output
    assert f"{operator_release.fullname}-test" in output, output


def _serving(release: BotRelease) -> list[dict[str, object]]:
    return [p for p in release.pods() if pod_ready_since(p) and not p["metadata"].get("deletionTimestamp")]


def test_helm_test_of_the_bot_chart_delivers_an_update_end_to_end(
    pod_cluster: PodTestCluster, shared_bot_release: BotRelease
) -> None:
    release = shared_bot_release
    wait_for("a serving bot pod", lambda: _serving(release), timeout=240)
    before = {u["update_id"] for u in release.bot.updates()}
    output = release.test()
    assert f"{release.fullname}-test" in output, output
    assert "Succeeded" in output, output
    assert "ok: the sidecar is ready" in output, output
    assert f"has the webhook http://{release.cluster_ip}:8443/webhook" in output, output
    delivered = re.search(r"ok: update (\d+) went through the Service and the sidecar to the bot", output)
    assert delivered, output
    # The emulator saw that update: the hook's message, delivered and answered 200 by the pod.
    update_id = int(delivered.group(1))
    assert update_id not in before
    (update,) = [u for u in release.bot.updates() if u["update_id"] == update_id]
    assert update["state"] == "delivered", update
    assert release.bot.replies().get(update_id) == ["helm test"]
    assert release.bot.token not in output


def test_helm_test_of_the_bot_chart_fails_while_the_bot_is_down(
    pod_cluster: PodTestCluster, shared_bot_release: BotRelease
) -> None:
    release = shared_bot_release
    deployment = f"deployment/{release.fullname}"
    pod_cluster.kubectl("scale", deployment, "-n", release.namespace, "--replicas=0")
    try:
        wait_for("no bot pod left", lambda: not release.pods(), timeout=120)
        with pytest.raises(ReleaseError) as failed:
            release.test(timeout="2m")
        assert "the sidecar's /readyz" in str(failed.value), failed.value
        assert release.bot.token not in str(failed.value)
    finally:
        pod_cluster.kubectl("scale", deployment, "-n", release.namespace, "--replicas=1")
        wait_for("the bot serving again", lambda: _serving(release), timeout=240)
