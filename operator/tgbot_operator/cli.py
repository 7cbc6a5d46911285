"""``tgbot-operator``: flags -> settings -> kopf."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

import kopf
import kubernetes
from pydantic import ValidationError

from . import handlers
from .kube import Kube, load_api_client
from .metrics import Metrics
from .redaction import SecretRegistry
from .settings import OperatorSettings, parse_listen
from .worker import Deps

logger = logging.getLogger("tgbot_operator")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tgbot-operator",
        description="Runs Telegram bots' webhooks on Kubernetes (TelegramBot resources, tgbot.dev/v1alpha1). "
        "Every flag can also be set as TGBOT_OPERATOR_<FLAG> (e.g. TGBOT_OPERATOR_CHECK_INTERVAL=300s).",
        argument_default=argparse.SUPPRESS,
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", dest="namespaces", action="append", metavar="NS", help="watch NS (repeatable)"
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        dest="all_namespaces",
        action="store_true",
        help="watch all namespaces (default)",
    )
    p.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig file (default: in-cluster, else $KUBECONFIG)"
    )
    p.add_argument("--liveness-listen", metavar="HOST:PORT", help="serve kopf's liveness probe at /healthz")
    p.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve Prometheus metrics at /metrics")
    p.add_argument("--json-logs", action="store_true", help="log JSON lines")
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info (default), warning, error")
    p.add_argument(
        "--default-bot-api-server", metavar="URL", help="when spec.botApiServer is absent (always allowed)"
    )
    p.add_argument(
        "--allow-bot-api-server",
        dest="allow_bot_api_server",
        action="append",
        metavar="URL",
        help="a Bot API server TelegramBots may name in spec.botApiServer (repeatable; exact URL, "
        "http:// only when named so); default: only the default server",
    )
    p.add_argument("--check-interval", metavar="DURATION", help="getWebhookInfo drift check (default 300s)")
    p.add_argument("--token-check-interval", metavar="DURATION", help="re-read token Secrets (default 30s)")
    p.add_argument(
        "--rotation-propagation-grace", metavar="DURATION", help="new token -> setWebhook wait (default 90s)"
    )
    p.add_argument(
        "--rotation-retire-grace", metavar="DURATION", help="setWebhook -> old token dropped (120s)"
    )
    p.add_argument(
        "--deletion-timeout", metavar="DURATION", help="give up deleteWebhook after (default 300s)"
    )
    p.add_argument(
        "--unauthorized-retry-interval", metavar="DURATION", help="retry a rejected token after (600s)"
    )
    p.add_argument("--telegram-timeout", metavar="DURATION", help="timeout of one Bot API call (default 30s)")
    p.add_argument(
        "--self-signed-validity", metavar="DURATION", help="validity of self-signed certificates (8760h)"
    )
    p.add_argument(
        "--self-signed-renew-before",
        metavar="DURATION",
        help="renew a self-signed certificate this long before it expires (720h)",
    )
    p.add_argument("--peering", metavar="NAME", help="kopf peering for HA (default: standalone)")
    p.add_argument(
        "--peering-priority",
        metavar="N",
        type=int,
        help="with --peering: the highest priority runs, others pause (default: random per process)",
    )
    return p


def settings_from_args(argv: Sequence[str] | None) -> OperatorSettings:
    args = vars(build_parser().parse_args(argv))
    if args.pop("all_namespaces", False):
        args["namespaces"] = []  # the flag wins over TGBOT_OPERATOR_NAMESPACE(S)
    return OperatorSettings(**args)


def liveness_url(listen: str | None) -> str | None:
    if listen is None:
        return None
    host, port = parse_listen(listen)
    return f"http://{host}:{port}/healthz"


def run(settings: OperatorSettings) -> None:
    from .logs import setup_logging

    secrets = SecretRegistry()
    setup_logging(settings.log_level, settings.json_logs, secrets)
    metrics = Metrics()
    if settings.metrics_listen:
        host, port = parse_listen(settings.metrics_listen)
        metrics.serve(host, port)
    deps = Deps(
        settings=settings, kube=Kube(load_api_client(settings.kubeconfig)), metrics=metrics, secrets=secrets
    )
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
    try:
        settings = settings_from_args(argv)
    except ValidationError as exc:
        problems = "\n".join(
            f"  --{str(error['loc'][0]).replace('_', '-')}: {error['msg']}"
            if error["loc"]
            else f"  {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        print(f"tgbot-operator: invalid settings:\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        run(settings)
    except (kubernetes.config.ConfigException, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise
        print(f"tgbot-operator: cannot load the Kubernetes configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
