"""localdev's kubectl helper never puts a Secret's literal value (a bot token) in its errors."""

from __future__ import annotations

import pytest

from tests.support import Cluster
from tgbot_localdev.kubectl import KubectlError, kubectl, shown

TOKEN = "123456:AAE-not-a-real-token-but-shaped-like-one"


def test_shown_hides_literal_values_and_keeps_the_rest() -> None:
    args = ("create", "secret", "generic", "t", f"--from-literal=token={TOKEN}", "-n", "ns")
    assert shown(args) == "create secret generic t --from-literal=token=*** -n ns"


def test_a_failing_create_secret_names_the_key_not_the_token(cluster: Cluster) -> None:
    # The cluster's kubectl, pointed where nothing listens: it fails at once, the error path we need.
    with pytest.raises(KubectlError) as failure:
        kubectl(cluster.env, "--server=https://127.0.0.1:1", "create", "secret", "generic", "t",
                f"--from-literal=token={TOKEN}", timeout=30)  # fmt: skip
    assert TOKEN not in str(failure.value)
    assert "--from-literal=token=***" in str(failure.value)
