"""The API server rejects invalid TelegramBots with the CRD's messages (OpenAPI and CEL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT, Cluster

from .support import kubectl

pytestmark = [pytest.mark.cluster]


def bot(spec: dict[str, Any], name: str = "v") -> str:
    return yaml.safe_dump(
        {"apiVersion": "tgbot.dev/v1alpha1", "kind": "TelegramBot", "metadata": {"name": name}, "spec": spec}
    )


REF = {"name": "t"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"tokenSecretRef": REF, "webhook": {"url": "http://bots.example.com/x"}},
            "must be https on port 443, 80, 88 or 8443",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://bots.example.com:9000/x"}},
            "must be https on port 443, 80, 88 or 8443",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://x/y", "maxConnections": 0}},
            "should be greater than or equal to 1",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://x/y", "maxConnections": 101}},
            "should be less than or equal to 100",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://x/y", "certificate": {"mode": "Secret"}}},
            "secretRef is required when mode is Secret",
        ),
        (
            {
                "tokenSecretRef": REF,
                "webhook": {
                    "url": "https://x/y",
                    "certificate": {"mode": "SelfSigned", "secretRef": {"name": "a"}},
                },
            },
            "secretRef is required when mode is Secret",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://x/y", "ipAddress": "::1"}},
            "must be an IPv4 address",
        ),
        (
            {
                "tokenSecretRef": REF,
                "webhook": {"url": "https://x/y"},
                "secretToken": {"rotationInterval": "0s"},
            },
            "positive duration",
        ),
        (
            {"tokenSecretRef": REF, "webhook": {"url": "https://x/y"}, "deletionPolicy": "Orphan"},
            "Unsupported value",
        ),
        ({"webhook": {"url": "https://x/y"}}, "tokenSecretRef: Required value"),
        (
            {
                "tokenSecretRef": REF,
                "botApiServer": "https://u:pw@api.example",
                "webhook": {"url": "https://x/y"},
            },
            "spec.botApiServer must not contain user info (user:password@)",
        ),
        (
            {
                "tokenSecretRef": REF,
                "botApiServer": "http://api.example@127.0.0.1:8081/",
                "webhook": {"url": "https://x/y"},
            },
            "spec.botApiServer must not contain user info (user:password@)",
        ),
        (
            {
                "tokenSecretRef": REF,
                "botApiServer": "https://api.example/?to=x",
                "webhook": {"url": "https://x/y"},
            },
            "spec.botApiServer must not contain a query (?...)",
        ),
        (
            {
                "tokenSecretRef": REF,
                "botApiServer": "https://api.example/#x",
                "webhook": {"url": "https://x/y"},
            },
            "spec.botApiServer must not contain a fragment (#...)",
        ),
    ],
)
async def test_invalid_specs_are_rejected(
    cluster: Cluster, namespace: str, crd_installed: None, spec: dict[str, Any], message: str
) -> None:
    result = await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=bot(spec), check=False)
    assert result.returncode != 0, "the API server accepted an invalid TelegramBot"
    assert message in result.stderr, result.stderr


async def test_self_hosted_server_accepts_http_and_any_port(
    cluster: Cluster, namespace: str, crd_installed: None
) -> None:
    spec = {
        "tokenSecretRef": REF,
        "botApiServer": "http://127.0.0.1:8081",
        "webhook": {"url": "http://127.0.0.1:3000/x"},
    }
    await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=bot(spec))
    official = {"tokenSecretRef": REF, "webhook": {"url": "https://bots.example.com:8443/x"}}
    await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=bot(official, "w"))
    # An "@" in the path is no user info.
    at_path = {**spec, "botApiServer": "http://127.0.0.1:8081/team@bots"}
    await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=bot(at_path, "at"))
    await kubectl(cluster, "delete", "tgbot", "--all", "-n", namespace)


async def test_defaults_are_filled_in(cluster: Cluster, namespace: str, crd_installed: None) -> None:
    await kubectl(
        cluster,
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=bot({"tokenSecretRef": REF, "webhook": {"url": "https://x/y"}}),
    )
    result = await kubectl(cluster, "get", "tgbot", "v", "-n", namespace, "-o", "yaml")
    spec = yaml.safe_load(result.stdout)["spec"]
    assert spec["tokenSecretRef"]["key"] == "token"
    assert spec["webhook"]["maxConnections"] == 40
    assert spec["webhook"]["dropPendingUpdates"] is False
    assert spec["webhook"]["certificate"] == {"mode": "None"}
    assert spec["deletionPolicy"] == "DeleteWebhook"
    await kubectl(cluster, "delete", "tgbot", "--all", "-n", namespace)


@pytest.mark.parametrize(
    "path",
    sorted((REPO_ROOT / "examples").glob("telegrambot-*.yaml")),
    ids=lambda p: p.name,
)
async def test_examples_are_accepted(
    cluster: Cluster, namespace: str, crd_installed: None, path: Path
) -> None:
    bots = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "TelegramBot"]
    assert bots
    await kubectl(
        cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(bots)
    )
