"""One worker per TelegramBot: observe, decide (reconcile.py), act, write status, sleep, repeat.

The worker is the only thing that talks to Telegram about its bot while the bot exists, so
registrations, checks and rotations never race each other. It runs as a kopf daemon
(handlers.py); everything it needs comes in through :class:`Deps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Protocol

import aiohttp
from pydantic import ValidationError

from . import delivery, names, profile
from .botapi import (
    BadRequest,
    BotApiClient,
    BotApiError,
    BotUser,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    ServerNotAllowed,
    Unauthorized,
    WebhookInfo,
)
from .kube import Conflict, KubeApi, KubeError, SecretView, secret_body
from .metrics import Metrics
from .model import TelegramBotSpec, plain
from .reconcile import (
    Action,
    AddIdentityKey,
    CreateWebhookSecret,
    DropCertificate,
    DropPreviousCertificate,
    Failure,
    GetMe,
    GetWebhookInfo,
    Memory,
    Observation,
    Problem,
    RenewCertificate,
    RetirePreviousToken,
    SetWebhook,
    StageCertificate,
    StartRotation,
    SwapCertificate,
    Timing,
    Wait,
    adopt_status_identity,
    decide,
)
from .redaction import SecretRegistry, redact
from .registration import Registration
from .servers import AllowedServers
from .settings import OperatorSettings
from .status import build_status, build_status_registration, merge_patch
from .webhook_secret import (
    IDENTITY_MAC_PREFIX,
    RotationPhase,
    WebhookSecretState,
    generate_identity_key,
    generate_secret_token,
    generate_self_signed,
    inspect_certificate,
    parse_time,
    read_state,
    render_state,
)

EventType = Literal["Normal", "Warning"]
#: A certificate written from scratch ends any renewal in progress.
NO_RENEWAL: dict[str, Any] = {
    "next_tls_crt": None,
    "next_tls_key": None,
    "previous_tls_crt": None,
    "previous_certificate_until": None,
}
MAX_STEPS_PER_PASS = 16
MAX_BACKOFF = timedelta(minutes=5)
LIVE_BODY_POLL = 1.0  # seconds between looks at kopf's live body for a rotation request


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
    secrets: SecretRegistry = field(default_factory=SecretRegistry)  # masked in logs and Events
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.SystemRandom)
    make_secret_token: Callable[[], str] = generate_secret_token
    make_certificate: Callable[[str, datetime, timedelta], tuple[bytes, bytes]] = generate_self_signed
    make_identity_key: Callable[[], bytes] = generate_identity_key

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
        )


def spec_problem(exc: ValidationError) -> Problem:
    details = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
    )
    return Problem("InvalidSpec", details[:500])


def shown_server(server: str) -> str:
    """The server URL as status and Events may show it: never user info (a password) in it."""
    scheme, sep, rest = server.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f'"{(scheme + sep + authority + slash + path)[:200]}"'


#: A bot token as @BotFather issues it: the bot's id, a colon, then the secret half in Telegram's
#: alphabet (35 characters today; a little slack either way for self-hosted servers and emulators).
BOT_TOKEN_RE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,64}")

#: Only these Secrets are read as token Secrets: a service-account token, a registry password or a
#: TLS key must never become a "bot token" that is sent to a Bot API server.
TOKEN_SECRET_TYPES = frozenset({"Opaque"})

#: Token problems that the user should hear about as a Warning Event (not just in status).
WARNED_PROBLEMS = frozenset({"BotApiServerNotAllowed", "SecretTypeNotAllowed", "TokenMalformed"})


def token_from_secret(secret: SecretView | None, name: str, key: str, namespace: str) -> str | Problem:
    if secret is None:
        return Problem("SecretNotFound", f'Secret "{name}" not found in namespace "{namespace}"')
    if secret.type not in TOKEN_SECRET_TYPES:
        return Problem(
            "SecretTypeNotAllowed",
            f'Secret "{name}" is of type "{secret.type[:100]}": only Opaque Secrets are read as '
            "token Secrets (kubectl create secret generic)",
        )
    if key not in secret.data:
        return Problem("SecretKeyMissing", f'Secret "{name}" has no key "{key}"')
    token = secret.data[key].decode("utf-8", "replace").strip()
    if not token:
        return Problem("SecretKeyEmpty", f'Secret "{name}" key "{key}" is empty')
    if not BOT_TOKEN_RE.fullmatch(token):
        # The value is never shown, not even its length: it may be some other secret.
        return Problem(
            "TokenMalformed",
            f'Secret "{name}" key "{key}" does not hold a bot token as @BotFather issues them '
            "(digits, a colon, then 30-64 of A-Z a-z 0-9 _ -): nothing was sent",
        )
    return token


def certificate_from_secret(secret: SecretView | None, name: str) -> bytes | Problem:
    if secret is None:
        return Problem("CertificateSecretNotFound", f'certificate Secret "{name}" not found')
    pem = secret.data.get(names.TLS_CERT_KEY)
    if not pem:
        return Problem(
            "CertificateKeyMissing", f'certificate Secret "{name}" has no key "{names.TLS_CERT_KEY}"'
        )
    try:
        inspect_certificate(pem)
    except ValueError:
        return Problem(
            "CertificateInvalid", f'certificate Secret "{name}" key "{names.TLS_CERT_KEY}" is no PEM'
        )
    return pem


def registration_from_status(status: Mapping[str, Any] | None) -> Registration | None:
    raw = (status or {}).get("registration") or {}
    fingerprint = raw.get("fingerprint")
    registered_at = parse_time(raw.get("registeredAt"))
    if not fingerprint or registered_at is None:
        return None
    return Registration(
        fingerprint=str(fingerprint), registered_at=registered_at, url=str(raw.get("url", ""))
    )


def memory_from_status(status: Mapping[str, Any] | None) -> Memory:
    """What a previous worker (or operator process) already established, as its status says.

    The bot's identity comes back with a keyed hash of the token getMe accepted (the key is in the
    operator-owned Secret), so a restart needs no getMe while the token is the same: it costs one
    getWebhookInfo per bot.
    """
    memory = Memory(registration=registration_from_status(status))
    bot = (status or {}).get("bot") or {}
    identity = str(bot.get("identityHash") or "")
    # Only the keyed hash: the unkeyed sha256 of older versions is not trusted (nor kept).
    if isinstance(bot.get("id"), int) and identity.startswith(IDENTITY_MAC_PREFIX):
        memory.me = BotUser(id=bot["id"], username=bot.get("username") or None)
        memory.status_identity = identity
    memory.delivering = delivery.condition_from_status((status or {}).get("conditions"))
    memory.profile = profile.memory_from_status((status or {}).get("profile"))
    return memory


class BotWorker:
    """Reconciles one TelegramBot until stopped. ``body`` is kopf's live view of the object."""

    def __init__(
        self,
        deps: Deps,
        *,
        body: Mapping[str, Any],
        logger: logging.Logger | logging.LoggerAdapter[Any],
        events: EventSink,
    ) -> None:
        meta = body.get("metadata") or {}
        self.deps = deps
        self.body = body
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.secret_name = names.webhook_secret_name(self.name)
        self.logger = logger
        self.events = events
        self.memory = memory_from_status(body.get("status"))
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._written_status: dict[str, Any] | None = plain(body.get("status")) or {}
        self._last_warning: str | None = None
        self._last_problem: str | None = None
        self._ready = False
        self._secret_view: SecretView | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed: run a pass now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def wait_done(self) -> None:
        await self._done.wait()

    async def run(self) -> None:
        self.deps.metrics.bots.inc()
        try:
            while not self.stopped:
                async with self.lock:
                    if self.stopped:
                        break
                    until = await self.run_pass()
                await self._sleep(until)
        finally:
            self.deps.secrets.drop(self.uid)
            self.deps.metrics.bots.dec()
            if self._ready:
                self.deps.metrics.ready.dec()
            self._done.set()

    def _rotate_request(self) -> str | None:
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(names.ROTATE_ANNOTATION)
        return str(value) if value else None

    async def _sleep(self, until: datetime | None) -> None:
        """Until ``until``, the next token check, a poke, or a new rotation request in the live body."""
        timeout = self.deps.settings.token_check_interval
        if until is not None:
            timeout = min(timeout, max(0.0, (until - self.deps.clock()).total_seconds()))
        self._wake.clear()
        request = self._rotate_request()
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, LIVE_BODY_POLL))
                return
            if self._rotate_request() != request:
                return

    # --- one pass ----------------------------------------------------------------------------

    async def run_pass(self) -> datetime | None:
        """Observe and act until there is nothing to do; write status; say when to look again."""
        obs: Observation | None = None
        until: datetime | None = None
        try:
            for _ in range(MAX_STEPS_PER_PASS):
                if self.stopped:
                    break
                obs = await self.observe()
                self._warn_problem(obs)
                adopt_status_identity(obs, self.memory)
                if self.memory.failure is not None and self.memory.failure.action == "Observe":
                    self.memory.failure = None
                    self.memory.consecutive_failures = 0
                action = decide(obs, self.memory, self.deps.timing)
                if isinstance(action, Wait):
                    until = action.until
                    break
                await self.perform(action, obs)
            else:
                until = self.deps.clock() + timedelta(seconds=1)
        except KubeError as exc:
            self._fail("Observe", "KubernetesError", str(exc), token_hash=None)
            until = self.memory.not_before
        except Exception:
            self.logger.exception("Unexpected error while reconciling (will retry)")
            self._fail("Observe", "InternalError", "unexpected error: see the operator log", token_hash=None)
            until = self.memory.not_before
        if obs is not None and not self.stopped:
            profile_until = await self._profile_pass(obs)
            if profile_until is not None:
                until = profile_until if until is None else min(until, profile_until)
            await self.write_status(obs)
        return until

    async def _profile_pass(self, obs: Observation) -> datetime | None:
        """spec.profile, beside the webhook: its failures (a 429 on setMyName...) stay its own."""
        spec, token, mem = obs.spec, obs.token, self.memory
        if not isinstance(spec, TelegramBotSpec) or not isinstance(token, str):
            return None
        if mem.me is None or mem.me_token_hash != obs.token_hash:
            return None  # getMe has not accepted this token (yet)
        wanted = profile.desired(spec.profile)
        if not wanted and not mem.profile.applied:
            return None  # nothing declared, nothing to reset: no profile call at all
        try:
            api = self.deps.bot_api(obs.server, token)
            outcome = await profile.reconcile(
                wanted,
                mem.profile,
                call=api.call,
                clock=self.deps.clock,
                interval=self.deps.timing.check_interval,
                generation=obs.generation,
                redact=lambda text: redact(text, token),
            )
        except Exception:
            self.logger.exception("Unexpected error while applying spec.profile (will retry)")
            return self.deps.clock() + MAX_BACKOFF
        for type_, reason, message in outcome.events:
            self.events(type_, reason, message)
            (self.logger.warning if type_ == "Warning" else self.logger.info)("%s (%s)", message, reason)
        return outcome.until

    async def observe(self) -> Observation:
        body = self.body
        now = self.deps.clock()
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        spec: TelegramBotSpec | Problem
        try:
            spec = TelegramBotSpec.from_body(body.get("spec") or {})
        except ValidationError as exc:
            spec = spec_problem(exc)
        server = self.deps.settings.default_bot_api_server
        token: str | Problem = Problem("InvalidSpec", "the spec is invalid")
        custom_certificate: bytes | Problem | None = None
        if isinstance(spec, TelegramBotSpec):
            server = spec.bot_api_server or server
            ref = spec.token_secret_ref
            problem = self.deps.server_problem(server)
            if problem is not None:
                token = problem
            else:
                token_secret = await self.deps.kube.read_secret(self.namespace, ref.name)
                token = token_from_secret(token_secret, ref.name, ref.key, self.namespace)
            certificate = spec.webhook.certificate
            if certificate.mode == "Secret" and certificate.secret_ref is not None:
                cert_secret = await self.deps.kube.read_secret(self.namespace, certificate.secret_ref.name)
                custom_certificate = certificate_from_secret(cert_secret, certificate.secret_ref.name)
        webhook_secret: WebhookSecretState | Problem | None = None
        self._secret_view = await self.deps.kube.read_secret(self.namespace, self.secret_name)
        if self._secret_view is not None:
            if self._secret_view.controlled_by(self.uid):
                webhook_secret = read_state(
                    self._secret_view.data, self._secret_view.annotations, self._secret_view.resource_version
                )
            else:
                webhook_secret = Problem(
                    "SecretConflict",
                    f'Secret "{self.secret_name}" exists and is not controlled by this TelegramBot; '
                    "delete or rename it",
                )
        self.deps.secrets.set(
            self.uid,
            token if isinstance(token, str) else None,
            *(
                (webhook_secret.secret_token, webhook_secret.previous_secret_token)
                if isinstance(webhook_secret, WebhookSecretState)
                else ()
            ),
        )
        return Observation(
            now=now,
            generation=meta.get("generation"),
            spec=spec,
            server=server,
            token=token,
            webhook_secret=webhook_secret,
            custom_certificate=custom_certificate,
            rotate_request=annotations.get(names.ROTATE_ANNOTATION) or None,
        )

    def _warn_problem(self, obs: Observation) -> None:
        """A Warning Event (once per distinct message) for token problems a user must fix."""
        problem = obs.token
        if not isinstance(problem, Problem) or problem.reason not in WARNED_PROBLEMS:
            self._last_problem = None
            return
        if problem.message != self._last_problem:
            self._last_problem = problem.message
            self.events("Warning", problem.reason, problem.message)
            self.logger.warning("%s (%s)", problem.message, problem.reason)

    # --- actions -----------------------------------------------------------------------------

    async def perform(self, action: Action, obs: Observation) -> None:
        kind = type(action).__name__
        token = obs.token if isinstance(obs.token, str) else ""
        self.logger.debug("Action %s", redact(repr(action), token))
        try:
            await self._perform(action, obs)
        except Conflict as exc:
            # Someone wrote the Secret between our read and our write: just look again.
            self.logger.info("Retrying after a write conflict: %s", exc)
            self.deps.metrics.reconciles.labels(action=kind, outcome="Conflict").inc()
            return
        except KubeError as exc:
            self._fail(kind, "KubernetesError", str(exc), token_hash=obs.token_hash)
        except (Unauthorized, NotFound) as exc:
            self._fail(kind, type(exc).__name__, redact(exc.message, token), token_hash=obs.token_hash)
        except BotApiError as exc:
            self._fail(kind, type(exc).__name__, redact(str(exc), token), token_hash=obs.token_hash, exc=exc)
        else:
            self.deps.metrics.reconciles.labels(action=kind, outcome="ok").inc()
            if self.memory.failure is not None and self.memory.failure.action == kind:
                self.memory.failure = None
                self.memory.consecutive_failures = 0
            return
        self.deps.metrics.reconciles.labels(action=kind, outcome="error").inc()

    async def _perform(self, action: Action, obs: Observation) -> None:
        mem = self.memory
        now = obs.now
        assert isinstance(obs.token, str)
        assert isinstance(obs.spec, TelegramBotSpec)
        api = self.deps.bot_api(obs.server, obs.token)
        match action:
            case GetMe():
                me = await api.get_me()
                changed = mem.me_token_hash is not None and mem.me_token_hash != obs.token_hash
                mem.me, mem.me_token_hash, mem.auth_failure = me, obs.token_hash, None
                if changed:
                    self.events(
                        "Normal", "TokenChanged", f"The bot token changed; it belongs to @{me.username}"
                    )
                self.logger.info("Bot token is valid: @%s (id %s)", me.username, me.id)
            case GetWebhookInfo():
                live = await api.get_webhook_info()
                same_bot = mem.live_token_hash == obs.token_hash
                mem.live, mem.live_at, mem.live_token_hash = live, now, obs.token_hash
                self._judge_delivery(live, now, obs.token, same_bot=same_bot)
                jitter = self.deps.rng.uniform(0.9, 1.1)
                mem.next_live_check = now + timedelta(seconds=self.deps.settings.check_interval * jitter)
            case SetWebhook():
                await api.set_webhook(action.params)
                mem.registration = Registration(action.fingerprint, now, action.params.url)
                mem.next_live_check = None  # look at the result
                await self._persist_registration()
                if "401" in action.reason:
                    mem.last_401_repair_at = now
                if action.completes_rotation:
                    await self._complete_rotation(obs, now)
                self._registered_event(action)
            case CreateWebhookSecret():
                await self._create_secret(obs, now, action.reason)
            case AddIdentityKey():
                await self._write_secret(
                    replace(self._state(obs), identity_key=self.deps.make_identity_key())
                )
            case RenewCertificate():
                await self._renew_certificate(obs, now, action.reason)
            case StageCertificate():
                await self._stage_certificate(obs, now, action.reason)
            case SwapCertificate():
                grace = self.deps.settings.rotation_propagation_grace
                state = self._state(obs)
                await self._write_secret(
                    replace(
                        state,
                        tls_crt=state.next_tls_crt,
                        tls_key=state.next_tls_key,
                        next_tls_crt=None,
                        next_tls_key=None,
                        previous_tls_crt=state.tls_crt,
                        previous_certificate_until=now + timedelta(seconds=grace),
                    )
                )
                self.events(
                    "Normal",
                    "CertificateRenewed",
                    f"The renewed certificate is in tls.crt now; the previous one stays trusted "
                    f"for {grace:g}s, while mounted Secrets update",
                )
            case DropPreviousCertificate():
                state = self._state(obs)
                await self._write_secret(
                    replace(state, previous_tls_crt=None, previous_certificate_until=None)
                )
                self.events(
                    "Normal", "PreviousCertificateRetired", "Telegram trusts the renewed certificate alone"
                )
            case DropCertificate():
                state = self._state(obs)
                await self._write_secret(replace(state, tls_crt=None, tls_key=None, **NO_RENEWAL))
                self.events(
                    "Normal",
                    "CertificateRemoved",
                    "Removed the self-signed certificate (mode is not SelfSigned)",
                )
            case StartRotation():
                state = self._state(obs)
                new_state = replace(
                    state,
                    secret_token=self.deps.make_secret_token(),
                    previous_secret_token=state.secret_token,
                    phase=RotationPhase.PROPAGATING,
                    phase_since=now,
                    rotate_handled=action.request if action.request is not None else state.rotate_handled,
                )
                await self._write_secret(new_state)
                grace = self.deps.settings.rotation_propagation_grace
                self.events(
                    "Normal",
                    "SecretTokenRotationStarted",
                    f"New secret token written ({action.trigger}); it is registered after {grace:g}s, "
                    "once mounted Secrets have been updated",
                )
            case RetirePreviousToken():
                state = self._state(obs)
                await self._write_secret(
                    replace(state, previous_secret_token=None, phase=RotationPhase.IDLE, phase_since=None)
                )
                self.events("Normal", "PreviousSecretTokenRetired", "The previous secret token was removed")
            case Wait():
                pass

    def _judge_delivery(self, live: WebhookInfo, now: datetime, token: str, *, same_bot: bool) -> None:
        mem = self.memory
        mem.delivery = delivery.track(mem.delivery if same_bot else None, live, now)
        verdict = delivery.assess(
            mem.delivery, live, check_interval=self.deps.timing.check_interval, secrets=(token,)
        )
        before = mem.delivering.status if mem.delivering is not None else None
        mem.delivering = verdict
        event = delivery.transition_event(before, verdict)
        if event is not None:
            type_, reason, message = event
            self.events(type_, reason, message)
            log = self.logger.warning if type_ == "Warning" else self.logger.info
            log("%s (%s)", message, reason)

    def _registered_event(self, action: SetWebhook) -> None:
        if action.kind == "drift":
            self.events("Warning", "WebhookDriftRepaired", f"Re-registered the webhook: {action.reason}")
        elif action.kind == "rotation":
            self.events("Normal", "SecretTokenRotated", "Registered the webhook with the new secret token")
        else:
            self.events(
                "Normal", "WebhookRegistered", f"Registered webhook {action.params.url}: {action.reason}"
            )
        self.logger.info("setWebhook %s (%s: %s)", action.params.url, action.kind, action.reason)

    def _state(self, obs: Observation) -> WebhookSecretState:
        if not isinstance(obs.webhook_secret, WebhookSecretState):
            raise KubeError(f'Secret "{self.secret_name}" vanished')
        return obs.webhook_secret

    async def _complete_rotation(self, obs: Observation, now: datetime) -> None:
        state = self._state(obs)
        await self._write_secret(
            replace(state, phase=RotationPhase.RETIRING, phase_since=now, rotated_at=now)
        )

    async def _create_secret(self, obs: Observation, now: datetime, reason: str) -> None:
        assert isinstance(obs.spec, TelegramBotSpec)
        existing = obs.webhook_secret if isinstance(obs.webhook_secret, WebhookSecretState) else None
        tls_crt, tls_key = (existing.tls_crt, existing.tls_key) if existing else (None, None)
        if obs.spec.webhook.certificate.mode == "SelfSigned" and not tls_crt:
            tls_crt, tls_key = await self._new_certificate(obs.spec.webhook.host, now)
        state = WebhookSecretState(
            secret_token=self.deps.make_secret_token(),
            previous_secret_token=None,
            tls_crt=tls_crt,
            tls_key=tls_key,
            phase=RotationPhase.IDLE,
            phase_since=None,
            rotated_at=now,
            rotate_handled=obs.rotate_request,
            identity_key=(existing.identity_key if existing else None) or self.deps.make_identity_key(),
        )
        await self._write_secret(state)
        self.events(
            "Normal", "SecretCreated", f'Wrote a new secret token to Secret "{self.secret_name}" ({reason})'
        )

    async def _new_certificate(self, host: str, now: datetime) -> tuple[bytes, bytes]:
        validity = timedelta(seconds=self.deps.settings.self_signed_validity)
        return await asyncio.to_thread(self.deps.make_certificate, host, now, validity)

    async def _renew_certificate(self, obs: Observation, now: datetime, reason: str) -> None:
        """Replace the certificate at once: the current one is missing or no longer works."""
        assert isinstance(obs.spec, TelegramBotSpec)
        state = self._state(obs)
        host = obs.spec.webhook.host
        tls_crt, tls_key = await self._new_certificate(host, now)
        await self._write_secret(replace(state, tls_crt=tls_crt, tls_key=tls_key, **NO_RENEWAL))
        self.events("Normal", "CertificateIssued", f"Issued a self-signed certificate for {host} ({reason})")

    async def _stage_certificate(self, obs: Observation, now: datetime, reason: str) -> None:
        """Renew beside the working certificate: sidecars serve the old one until the swap."""
        assert isinstance(obs.spec, TelegramBotSpec)
        state = self._state(obs)
        host = obs.spec.webhook.host
        tls_crt, tls_key = await self._new_certificate(host, now)
        await self._write_secret(replace(state, next_tls_crt=tls_crt, next_tls_key=tls_key))
        self.events(
            "Normal",
            "CertificateRenewalStarted",
            f"Issued a new self-signed certificate for {host} ({reason}); Telegram is told to trust it "
            "beside the current one before any sidecar serves it",
        )

    async def _write_secret(self, state: WebhookSecretState) -> None:
        data, annotations = render_state(state)
        base = self._secret_view
        body = secret_body(
            name=self.secret_name,
            namespace=self.namespace,
            bot_name=self.name,
            bot_uid=self.uid,
            data=data,
            annotations=annotations,
            base=base,
        )
        if base is None:
            await self.deps.kube.create_secret(self.namespace, body)
        else:
            await self.deps.kube.replace_secret(self.namespace, body)

    # --- failures ----------------------------------------------------------------------------

    def _fail(
        self,
        action: str,
        kind: str,
        message: str,
        *,
        token_hash: str | None,
        exc: BaseException | None = None,
    ) -> None:
        mem = self.memory
        now = self.deps.clock()
        failure = Failure(action=action, kind=kind, message=message, at=now, token_hash=token_hash)
        if kind in {"Unauthorized", "NotFound"}:
            mem.auth_failure = failure
            mem.me = None
        else:
            mem.failure = failure
            mem.consecutive_failures += 1
            if isinstance(exc, RetryAfter):
                delay = exc.seconds
            else:
                base = 1.0 if isinstance(exc, ServerError | NetworkError) or exc is None else 5.0
                if isinstance(exc, BadRequest):
                    base = 5.0
                delay = min(MAX_BACKOFF.total_seconds(), base * 2 ** (mem.consecutive_failures - 1))
                delay *= self.deps.rng.uniform(0.8, 1.2)
            mem.not_before = now + timedelta(seconds=delay)
        text = f"{action} failed: {message}"
        if text != self._last_warning:
            self._last_warning = text
            reason = "Unauthorized" if kind in {"Unauthorized", "NotFound"} else f"{action}Failed"
            self.events("Warning", reason, text)
        self.logger.warning("%s (%s)", text, kind)

    # --- status ------------------------------------------------------------------------------

    async def _patch_status(self, patch: Mapping[str, Any]) -> bool:
        """Whether the patch was written. Never raises: a failed status write must not end the
        worker, whose memory (what it registered) is the only record until a write succeeds."""
        try:
            await self.deps.kube.patch_bot_status(self.namespace, self.name, patch)
        except KubeError as exc:
            self.logger.warning("Cannot write status: %s", exc)
            return False
        except Exception:
            self.logger.exception("Cannot write status (unexpected error)")
            return False
        return True

    async def _persist_registration(self) -> None:
        """Write ``status.registration`` right after a successful setWebhook, before anything else
        can fail: a restart then finds the fingerprint and does not register again."""
        new = build_status_registration(self.memory)
        existing = self._written_status or {}
        patch = merge_patch({"registration": existing.get("registration")}, new)
        if patch and await self._patch_status(patch):
            self._written_status = {**existing, **new}

    async def write_status(self, obs: Observation) -> None:
        existing = self._written_status or {}
        new = build_status(
            obs, self.memory, secret_name=self.secret_name, existing_conditions=existing.get("conditions")
        )
        patch = merge_patch(existing, new)
        if not patch:
            return
        if not await self._patch_status(patch):
            return  # memory keeps it all; the next pass writes it
        self._written_status = new
        ready = any(c.get("type") == names.READY and c.get("status") == "True" for c in new["conditions"])
        if ready != self._ready:
            self.deps.metrics.ready.inc() if ready else self.deps.metrics.ready.dec()
            self._ready = ready
        if (
            self._last_warning is not None
            and self.memory.failure is None
            and self.memory.auth_failure is None
        ):
            self._last_warning = None
