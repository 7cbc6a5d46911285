"""Upgrading from an operator that kept kopf's state under ``tgbot.dev/`` (every earlier version).

Such an operator leaves ``tgbot.dev/kopf-managed`` and ``tgbot.dev/last-handled-configuration`` on
every TelegramBot. kopf leaves every annotation under its storage prefix out of its diffs (and,
while that marker is there, every ``tgbot.dev/`` one for any kopf storage), so the rotation
annotation went unseen. The new operator reads the legacy diff base (the bot is resumed, not
created), moves it to ``kopf.tgbot.dev/`` and removes the marker; then a rotation request is
seen at once.
"""

from __future__ import annotations

import json
from typing import cast

import kopf
import pytest

from tests.support import Cluster, Emulator
from tgbot_operator import names

from .conftest import OperatorFactory
from .support import (
    Bots,
    eventually,
    get,
    kubectl,
    secret_data,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

LEGACY_MARKER = f"{names.LEGACY_PERSISTENCE_PREFIX}/kopf-managed"
LEGACY_DIFFBASE = f"{names.LEGACY_PERSISTENCE_PREFIX}/{names.DIFFBASE_KEY}"
NEW_DIFFBASE = f"{names.PERSISTENCE_PREFIX}/{names.DIFFBASE_KEY}"


async def _as_an_old_operator_left_it(cluster: Cluster, namespace: str, name: str) -> None:
    """Replace kopf's annotations by what kopf wrote with the old prefix (kopf computes them)."""
    bot = await get(cluster, namespace, "tgbot", name)
    assert bot is not None
    annotations = dict(bot["metadata"].get("annotations") or {})
    patch: dict[str, str | None] = {
        k: None for k in annotations if k.startswith(f"{names.PERSISTENCE_PREFIX}/")
    }
    bot["metadata"]["annotations"] = {
        **{k: v for k, v in annotations.items() if k not in patch},
        LEGACY_MARKER: "yes",
    }
    legacy = kopf.AnnotationsDiffBaseStorage(prefix=names.LEGACY_PERSISTENCE_PREFIX, key=names.DIFFBASE_KEY)
    essence = legacy.build(body=kopf.Body(cast(kopf.RawBody, bot)))
    patch |= {LEGACY_MARKER: "yes", LEGACY_DIFFBASE: json.dumps(essence, separators=(",", ":"))}
    body = json.dumps({"metadata": {"annotations": patch}})
    await kubectl(cluster, "patch", "tgbot", name, "-n", namespace, "--type=merge", "-p", body)


async def test_an_upgrade_resumes_bots_moves_kopfs_annotations_and_sees_rotation_requests(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    # Token and drift checks a minute and more apart: only kopf's field handler can make a
    # rotation start quickly.
    operator = start_operator("--token-check-interval", "60", "--check-interval", "300")
    await bots.ready_bot("up", 3901)
    operator.stop()
    await _as_an_old_operator_left_it(cluster, namespace, "up")
    registrations = len(await emulator.client.calls(3901, method="setWebhook"))
    log_before = len(operator.log())

    operator.start()
    bot = await eventually(
        lambda: get(cluster, namespace, "tgbot", "up"),
        lambda b: LEGACY_MARKER not in ((b or {}).get("metadata", {}).get("annotations") or {}),
        timeout=90,  # a loaded machine can take long to start the operator
        what="the legacy kopf marker removed",
    )
    assert bot is not None
    annotations = bot["metadata"]["annotations"]
    assert LEGACY_DIFFBASE not in annotations
    assert NEW_DIFFBASE in annotations
    assert not [key for key in annotations if key.endswith("/kopf-managed")]  # a kopf.* prefix needs none
    assert bot["metadata"]["finalizers"] == [names.FINALIZER]
    log = operator.log()[log_before:]
    assert "Moved kopf's annotations" in log
    assert "Creation is processed" not in log  # resumed, not created again
    await wait_condition(cluster, namespace, "up")
    assert len(await emulator.client.calls(3901, method="setWebhook")) == registrations

    first = (await secret_data(cluster, namespace, "up-webhook"))["secret-token"]
    await kubectl(cluster, "annotate", "tgbot", "up", "-n", namespace, f"{names.ROTATE_ANNOTATION}=1")
    await eventually(
        lambda: secret_data(cluster, namespace, "up-webhook"),
        lambda data: data.get("previous-secret-token") == first,
        timeout=30,
        what="a rotation started by the annotation",
    )
    assert "Handler 'rotation-requested/metadata.annotations." in operator.log()[log_before:]
