"""The generated Secret's shape, and reading Secrets."""

from __future__ import annotations

import base64

import kubernetes

from tgbot_operator import names
from tgbot_operator.kube import SecretView, connection_fields, owner_reference, secret_body


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
