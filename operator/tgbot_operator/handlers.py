"""kopf handlers, and nothing else: they hand each TelegramBot to its worker.

* a daemon per TelegramBot runs its :class:`~tgbot_operator.worker.BotWorker`;
* a change handler pokes the worker when the spec changes (the worker itself notices a new
  ``tgbot.dev/rotate-secret-token`` annotation within a second: kopf leaves annotations with its
  own storage prefix, ``tgbot.dev/``, out of its diffs, so a change handler would never see it);
* a deletion handler (behind our finalizer) runs :func:`~tgbot_operator.deletion.finalize`;
* startup/cleanup handlers configure kopf and open/close the shared HTTP session.

Handlers return None: kopf writes nothing into status; workers patch status themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import kopf

from . import names
from .deletion import Done, finalize
from .deps import Deps, EventSink
from .kube import Kube, connection_fields
from .record import EventType
from .redaction import SecretRegistry
from .worker import BotWorker

WORKER_KEY = "tgbot_worker"


def kopf_events(body: kopf.Body, secrets: SecretRegistry) -> EventSink:
    def post(type_: EventType, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=secrets.redact(message)[:1000])

    return post


def configure_kopf(settings: kopf.OperatorSettings, deps: Deps) -> None:
    """Our persistence names and sensible timeouts (all kopf knobs live here)."""
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.PERSISTENCE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.PERSISTENCE_PREFIX, key=names.DIFFBASE_KEY
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.background.cancellation_polling = 1


def register(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    """Register every handler into ``registry``, bound to ``deps``."""
    resource = (names.GROUP, names.VERSION, names.PLURAL)

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, deps)
        if deps.http is None:
            deps.http = aiohttp.ClientSession(trust_env=True)

    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as our own client (--kubeconfig, in-cluster, or $KUBECONFIG).
        if isinstance(deps.kube, Kube):
            return kopf.ConnectionInfo(**connection_fields(deps.kube.configuration))
        return kopf.login_via_client(**kwargs)

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(**_: Any) -> None:
        if deps.http is not None:
            await deps.http.close()
            deps.http = None

    @kopf.daemon(
        *resource, registry=registry, id="worker", cancellation_timeout=30.0, cancellation_backoff=5.0
    )
    async def bot_daemon(
        stopped: kopf.DaemonStopped,
        body: kopf.Body,
        memo: Any,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **_: Any,
    ) -> None:
        worker = BotWorker(deps, body=body, logger=logger, events=kopf_events(body, deps.secrets))
        memo[WORKER_KEY] = worker

        async def relay_stop() -> None:
            await stopped.wait()
            worker.stop()

        relay = asyncio.create_task(relay_stop())
        try:
            await worker.run()
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            if memo.get(WORKER_KEY) is worker:
                del memo[WORKER_KEY]

    def poke(memo: Any) -> None:
        worker = memo.get(WORKER_KEY)
        if isinstance(worker, BotWorker):
            worker.poke()

    @kopf.on.update(*resource, registry=registry, id="spec-changed", field="spec")
    async def spec_changed(memo: Any, **_: Any) -> None:
        poke(memo)

    @kopf.on.delete(*resource, registry=registry, id="finalize")
    async def delete(
        body: kopf.Body, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any], retry: int, **_: Any
    ) -> None:
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
