"""handlers.py without a cluster: kopf's configuration, the storage migration, and the handlers
themselves called as kopf calls them (fake Kubernetes, kopf's own settings, storages and flags)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.aiokits.aioenums import FlagSetter
from kopf._core.engines import posting

from tgbot_operator import handlers, names
from tgbot_operator.deps import Deps
from tgbot_operator.metrics import Metrics
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.worker import BotWorker

from .conftest import FakeKube

ROTATE = names.ROTATE_ANNOTATION
LEGACY = names.LEGACY_PERSISTENCE_PREFIX
LOGGER = logging.getLogger("test")


def bot_body(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": "bot", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {
            "tokenSecretRef": {"name": "bot-token"},
            "botApiServer": "https://not-allowed.example",  # the worker sends nothing anywhere
            "webhook": {"url": "https://example.org/hook"},
            "deletionPolicy": "Keep",
        },
    }


def body_of(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, raw))


@pytest.fixture
def deps(fake_kube: FakeKube) -> Deps:
    return Deps(settings=OperatorSettings(), kube=fake_kube, metrics=Metrics())


@pytest.fixture
def registry(deps: Deps) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, deps)
    return registry


def kopf_events() -> asyncio.Queue[posting.K8sEvent]:
    """kopf.event() queues Events for kopf's poster: set up what it finds when kopf runs (in the
    test's own context: tasks it starts inherit it)."""
    queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
    posting.event_queue_var.set(queue)
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.settings_var.set(configured())
    return queue


def handler(registry: kopf.OperatorRegistry, prefix: str) -> Callable[..., Any]:
    """A registered handler's function, by id (kopf appends the field to a field handler's id)."""
    found = [
        h.fn
        for sub in (registry._changing, registry._spawning)
        for h in sub.get_all_handlers()
        if h.id == prefix or h.id.startswith(prefix + "/")
    ]
    assert len(found) == 1, found
    return cast(Callable[..., Any], found[0])


def configured() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    handlers.configure_kopf(settings)
    return settings


def essence(settings: kopf.OperatorSettings, raw: dict[str, Any]) -> dict[str, Any]:
    """What kopf compares between events (its diff base): its own annotations left out."""
    persistence = settings.persistence
    built = persistence.diffbase_storage.build(body=body_of(raw))
    return dict(persistence.progress_storage.clear(essence=built))


def test_kopf_keeps_its_state_under_a_prefix_of_its_own() -> None:
    persistence = configured().persistence
    assert persistence.finalizer == "tgbot.dev/finalizer"  # unchanged: existing objects keep theirs
    progress = persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == "kopf.tgbot.dev"
    assert isinstance(persistence.diffbase_storage, handlers.DiffBaseStorage)
    assert persistence.diffbase_storage.prefix == "kopf.tgbot.dev"


def test_the_rotation_annotation_is_in_kopfs_diffs_now_and_was_not_before() -> None:
    raw = bot_body(**{ROTATE: "1", f"{LEGACY}/kopf-managed": "yes"})
    # With the legacy marker on the object, the annotation is hidden even from the new storages.
    assert ROTATE not in essence(configured(), raw).get("metadata", {}).get("annotations", {})
    migrated = bot_body(**{ROTATE: "1"})
    assert essence(configured(), migrated)["metadata"]["annotations"] == {ROTATE: "1"}
    old = kopf.OperatorSettings()
    old.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=LEGACY)
    old.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=LEGACY)
    assert "metadata" not in essence(old, migrated)  # why the worker used to poll the live body


def test_the_legacy_diff_base_is_read_until_there_is_one_of_ours() -> None:
    storage = handlers.DiffBaseStorage()
    legacy_only = bot_body(**{f"{LEGACY}/{names.DIFFBASE_KEY}": json.dumps({"spec": {"old": 1}})})
    assert storage.fetch(body=body_of(legacy_only)) == {"spec": {"old": 1}}
    both = bot_body(
        **{
            f"{LEGACY}/{names.DIFFBASE_KEY}": json.dumps({"spec": {"old": 1}}),
            f"kopf.tgbot.dev/{names.DIFFBASE_KEY}": json.dumps({"spec": {"new": 1}}),
        }
    )
    assert storage.fetch(body=body_of(both)) == {"spec": {"new": 1}}
    assert storage.fetch(body=body_of(bot_body())) is None


