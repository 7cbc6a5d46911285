"""kopf handlers and kopf's configuration, and nothing else: they hand each TelegramBot to its worker.

* a daemon per TelegramBot runs its :class:`~tgbot_operator.worker.BotWorker`;
* field handlers poke the worker when the spec or the ``tgbot.dev/rotate-secret-token``
  annotation changes (kopf's storage prefix is ``kopf.tgbot.dev``, so our annotations are in its
  diffs);
* a deletion handler (behind our finalizer) runs :func:`~tgbot_operator.deletion.finalize`;
* a resume handler moves kopf's annotations of earlier operators (prefix ``tgbot.dev``) to
  the new prefix (:func:`legacy_storage_patch`);
* startup/cleanup handlers configure kopf and open/close the shared HTTP session;
* an event handler drops each watch event's ``metadata.managedFields`` before kopf keeps the
  object (:func:`forget_managed_fields`).

Handlers return None: kopf writes nothing into status; workers patch status themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from . import names
from .botapi import EnvProxies
from .deletion import Done, finalize
from .deps import Deps, EventSink
from .kube import Kube
from .login import connection_info
from .record import EventType
from .redaction import SecretRegistry
from .worker import BotWorker

WORKER_KEY = "tgbot_worker"
ObjectLogger = logging.Logger | logging.LoggerAdapter[Any]
#: The ids of the object handlers earlier operators had (their progress annotations).
LEGACY_HANDLER_IDS = ("worker", "spec-changed", "finalize")


def kopf_events(body: kopf.Body, secrets: SecretRegistry) -> EventSink:
    def post(type_: EventType, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=secrets.redact(message)[:1000])

    return post


class DiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base under its own prefix; until an object is migrated, the legacy one.

    Reading the legacy diff base makes an upgraded operator see existing TelegramBots as resumed,
    not created (so the migration handler runs, and nothing is handled as new).
    """

    def __init__(self) -> None:
        super().__init__(prefix=names.PERSISTENCE_PREFIX, key=names.DIFFBASE_KEY)
        self.legacy = kopf.AnnotationsDiffBaseStorage(
            prefix=names.LEGACY_PERSISTENCE_PREFIX, key=names.DIFFBASE_KEY
        )

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return super().fetch(body=body) or self.legacy.fetch(body=body)


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """Our persistence names and sensible timeouts (all kopf knobs live here)."""
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.PERSISTENCE_PREFIX)
    settings.persistence.diffbase_storage = DiffBaseStorage()
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.background.cancellation_polling = 1


def legacy_storage_patch(body: Mapping[str, Any]) -> dict[str, str | None]:
    """The annotations patch that moves kopf's state of earlier operators to our prefix.

    The legacy marker (``tgbot.dev/kopf-managed``) must go: while it is there, kopf takes every
    ``tgbot.dev/`` annotation for another kopf operator's state and leaves it out of its diffs,
    the rotation annotation included (a ``kopf.``-prefixed storage writes no marker). The diff
    base is copied; progress records are dropped (only a failing handler has one, and a retry of
    ours starts afresh without harm).
    """
    annotations: Mapping[str, str] = (body.get("metadata") or {}).get("annotations") or {}
    legacy = kopf.AnnotationsProgressStorage(prefix=names.LEGACY_PERSISTENCE_PREFIX)
    keys = {f"{names.LEGACY_PERSISTENCE_PREFIX}/{key}" for key in ("kopf-managed", legacy.touch_key)}
    keys.add(f"{names.LEGACY_PERSISTENCE_PREFIX}/{names.DIFFBASE_KEY}")
    for handler_id in LEGACY_HANDLER_IDS:
        keys.update(legacy.make_keys(handler_id))
    patch: dict[str, str | None] = dict.fromkeys(sorted(k for k in keys if k in annotations))
    diffbase = annotations.get(f"{names.LEGACY_PERSISTENCE_PREFIX}/{names.DIFFBASE_KEY}")
    new_diffbase = f"{names.PERSISTENCE_PREFIX}/{names.DIFFBASE_KEY}"
    if diffbase is not None and new_diffbase not in annotations:
        patch[new_diffbase] = diffbase
    return patch


def forget_managed_fields(event: Mapping[str, Any]) -> None:
    """Drop ``metadata.managedFields`` from a watch event's object, in place.

    kopf keeps the latest body of every object it watches (the daemon's live body is that dict),
    and the field ownership the API server records there - kubectl's, kopf's and our status
    writer's, each a tree of the fields it set, as nested dicts - is most of it: a Ready
    TelegramBot parses to 25.8 KB of Python objects, 11.0 KB without its ``managedFields`` (which
    are only 2.4 of its 10.3 KB of JSON). Nothing here reads them: we never server-side apply, and
    a merge patch without ``managedFields`` leaves the server's record alone. controller-runtime
    operators do the same (``cache.TransformStripManagedFields``).
    """
    obj = event.get("object")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)


