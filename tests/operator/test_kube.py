"""The generated Secret's shape, and reading Secrets."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support import Cluster
from tgbot_operator import names
from tgbot_operator.kube import (
    SECRET_READS_ENV,
    Conflict,
    Kube,
    KubeError,
    SecretReads,
    SecretView,
    owner_reference,
    secret_body,
    secret_reads_from_env,
)
from tgbot_operator.login import connection_info


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


@pytest.mark.parametrize("call", ["read_secret", "create_secret", "replace_secret", "patch_bot_status"])
async def test_an_unreachable_api_server_is_a_kube_error(call: str) -> None:
    # Connection refused is no ApiException: unwrapped, it ended the worker (kopf restarted the
    # daemon a minute later, without the registration it had not been able to write).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    kube = Kube(lambda: kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
    body = {"metadata": {"name": "s"}}
    args: dict[str, tuple[Any, ...]] = {
        "read_secret": ("ns", "s"),
        "create_secret": ("ns", body),
        "replace_secret": ("ns", body),
        "patch_bot_status": ("ns", "bot", {"observedGeneration": 1}),
    }
    try:
        with pytest.raises(KubeError, match="did not answer"):
            await getattr(kube, call)(*args[call])
        assert kube.in_flight == 0
    finally:
        await kube.close()


async def test_calls_in_flight_are_counted_until_answered_or_failed() -> None:
    # tgbot_operator_kube_requests_in_flight: calls queued behind a slow API server show there.
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        if request.match_info["name"] == "gone":
            return web.json_response({"kind": "Status", "message": "boom"}, status=500)
        return web.json_response({"metadata": {"name": request.match_info["name"], "namespace": "ns"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/secrets/{name}", slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    kube = Kube(lambda: kopf.ConnectionInfo(server=str(server.make_url(""))), secret_reads="poll")
    try:
        calls = [asyncio.ensure_future(kube.read_secret("ns", name)) for name in ("a", "b", "gone")]
        await _until(lambda: asyncio.sleep(0, kube.in_flight), lambda n: n == 3)
        release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[2], KubeError)
        assert kube.in_flight == 0
    finally:
        await kube.close()
        await server.close()


# --- against the real API server -------------------------------------------------------------


def _kube(
    cluster: Cluster, secret_reads: SecretReads, on_secret_read: Callable[[str], None] | None = None
) -> Kube:
    return Kube(
        functools.partial(connection_info, cluster.kubeconfig),
        secret_reads=secret_reads,
        on_secret_read=on_secret_read,
    )


def _secret(name: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": token}}


async def _until(probe: Callable[[], Awaitable[Any]], check: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(20):
        while not check(value := await probe()):
            await asyncio.sleep(0.2)
    return value


async def test_watched_secrets_are_served_from_the_cache_until_they_change(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "one")))
    kube = _kube(cluster, "watch")
    try:
        first = await kube.read_secret(namespace, "tok")
        assert first is not None
        assert first.data["token"] == b"one"
        # Unchanged: the very same view, no GET (a GET decodes a new one).
        again = await _until(lambda: kube.read_secret(namespace, "tok"), lambda v: v is not None)
        assert await kube.read_secret(namespace, "tok") is again
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "two")))
        changed = await _until(
            lambda: kube.read_secret(namespace, "tok"), lambda v: v is not None and v.data["token"] == b"two"
        )
        assert changed.resource_version != first.resource_version
        cluster.kubectl("delete", "secret", "tok", "-n", namespace)
        await _until(lambda: kube.read_secret(namespace, "tok"), lambda v: v is None)
        assert await kube.read_secret(namespace, "absent") is None
    finally:
        await kube.close()


async def test_our_writes_are_read_back_and_a_conflict_forgets_the_cached_secret(
    cluster: Cluster, namespace: str
) -> None:
    kube = _kube(cluster, "watch")
    body = secret_body(
        name="echo-webhook",
        namespace=namespace,
        bot_name="echo",
        bot_uid="uid-1",
        data={names.SECRET_TOKEN_KEY: b"abc"},
        annotations={},
    )
    # No owner here: the garbage collector would delete a Secret whose owner does not exist.
    del body["metadata"]["ownerReferences"]
    try:
        assert await kube.read_secret(namespace, "echo-webhook") is None
        await kube.create_secret(namespace, body)
        with pytest.raises(Conflict):
            await kube.create_secret(namespace, body)
        view = await kube.read_secret(namespace, "echo-webhook")
        assert view is not None
        assert view.data[names.SECRET_TOKEN_KEY] == b"abc"
        stale = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
        with pytest.raises(Conflict, match="echo-webhook"):
            await kube.replace_secret(namespace, stale)
        newer = secret_body(
            name="echo-webhook",
            namespace=namespace,
            bot_name="echo",
            bot_uid="uid-1",
            data={names.SECRET_TOKEN_KEY: b"def"},
            annotations={},
            base=view,
        )
        del newer["metadata"]["ownerReferences"]
        await kube.replace_secret(namespace, newer)
        read = await _until(
            lambda: kube.read_secret(namespace, "echo-webhook"),
            lambda v: v is not None and v.data[names.SECRET_TOKEN_KEY] == b"def",
        )
        assert "def" not in repr(read)
    finally:
        await kube.close()


async def test_what_we_wrote_or_just_read_is_served_without_waiting_for_the_watch(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = _kube(cluster, "watch")
    gets: list[str] = []
    real_get = kube.get_secret

    async def counted(ns: str, name: str) -> SecretView | None:
        gets.append(name)
        return await real_get(ns, name)

    monkeypatch.setattr(kube, "get_secret", counted)
    body = secret_body(
        name="fresh", namespace=namespace, bot_name="b", bot_uid="u", data={"k": b"v"}, annotations={}
    )
    del body["metadata"]["ownerReferences"]
    try:
        assert await kube.read_secret(namespace, "fresh") is None  # waits for the first list
        assert await kube.read_secret(namespace, "fresh") is None  # missing: no second GET
        await kube.create_secret(namespace, body)
        for _ in range(3):  # at once: the watch may not have seen the create yet
            view = await kube.read_secret(namespace, "fresh")
            assert view is not None
            assert view.data == {"k": b"v"}
        assert gets == ["fresh"]  # the one before it existed
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "one")))
        for _ in range(3):
            assert (await kube.read_secret(namespace, "tok")) is not None
        assert gets.count("tok") <= 1  # a GET if the watch had not seen it yet, then the cache
        # A change by someone else is still seen (the watch records the new version).
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "two")))
        await _until(
            lambda: kube.read_secret(namespace, "tok"), lambda v: v is not None and v.data["token"] == b"two"
        )
    finally:
        await kube.close()


async def test_a_missing_secret_is_read_as_missing_until_the_watch_reports_it(
    cluster: Cluster, namespace: str
) -> None:
    hows: list[str] = []
    kube = _kube(cluster, "watch", hows.append)
    try:
        assert await kube.read_secret(namespace, "later") is None
        assert await kube.read_secret(namespace, "later") is None
        assert hows == ["unseen", "cache"]
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("later", "one")))
        view = await _until(lambda: kube.read_secret(namespace, "later"), lambda v: v is not None)
        assert view.data["token"] == b"one"
        assert hows[-1] == "unread"  # reported by the watch, then one GET
        assert set(hows[2:-1]) <= {"cache"}
        cluster.kubectl("delete", "secret", "later", "-n", namespace)
        await _until(lambda: kube.read_secret(namespace, "later"), lambda v: v is None)
        assert await kube.read_secret(namespace, "later") is None
        assert hows[-1] == "cache"
    finally:
        await kube.close()


async def test_the_epoch_changes_with_what_a_read_could_answer(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "one")))
    kube = _kube(cluster, "watch")
    try:
        assert kube.secrets_epoch(namespace) is None  # no watch yet: unknown
        await kube.read_secret(namespace, "tok")
        first = kube.secrets_epoch(namespace)
        assert first is not None
        await _until(lambda: kube.read_secret(namespace, "tok"), lambda v: v is not None)
        settled = kube.secrets_epoch(namespace)
        for _ in range(3):
            await kube.read_secret(namespace, "tok")  # served from the cache: no change
        assert kube.secrets_epoch(namespace) == settled
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "two")))
        await _until(lambda: asyncio.sleep(0, kube.secrets_epoch(namespace)), lambda e: e != settled)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("other", "x")))
        seen = kube.secrets_epoch(namespace)
        await _until(lambda: asyncio.sleep(0, kube.secrets_epoch(namespace)), lambda e: e != seen)
    finally:
        await kube.close()
    polling = _kube(cluster, "poll")
    try:
        await polling.read_secret(namespace, "tok")
        assert polling.secrets_epoch(namespace) is None  # never known: every read is a GET
    finally:
        await polling.close()


async def test_polling_reads_by_name_every_time(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_secret("tok", "one")))
    hows: list[str] = []
    kube = _kube(cluster, "poll", hows.append)
    try:
        first = await kube.read_secret(namespace, "tok")
        second = await kube.read_secret(namespace, "tok")
        assert hows == ["poll", "poll"]
        assert first is not None
        assert second is not None
        assert first is not second
        assert first.resource_version == second.resource_version
    finally:
        await kube.close()


def test_the_mode_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_READS_ENV, "poll")
    assert secret_reads_from_env() == "poll"
    monkeypatch.delenv(SECRET_READS_ENV)
    assert secret_reads_from_env() == "watch"
    monkeypatch.setenv(SECRET_READS_ENV, "sometimes")
    with pytest.raises(ValueError, match="watch or poll"):
        secret_reads_from_env()


async def test_a_missing_bot_or_secret_is_no_error_and_a_refusal_is_one(
    cluster: Cluster, namespace: str, crd_installed: None
) -> None:
    kube = _kube(cluster, "poll")
    try:
        await kube.patch_bot_status(namespace, "gone", {"observedGeneration": 1})  # deleted meanwhile
        assert await kube.get_secret(namespace, "absent") is None
        with pytest.raises(KubeError, match='create Secret "bad"') as caught:
            await kube.create_secret(namespace, {"metadata": {"name": "bad"}, "data": {"k": "not base64!"}})
        assert caught.value.status == 400
        assert not isinstance(caught.value, Conflict)
    finally:
        await kube.close()
