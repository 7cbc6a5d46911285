"""What every worker (and the finalizer) shares: settings, clients, and the test seams."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Protocol

import aiohttp

from .botapi import BotApiClient, EnvProxies
from .kube import KubeApi
from .metrics import Metrics
from .observation import Problem, Timing
from .ratelimit import RateLimiter
from .record import EventType
from .redaction import SecretRegistry
from .servers import AllowedServers, normalise, shown_server
from .settings import OperatorSettings
from .telegram import ServerNotAllowed
from .webhook_secret import generate_identity_key, generate_secret_token, generate_self_signed


class EventSink(Protocol):
    def __call__(self, type_: EventType, reason: str, message: str) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    """What workers share; the test seams are the defaults."""

    settings: OperatorSettings
    kube: KubeApi
    metrics: Metrics
    http: aiohttp.ClientSession | None = None  # set on operator startup
    #: HTTP(S)_PROXY / NO_PROXY for the Bot API, read on operator startup (None: no proxy).
    proxies: EnvProxies | None = None
    secrets: SecretRegistry = field(default_factory=SecretRegistry)  # masked in logs and Events
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.SystemRandom)
    make_secret_token: Callable[[], str] = generate_secret_token
    make_certificate: Callable[[str, datetime, timedelta], tuple[bytes, bytes]] = generate_self_signed
    make_identity_key: Callable[[], bytes] = generate_identity_key
    #: ``--bot-api-rate-limit``: one limiter per Bot API server, shared by all its bots.
    rate_limiters: dict[str, RateLimiter] = field(default_factory=dict)

    @property
    def timing(self) -> Timing:
        s = self.settings
        return Timing(
            check_interval=timedelta(seconds=s.check_interval),
            token_check_interval=timedelta(seconds=s.token_check_interval),
            propagation_grace=timedelta(seconds=s.rotation_propagation_grace),
            retire_grace=timedelta(seconds=s.rotation_retire_grace),
            unauthorized_retry=timedelta(seconds=s.unauthorized_retry_interval),
            repair_401_cooldown=timedelta(seconds=max(60.0, 10 * s.check_interval)),
            certificate_renew_before=timedelta(seconds=s.self_signed_renew_before),
        )

    @cached_property
    def allowed_servers(self) -> AllowedServers:
        return self.settings.allowed_servers()

    def server_problem(self, server: str) -> Problem | None:
        """Why the operator must not talk to ``server`` (None: it may)."""
        if self.allowed_servers.allows(server):
            return None
        return Problem(
            "BotApiServerNotAllowed",
            f"spec.botApiServer {shown_server(server)} is not on the operator's allow-list "
            "(--allow-bot-api-server): nothing is sent to it, the bot token is not even read",
        )

    def bot_api(self, server: str, token: str) -> BotApiClient:
        # The last line of defence: every Bot API call goes through here.
        if not self.allowed_servers.allows(server):
            raise ServerNotAllowed("connect", "the Bot API server is not on the allow-list")
        if self.http is None:
            raise RuntimeError("the HTTP session is not open (operator not started)")
        return BotApiClient(
            self.http,
            server,
            token,
            timeout=self.settings.telegram_timeout,
            observer=self.metrics.observe_call,
            limiter=self.rate_limiter(server),
            on_wait=self.metrics.rate_limit_wait.inc,
            proxy=self.proxies.for_url(server) if self.proxies is not None else None,
        )

    def rate_limiter(self, server: str) -> RateLimiter | None:
        """The limiter of ``server`` (None without ``--bot-api-rate-limit``); the same for every
        spelling of one server (normalised as the allow-list compares them)."""
        rate = self.settings.bot_api_rate_limit
        if rate is None:
            return None
        key = normalise(server)
        limiter = self.rate_limiters.get(key)
        if limiter is None:
            limiter = self.rate_limiters[key] = RateLimiter(rate)
        return limiter
