"""The running sidecar: listeners, background housekeeping and graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry

from .addresses import NetworkSet
from .admin import admin_app
from .deadletter import DeadLetterSink
from .dedup import Deduplicator
from .gateway import Gateway
from .limits import Limits
from .metrics import SidecarMetrics, new_registry
from .pathcheck import PathCheck
from .poison import DeliveryAttempts
from .responses import UNAVAILABLE_ANSWER
from .server import WebhookConnection
from .settings import Settings, split_host_port
from .target import UpstreamTarget
from .tlsreload import ReloadingTLS
from .tokens import TokenStore
from .upstream import UpstreamPool

log = logging.getLogger(__name__)


def listen_socket(address: str) -> socket.socket:
    """A bound listening socket for ``HOST:PORT``; an unspecified IPv6 host is dual-stack.

    asyncio would set IPV6_V6ONLY on every IPv6 socket; ``[::]:8443`` should also accept IPv4
    (those peers then appear as ``::ffff:a.b.c.d`` and are normalised to IPv4).
    """
    host, port = split_host_port(address)
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Sidecar:
    """One sidecar instance: ``await start()``, then ``await drain()`` (or ``run()`` for both)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = SidecarMetrics()
        self.registry: CollectorRegistry = new_registry(self.metrics)
        self.connections: set[WebhookConnection] = set()
        self.tokens: TokenStore | None = None
        self.tls: ReloadingTLS | None = None
        self.gateway: Gateway | None = None
        self.upstream = UpstreamPool(
            UpstreamTarget.from_url(settings.upstream, settings.upstream_unix_socket),
            settings.upstream_timeout,
        )
        self._server: asyncio.Server | None = None
        self._admin: web.AppRunner | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._upstream_probe: tuple[float, bool] = (0.0, False)
        self.webhook_address: tuple[str, int] = ("", 0)
        self.admin_address: tuple[str, int] = ("", 0)

    async def start(self) -> None:
        s = self.settings
        # Reading files blocks; at startup too, keep it off the loop (tests run under blockbuster).
        self.tokens = await asyncio.to_thread(TokenStore, s.secret_token_file, s.previous_secret_token_file)
        if s.tls_cert is not None and s.tls_key is not None:
            self.tls = await asyncio.to_thread(ReloadingTLS, s.tls_cert, s.tls_key)
        self.gateway = Gateway(
            path=s.path,
            allow=NetworkSet(s.allow_network),
            trusted=NetworkSet(s.trusted_proxy),
            tokens=self.tokens,
            max_body_bytes=s.max_body_bytes,
            max_in_flight=s.max_in_flight,
            dedup=Deduplicator(s.dedup_window),
            upstream=self.upstream,
            metrics=self.metrics,
            attempts=DeliveryAttempts(s.max_delivery_attempts),
            dead_letters=DeadLetterSink(s.dead_letter_file),
            path_check=PathCheck(self.upstream.target.describe(), urlsplit(s.upstream).path or "/"),
        )
        self._export_state_gauges()
        gateway, connections, limits = self.gateway, self.connections, Limits.from_settings(s)
        loop = asyncio.get_running_loop()
        sock = await asyncio.to_thread(listen_socket, s.listen)
        self._server = await loop.create_server(
            lambda: WebhookConnection(gateway, connections, limits),
            sock=sock,
            ssl=self.tls.front if self.tls else None,
            # The handshake comes before connection_made (and so before the head deadline).
            ssl_handshake_timeout=s.head_timeout if self.tls else None,
        )
        self.webhook_address = sock.getsockname()[:2]
        admin_sock = await asyncio.to_thread(listen_socket, s.admin_listen)
        self._admin = web.AppRunner(admin_app(self), access_log=None, handle_signals=False)
        await self._admin.setup()
        await web.SockSite(self._admin, admin_sock).start()
        self.admin_address = admin_sock.getsockname()[:2]
        self._housekeeping = loop.create_task(self._housekeep())
        log.info(
            "sidecar listening",
            extra={
                "webhook": f"{self.webhook_address[0]}:{self.webhook_address[1]}",
                "admin": f"{self.admin_address[0]}:{self.admin_address[1]}",
                "upstream": self.upstream.target.describe(),
                "tls": self.tls is not None,
            },
        )

    def _export_state_gauges(self) -> None:
        tokens, metrics = self.tokens, self.metrics
        assert tokens is not None
        metrics.add_gauge(
            "tgbot_sidecar_secret_token_loads",
            "Times the token files were (re)loaded",
            lambda: tokens.reloads,
        )
        metrics.add_gauge(
            "tgbot_sidecar_secret_token_present", "1 when the current token is loaded", lambda: tokens.ready
        )
        metrics.add_gauge(
            "tgbot_sidecar_connections",
            "Open client connections on the webhook port",
            lambda: len(self.connections),
        )
        if self.tls is not None:
            tls = self.tls
            metrics.add_gauge(
                "tgbot_sidecar_tls_reloads", "Certificate reloads since start", lambda: tls.reloads
            )

    async def _housekeep(self) -> None:
        """Once per reload interval: files and the dedup memory (connections keep their own deadlines)."""
        assert self.tokens is not None
        assert self.gateway is not None
        while True:
            await asyncio.sleep(self.settings.reload_interval)
            try:
                await asyncio.to_thread(self.tokens.refresh)
                if self.tls is not None:
                    await asyncio.to_thread(self.tls.refresh)
            except Exception:  # a housekeeping hiccup must not end housekeeping
                log.exception("checking the token and certificate files failed")
            now = time.monotonic()
            self.gateway.dedup.prune(now)
            self.gateway.attempts.prune(now)

    async def readiness_problems(self) -> list[str]:
        problems = []
        if self.tokens is None or not self.tokens.ready:
            problems.append("secret token file missing or empty")
        if self._server is None or not self._server.is_serving():
            problems.append("webhook server not listening")
        if self.gateway is not None and self.gateway.draining:
            problems.append("draining")
        if self.settings.ready_requires_upstream and not await self._upstream_reachable():
            problems.append("upstream not accepting connections")
        if self.gateway is not None and (wrong_path := self.gateway.path_check.problem(time.monotonic())):
            problems.append(wrong_path)
        return problems

    async def _upstream_reachable(self) -> bool:
        checked, reachable = self._upstream_probe
        now = time.monotonic()
        if now - checked > 1.0:  # probes from several kubelets must not hammer the dispatcher
            reachable = await self.upstream.probe()
            self._upstream_probe = (now, reachable)
        return reachable

    async def drain(self, grace: float | None = None) -> bool:
        """Stop accepting, let in-flight forwards finish (bounded), close everything.

        Returns True when nothing was cut off.
        """
        grace = self.settings.drain_timeout if grace is None else grace
        if self.gateway is not None:
            self.gateway.start_draining()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.idle:
                connection.close()
        if self.gateway is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gateway.drained.wait(), grace)
        clean = self.metrics.in_flight == 0
        if not clean:
            log.warning("drain timeout: abandoning %d in-flight updates", self.metrics.in_flight)
        for connection in list(self.connections):
            if connection.busy:
                # We exit without knowing whether the bot handled it: ask Telegram to retry.
                connection.respond(UNAVAILABLE_ANSWER, close=True)
            connection.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        self.upstream.close()
        if self.gateway is not None:
            await asyncio.to_thread(self.gateway.dead_letters.close)
        if self._admin is not None:
            await self._admin.cleanup()
        if self._server is not None:
            await self._server.wait_closed()
        return clean

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then drain."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.start()
        await stop.wait()
        log.info("signal received: draining", extra={"in_flight": self.metrics.in_flight})
        await self.drain()
        log.info("drained; exiting")