def test_the_migration_patch_moves_kopfs_annotations_and_nothing_else() -> None:
    diffbase = json.dumps({"spec": {}})
    raw = bot_body(
        **{
            f"{LEGACY}/kopf-managed": "yes",
            f"{LEGACY}/{names.DIFFBASE_KEY}": diffbase,
            f"{LEGACY}/spec-changed": '{"retries":1}',
            ROTATE: "1",
            "example.com/other": "x",
        }
    )
    assert handlers.legacy_storage_patch(raw) == {
        f"{LEGACY}/kopf-managed": None,
        f"{LEGACY}/{names.DIFFBASE_KEY}": None,
        f"{LEGACY}/spec-changed": None,
        f"kopf.tgbot.dev/{names.DIFFBASE_KEY}": diffbase,
    }
    assert handlers.legacy_storage_patch(bot_body(**{ROTATE: "1"})) == {}


async def test_the_resume_handler_patches_only_legacy_objects(registry: kopf.OperatorRegistry) -> None:
    migrate = handler(registry, "kopf-storage")
    raw = bot_body(**{f"{LEGACY}/kopf-managed": "yes"})
    patch = kopf.Patch()
    await migrate(body=body_of(raw), patch=patch, logger=LOGGER)
    assert dict(patch) == {"metadata": {"annotations": {f"{LEGACY}/kopf-managed": None}}}
    patch = kopf.Patch()
    await migrate(body=body_of(bot_body()), patch=patch, logger=LOGGER)
    assert not patch


async def test_spec_and_rotation_annotation_changes_poke_the_worker(
    registry: kopf.OperatorRegistry, deps: Deps
) -> None:
    worker = BotWorker(deps, body=bot_body(), logger=LOGGER, events=lambda *e: None)
    memo = kopf.Memo({handlers.WORKER_KEY: worker})
    for name in ("rotation-requested", "spec-changed"):
        worker._wake.clear()
        await handler(registry, name)(memo=memo)
        assert worker._wake.is_set(), name
    await handler(registry, "rotation-requested")(memo=kopf.Memo())  # no worker (yet): nothing
    field_handlers = [
        h for h in registry._changing.get_all_handlers() if h.id.startswith("rotation-requested")
    ]
    assert [h.field for h in field_handlers] == [("metadata", "annotations", ROTATE)]


@pytest.mark.looptime
async def test_the_daemon_runs_the_worker_until_kopf_stops_it(
    registry: kopf.OperatorRegistry, deps: Deps
) -> None:
    kopf_events()
    setter: FlagSetter[Any] = FlagSetter()
    memo = kopf.Memo()
    raw = bot_body()
    task = asyncio.create_task(
        handler(registry, "worker")(stopped=setter.async_waiter, body=body_of(raw), memo=memo, logger=LOGGER)
    )
    await asyncio.sleep(100)  # virtual: passes, token checks every 30 s
    worker = memo[handlers.WORKER_KEY]
    assert isinstance(worker, BotWorker)
    assert deps.metrics.bots._value.get() == 1
    setter.set()
    start = asyncio.get_running_loop().time()
    await asyncio.wait_for(task, 5)
    # The relay reads the flag within its interval (1 s) and wakes the sleeping worker.
    assert asyncio.get_running_loop().time() - start <= 1.1
    assert handlers.WORKER_KEY not in memo
    assert worker.stopped
    assert deps.metrics.bots._value.get() == 0


@pytest.mark.looptime
async def test_sleeping_daemons_cost_one_task_each_and_one_relay_for_all(
    registry: kopf.OperatorRegistry,
) -> None:
    kopf_events()
    setters: list[FlagSetter[Any]] = [FlagSetter() for _ in range(20)]
    existing = asyncio.all_tasks()
    daemon = handler(registry, "worker")
    daemons = []
    for i, setter in enumerate(setters):
        raw = {**bot_body(), "metadata": {"name": f"b{i}", "namespace": "ns", "uid": f"u{i}"}}
        kwargs = {"stopped": setter.async_waiter, "body": body_of(raw), "memo": kopf.Memo(), "logger": LOGGER}
        daemons.append(asyncio.create_task(daemon(**kwargs)))
    await asyncio.sleep(100)  # virtual: every worker has registered and sleeps
    new = asyncio.all_tasks() - existing
    names_ = sorted(t.get_name() for t in new)
    assert len(new) == len(daemons) + 1, names_  # the daemons and the relay, nothing per bot
    assert names_.count("daemon stop relay") == 1
    setters[3].set()
    await asyncio.wait_for(daemons[3], 5)  # one stopped, the others sleep on
    assert not any(d.done() for i, d in enumerate(daemons) if i != 3)
    for setter in setters:
        setter.set()
    await asyncio.wait_for(asyncio.gather(*daemons), 5)


