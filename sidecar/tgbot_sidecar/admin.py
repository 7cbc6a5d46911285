"""The admin port: ``/healthz``, ``/readyz`` and ``/metrics``.

It is a separate listener so probes and scrapes never pass the Telegram IP filter and never
share the webhook port. Traffic here is a few requests a minute, so plain aiohttp is fine.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Observed(Protocol):
    """What the admin port reads from the running sidecar (app.py's ``Sidecar``).

    A protocol, not an import of ``Sidecar``: app.py starts this port, so this module sits
    below it and must not import it back.
    """

    registry: CollectorRegistry

    async def readiness_problems(self) -> list[str]: ...


SIDECAR = web.AppKey[Observed]("sidecar")


async def healthz(request: web.Request) -> web.Response:
    # Liveness: the event loop answers. Nothing else, or a missing Secret would cause restarts.
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    problems = await request.app[SIDECAR].readiness_problems()
    if problems:
        return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
    return web.Response(text="ready\n")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SIDECAR].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def admin_app(sidecar: Observed) -> web.Application:
    app = web.Application()
    app[SIDECAR] = sidecar
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