class StopRelay:
    """kopf's ``stopped`` flags -> :meth:`BotWorker.stop`, for every daemon, by one task.

    Awaiting a daemon's ``stopped`` takes a task of ours and two of kopf's (a time-limited promise
    and, on Python 3.11, asyncio.wait_for's own): ~2.5 KB per bot (tracemalloc), 25 MB at 10,000
    bots. One task reads every flag once per ``interval`` instead (``is_set()``, a few microseconds
    for all of them); a stop is seen within that, well inside the daemon's cancellation timeout.
    The finalizer stops its worker directly.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._watched: dict[BotWorker, kopf.DaemonStopped] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, worker: BotWorker, stopped: kopf.DaemonStopped) -> None:
        self._watched[worker] = stopped
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._relay(), name="daemon stop relay")

    def forget(self, worker: BotWorker) -> None:
        self._watched.pop(worker, None)

    async def _relay(self) -> None:
        while self._watched:
            await asyncio.sleep(self.interval)
            for worker, stopped in list(self._watched.items()):
                if stopped.is_set():
                    worker.stop()


def register(registry: kopf.OperatorRegistry, deps: Deps, stops: StopRelay | None = None) -> None:
    """Register every handler into ``registry``, bound to ``deps``."""
    resource = (names.GROUP, names.VERSION, names.PLURAL)
    stops = stops or StopRelay()

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings)
        if deps.http is None:
            # The proxy environment once, not per request (botapi.EnvProxies).
            deps.proxies = await asyncio.to_thread(EnvProxies.from_env)
            deps.http = aiohttp.ClientSession()

    @kopf.on.login(registry=registry, id="login")
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The same credentials as our own client (in-cluster, --kubeconfig, or $KUBECONFIG), read
        # again each time kopf asks (at the start, and after a 401).
        return connection_info(deps.settings.kubeconfig)

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(**_: Any) -> None:
        if deps.http is not None:
            await deps.http.close()
            deps.http = None
        if isinstance(deps.kube, Kube):
            await deps.kube.close()

    @kopf.on.event(*resource, registry=registry, id=names.FORGET_MANAGED_FIELDS)
    async def drop_managed_fields(event: kopf.RawEvent, **_: Any) -> None:
        # Runs before the daemon and the change handlers see the event (kopf's watching cause
        # first), on the very dict kopf keeps as the object's live body.
        forget_managed_fields(event)

    @kopf.on.resume(*resource, registry=registry, id="kopf-storage")
    async def migrate_storage(body: kopf.Body, patch: kopf.Patch, logger: ObjectLogger, **_: Any) -> None:
        moved = legacy_storage_patch(body)
        if moved:
            patch.metadata.annotations.update(moved)
            logger.info("Moved kopf's annotations to the %s/ prefix", names.PERSISTENCE_PREFIX)

    @kopf.daemon(
        *resource, registry=registry, id="worker", cancellation_timeout=30.0, cancellation_backoff=5.0
    )
    async def bot_daemon(
        stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, logger: ObjectLogger, **_: Any
    ) -> None:
        worker = BotWorker(deps, body=body, logger=logger, events=kopf_events(body, deps.secrets))
        memo[WORKER_KEY] = worker
        stops.watch(worker, stopped)
        try:
            await worker.run()
        finally:
            stops.forget(worker)
            if memo.get(WORKER_KEY) is worker:
                del memo[WORKER_KEY]

    def poke(memo: kopf.Memo) -> None:
        worker = memo.get(WORKER_KEY)
        if isinstance(worker, BotWorker):
            worker.poke()

    @kopf.on.update(*resource, registry=registry, id="spec-changed", field="spec")
    async def spec_changed(memo: kopf.Memo, **_: Any) -> None:
        poke(memo)

    @kopf.on.field(
        *resource,
        registry=registry,
        id="rotation-requested",
        field=("metadata", "annotations", names.ROTATE_ANNOTATION),
    )
    async def rotation_requested(memo: kopf.Memo, **_: Any) -> None:
        poke(memo)

    @kopf.on.delete(*resource, registry=registry, id="finalize")
    async def delete(body: kopf.Body, memo: kopf.Memo, logger: ObjectLogger, retry: int, **_: Any) -> None:
        worker = memo.get(WORKER_KEY)
        if isinstance(worker, BotWorker):
            worker.stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30.0):
                    await worker.wait_done()
        outcome = await finalize(
            deps=deps, body=body, events=kopf_events(body, deps.secrets), logger=logger, retry=retry
        )
        if isinstance(outcome, Done):
            logger.info("Finalized: %s", outcome.summary)
            return
        raise kopf.TemporaryError(f"cannot delete the webhook yet: {outcome.message}", delay=outcome.seconds)
