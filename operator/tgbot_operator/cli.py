"""``tgbot-operator``: flags -> settings -> kopf."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import functools
import logging
import sys
from collections.abc import Sequence
from typing import Any

import kopf

import tgbot_kit
from tgbot_kit import ListenAddress

from . import handlers
from .deps import Deps
from .gc_freeze import GcFreezer
from .kube import Kube, KubeError
from .login import LoginError, connection_info
from .metrics import Metrics
from .redaction import SecretRegistry
from .settings import OperatorSettings

logger = logging.getLogger("tgbot_operator")

PROG = "tgbot-operator"
#: -n/-A as kubectl has them; the namespaces field's aliases only spell environment variables.
CLI: dict[str, Any] = {
    "epilog": "Every flag can also be set as TGBOT_OPERATOR_<FLAG> "
    "(e.g. TGBOT_OPERATOR_CHECK_INTERVAL=300s).",
    "exclusive": [("namespaces", "all_namespaces")],
    "flags": {"namespaces": ["--namespace", "-n"], "all_namespaces": ["--all-namespaces", "-A"]},
}


def settings_from_args(argv: Sequence[str] | None) -> OperatorSettings:
    """The settings, or ValidationError; ``--help`` and malformed command lines exit."""
    return tgbot_kit.parse(OperatorSettings, argv, prog=PROG, **CLI)


#: The read buffer of each TLS connection. asyncio allocates (and zero-fills) 256 KiB per
#: connection (``asyncio.sslproto.SSLProtocol.max_size``); right after 1,000 bots were applied the
#: operator holds ~130 connections (API server for kopf and for us, the Bot API), and that was
#: 22 MB of its 153 MB (benchmarks.operator_scale, docs/benchmarks.md). Kubernetes and Bot API
#: answers are a few KB; a 1 MB one is read in 32 reads instead of 4.
TLS_READ_BUFFER = 32 * 1024


def small_tls_read_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Process-wide, so at the edge: every TLS connection the process opens afterwards (kopf's,
    ours, the Bot API's) reads ``size`` bytes at a time."""
    asyncio.sslproto.SSLProtocol.max_size = min(size, asyncio.sslproto.SSLProtocol.max_size)


def liveness_url(listen: ListenAddress | None) -> str | None:
    if listen is None:
        return None
    return f"http://{listen.host}:{listen.port}/healthz"


def run(settings: OperatorSettings) -> None:
    from .logs import setup_logging

    metrics = Metrics()  # (nothing is served before metrics.serve)
    # Credentials first: a LoginError (exit 2) before anything is started or configured.
    kube = Kube(
        functools.partial(connection_info, settings.kubeconfig),
        secret_reads=settings.secret_reads,
        on_secret_read=metrics.secret_read,
    )
    metrics.kube_in_flight.set_function(lambda: kube.in_flight)
    secrets = SecretRegistry()
    setup_logging(settings.log_level, settings.json_logs, secrets)
    small_tls_read_buffers()
    freezer = GcFreezer()
    if freezer.install():  # process-wide, like the TLS buffers (gc_freeze says why)
        metrics.watch_gc(freezer)
    if settings.metrics_listen:
        metrics.serve(settings.metrics_listen.host, settings.metrics_listen.port)
    deps = Deps(settings=settings, kube=kube, metrics=metrics, secrets=secrets)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, deps)
    scope: dict[str, Any] = (
        {"clusterwide": True} if settings.clusterwide else {"namespaces": list(settings.namespaces)}
    )
    logger.info(
        "Starting tgbot-operator (%s; check every %gs, token check every %gs)",
        "all namespaces" if settings.clusterwide else "namespaces " + ", ".join(settings.namespaces),
        settings.check_interval,
        settings.token_check_interval,
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.peering_priority,
            liveness_endpoint=liveness_url(settings.liveness_listen),
            **scope,
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    settings = tgbot_kit.parse_or_exit(OperatorSettings, argv, prog=PROG, **CLI)
    try:
        run(settings)
    except (LoginError, KubeError) as exc:
        print(f"{PROG}: cannot load the Kubernetes configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
