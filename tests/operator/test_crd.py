"""The CRD offline: structure, printer columns, examples valid, and every status field declared."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tgbot_operator import names, profile_items
from tgbot_operator.status import build_status
from tgbot_operator.telegram import WebhookInfo

from .test_reconcile import NOW, observe, synced

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "telegrambots.tgbot.dev.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("telegrambot-*.yaml"))


@cache
def _parsed_crd() -> str:
    """The CRD parsed once (pure-Python YAML, ~0.1 s a parse), kept as JSON so each test gets its own copy."""
    return json.dumps(yaml.safe_load(CRD_PATH.read_text()))


def crd() -> dict[str, Any]:
    return dict(json.loads(_parsed_crd()))


def version() -> dict[str, Any]:
    (only,) = crd()["spec"]["versions"]
    return dict(only)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with additionalProperties: false wherever properties are listed (= what pruning keeps)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def test_names() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == f"{names.PLURAL}.{names.GROUP}"
    assert spec["group"] == names.GROUP
    assert spec["names"]["kind"] == names.KIND
    assert spec["names"]["shortNames"] == ["tgbot"]
    assert spec["scope"] == "Namespaced"
    v = version()
    assert v["name"] == names.VERSION
    assert v["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in version()["additionalPrinterColumns"]}
    assert list(columns) == ["Bot", "URL", "Ready", "Pending", "Delivering", "Age", "LastError"]
    assert columns["LastError"]["priority"] == 1
    # Delivery health is in the default table, not only in -o wide.
    assert "priority" not in columns["Delivering"]
    assert columns["Delivering"]["jsonPath"] == '.status.conditions[?(@.type=="Delivering")].status'
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'


def test_conditions_are_a_list_map() -> None:
    conditions = version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_schema(path: Path) -> None:
    schema = strict(version()["schema"]["openAPIV3Schema"])
    bots = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == names.KIND]
    assert bots
    for bot in bots:
        jsonschema.validate(bot, schema)


PROFILE_ITEMS = [
    {"kind": "commands", "languageCode": "de", "scope": {"type": "chat_member", "chatId": -100, "userId": 7}},
    {"kind": "name"},
    {"kind": "description", "languageCode": "en"},
    {"kind": "shortDescription"},
    {"kind": "menuButton"},
    {"kind": "defaultAdministratorRights", "forChannels": True},
]


def test_every_status_field_is_declared() -> None:
    obs = observe()
    mem = synced(obs)
    mem.live = WebhookInfo(
        url="https://bots.example.com/echo",
        has_custom_certificate=False,
        pending_update_count=1,
        ip_address="203.0.113.10",
        last_error_date=int(NOW.timestamp()),
        last_error_message="Connection refused",
        last_synchronization_error_date=int(NOW.timestamp()),
        max_connections=40,
        allowed_updates=("message",),
    )
    for entry in PROFILE_ITEMS:
        item = profile_items.Item.from_status(entry)
        assert item is not None
        mem.profile.applied.add(item)
    mem.profile.applied_generation, mem.profile.checked_at = 1, NOW
    status = build_status(obs, mem, secret_name="echo-webhook", existing_conditions=None)
    assert sorted(status["profile"]["applied"], key=json.dumps) == sorted(PROFILE_ITEMS, key=json.dumps)
    for key in (
        "bot",
        "webhook",
        "registration",
        "secretTokenRotatedAt",
        "rotationPhase",
        "conditions",
        "profile",
    ):
        assert key in status
    schema = strict(version()["schema"]["openAPIV3Schema"]["properties"]["status"])
    jsonschema.validate(status, schema)


BAD_PROFILES: list[dict[str, Any]] = [
    {"commands": [{"commands": [{"command": "Start", "description": "d"}]}]},
    {"commands": [{"commands": []}]},
    {"names": [{"name": "x" * 65}]},
    {"shortDescriptions": [{"shortDescription": "x" * 121}]},
    {"menuButton": {"type": "keyboard"}},
    {"defaultAdministratorRights": {"groups": {"canManageChat": "yes"}}},
]


@pytest.mark.parametrize(
    "spec",
    [
        {"webhook": {"url": "https://x/y"}},  # no tokenSecretRef
        {"tokenSecretRef": {"name": "t"}},  # no webhook
        {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://x/y", "maxConnections": 0}},
        {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://x/y", "maxConnections": 101}},
        {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "ftp://x/y"}},
        {
            "tokenSecretRef": {"name": "t"},
            "webhook": {"url": "https://x/y", "certificate": {"mode": "Other"}},
        },
        {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://x/y"}, "deletionPolicy": "Orphan"},
        {
            "tokenSecretRef": {"name": "t"},
            "webhook": {"url": "https://x/y"},
            "secretToken": {"rotationInterval": "1d"},
        },
        {"tokenSecretRef": {"name": "Bad_Name"}, "webhook": {"url": "https://x/y"}},
        *(
            {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://x/y"}, "profile": p}
            for p in BAD_PROFILES
        ),
    ],
)
def test_openapi_rejects(spec: dict[str, Any]) -> None:
    schema = strict(version()["schema"]["openAPIV3Schema"])
    body = {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema)
