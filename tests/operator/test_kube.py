"""The generated Secret's shape, and reading Secrets."""

from __future__ import annotations

import base64
import socket
from typing import Any

import kubernetes
import pytest

from tgbot_operator import names
from tgbot_operator.kube import (
    Kube,
    KubeError,
    SecretView,
    connection_fields,
    owner_reference,
    secret_body,
)


def test_secret_body_for_a_new_secret() -> None:
    body = secret_body(
        name="echo-webhook",
        namespace="ns",
        bot_name="echo",
        bot_uid="uid-1",
        data={names.SECRET_TOKEN_KEY: b"abc"},
        annotations={names.ROTATION_PHASE_ANNOTATION: "Idle"},
    )
    assert body["type"] == "Opaque"
    meta = body["metadata"]
    assert meta["labels"] == {names.MANAGED_BY_LABEL: names.MANAGED_BY_VALUE, names.BOT_LABEL: "echo"}
    assert meta["ownerReferences"] == [owner_reference("echo", "uid-1")]
    assert meta["ownerReferences"][0]["controller"] is True
    assert "resourceVersion" not in meta
    assert base64.b64decode(body["data"][names.SECRET_TOKEN_KEY]) == b"abc"


def test_secret_body_keeps_foreign_metadata_and_drops_our_stale_annotations() -> None:
    base = SecretView(
        name="echo-webhook",
        namespace="ns",
        type="Opaque",
        data={},
        labels={"team": "bots"},
        annotations={"note": "keep", names.ROTATION_PHASE_SINCE_ANNOTATION: "2026-01-01T00:00:00Z"},
        owner_references=[],
        resource_version="42",
    )
    body = secret_body(
        name="echo-webhook",
        namespace="ns",
        bot_name="echo",
        bot_uid="uid-1",
        data={},
        annotations={names.ROTATION_PHASE_ANNOTATION: "Idle"},
        base=base,
    )
    meta = body["metadata"]
    assert meta["labels"]["team"] == "bots"
    assert meta["annotations"] == {"note": "keep", names.ROTATION_PHASE_ANNOTATION: "Idle"}
    assert meta["resourceVersion"] == "42"


def test_secret_view_decodes_and_knows_its_controller() -> None:
    view = SecretView.from_dict(
        {
            "metadata": {
                "name": "s",
                "namespace": "ns",
                "resourceVersion": "7",
                "ownerReferences": [{"uid": "u", "controller": True}],
            },
            "data": {"token": base64.b64encode(b"t").decode()},
        }
    )
    assert view.data == {"token": b"t"}
    assert view.controlled_by("u")
    assert not view.controlled_by("other")
    assert "t'" not in repr(view)  # data stays out of repr


def test_connection_fields_carry_the_bearer_token() -> None:
    configuration = kubernetes.client.Configuration(host="https://127.0.0.1:6443")
    configuration.api_key = {"authorization": "abc"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    fields = connection_fields(configuration)
    assert fields["server"] == "https://127.0.0.1:6443"
    assert (fields["scheme"], fields["token"]) == ("Bearer", "abc")


@pytest.mark.parametrize("call", ["read_secret", "create_secret", "replace_secret", "patch_bot_status"])
async def test_an_unreachable_api_server_is_a_kube_error(call: str) -> None:
    # Connection refused is no ApiException: unwrapped, it ended the worker (kopf restarted the
    # daemon a minute later, without the registration it had not been able to write).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    kube = Kube(kubernetes.client.ApiClient(configuration))
    body = {"metadata": {"name": "s"}}
    args: dict[str, tuple[Any, ...]] = {
        "read_secret": ("ns", "s"),
        "create_secret": ("ns", body),
        "replace_secret": ("ns", body),
        "patch_bot_status": ("ns", "bot", {"observedGeneration": 1}),
    }
    with pytest.raises(KubeError, match="did not answer"):
        await getattr(kube, call)(*args[call])