async def test_delete_stops_the_worker_then_finalizes(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    events = kopf_events()
    raw = bot_body()
    worker = BotWorker(deps, body=raw, logger=LOGGER, events=lambda *e: None)
    running = asyncio.create_task(worker.run())
    memo = kopf.Memo({handlers.WORKER_KEY: worker})
    await handler(registry, "finalize")(body=body_of(raw), memo=memo, logger=LOGGER, retry=0)
    await asyncio.wait_for(running, 1)
    event = events.get_nowait()
    assert (event.type, event.reason) == ("Normal", "WebhookKept")


async def test_delete_asks_kopf_to_retry_while_the_webhook_cannot_be_deleted(
    registry: kopf.OperatorRegistry,
    deps: Deps,
    fake_kube: FakeKube,
) -> None:
    kopf_events()
    raw = bot_body()
    raw["spec"]["deletionPolicy"] = "DeleteWebhook"
    raw["spec"].pop("botApiServer")  # the default server, always allowed
    raw["metadata"]["deletionTimestamp"] = deps.clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    async def unreachable(namespace: str, name: str) -> Any:
        from tgbot_operator.kube import KubeError

        raise KubeError("the API server is not reachable")

    fake_kube.read_secret = unreachable  # type: ignore[method-assign]
    with pytest.raises(kopf.TemporaryError) as raised:
        await handler(registry, "finalize")(body=body_of(raw), memo=kopf.Memo(), logger=LOGGER, retry=2)
    assert raised.value.delay == 4.0
    assert "the API server is not reachable" in str(raised.value)


MANAGED_FIELDS = [
    {"manager": "kubectl-create", "operation": "Update", "fieldsV1": {"f:spec": {"f:webhook": {".": {}}}}},
    {"manager": "tgbot-operator", "subresource": "status", "fieldsV1": {"f:status": {"f:conditions": {}}}},
]


async def test_kopf_hands_every_event_to_the_handler_that_drops_managed_fields(
    registry: kopf.OperatorRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf's own watching step, on our registry: the dict kopf keeps as the object's live body
    loses its managedFields (what the daemon and the change handlers see afterwards)."""
    from kopf._core.actions.loggers import LocalObjectLogger
    from kopf._core.intents.causes import detect_watching_cause
    from kopf._core.reactor.processing import process_watching_cause

    # kopf's own logging, without the filters an earlier setup_logging may have left (logs.py)
    monkeypatch.setattr(logging.getLogger("kopf.objects"), "filters", [])
    settings = configured()
    resource = kopf.Resource(names.GROUP, names.VERSION, names.PLURAL, kind=names.KIND, namespaced=True)
    raw = bot_body()
    raw["metadata"]["managedFields"] = MANAGED_FIELDS
    body = body_of(raw)
    cause = detect_watching_cause(
        raw_event={"type": "MODIFIED", "object": cast(kopf.RawBody, raw)},
        body=body,
        resource=resource,
        logger=LocalObjectLogger(body=body, settings=settings),
        patch=kopf.Patch(),
        memo=kopf.Memo(),
        indices=cast(Any, {}),
    )
    with caplog.at_level(logging.INFO, logger="kopf.objects"):
        await process_watching_cause(
            lifecycle=kopf.lifecycles.all_at_once, registry=registry, settings=settings, cause=cause
        )
    assert "managedFields" not in body.metadata
    assert body.spec["webhook"] == {"url": "https://example.org/hook"}  # the rest untouched
    messages = [r.getMessage() for r in caplog.records if names.FORGET_MANAGED_FIELDS in r.getMessage()]
    assert messages == [f"Handler '{names.FORGET_MANAGED_FIELDS}' succeeded."]  # dropped by logs.py


@pytest.mark.parametrize(
    "event",
    [{"type": "DELETED", "object": {"metadata": None}}, {"type": None, "object": None}, {}],
    ids=["no metadata", "no object", "empty"],
)
def test_an_event_without_an_object_or_metadata_is_left_alone(event: dict[str, Any]) -> None:
    before = json.dumps(event)
    handlers.forget_managed_fields(event)
    assert json.dumps(event) == before
