"""Build ``status`` from an observation and the worker's memory. Pure; never holds a secret."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from . import names, profile_items, profile_plan
from .actions import ActionKind
from .conditions import Condition, merge_conditions, parse_time, rfc3339
from .model import TelegramBotSpec
from .observation import Memory, Observation, Problem
from .reconcile import desired, identity_hash
from .registration import drift
from .telegram import WebhookInfo
from .webhook_secret import WebhookSecretState


def token_condition(obs: Observation, mem: Memory) -> Condition:
    if isinstance(obs.token, Problem):
        return Condition(names.TOKEN_VALID, "False", obs.token.reason, obs.token.message)
    auth = mem.auth_failure
    if auth is not None and auth.token_hash == obs.token_hash:
        where = ""
        if isinstance(obs.spec, TelegramBotSpec):
            ref = obs.spec.token_secret_ref
            where = f' in Secret "{ref.name}" key "{ref.key}"'
        return Condition(
            names.TOKEN_VALID,
            "False",
            "Unauthorized",
            f"Telegram rejected the bot token{where} ({auth.message}); "
            "put a valid token there: the operator retries as soon as the Secret changes",
        )
    if mem.me is not None and mem.me_token_hash == obs.token_hash:
        return Condition(
            names.TOKEN_VALID, "True", "Valid", f"the token belongs to {_mention(mem)} (id {mem.me.id})"
        )
    failure = mem.failure
    if failure is not None and failure.action is ActionKind.GET_ME and failure.token_hash == obs.token_hash:
        # Not known yet, but say why (and Ready carries the reason): a network error, a bad answer...
        return Condition(names.TOKEN_VALID, "Unknown", failure.kind, failure.message)
    return Condition(names.TOKEN_VALID, "Unknown", "Checking", "getMe has not answered yet")


def secret_condition(obs: Observation, secret_name: str) -> Condition:
    secret = obs.webhook_secret
    if isinstance(secret, Problem):
        return Condition(names.SECRET_READY, "False", secret.reason, secret.message)
    if isinstance(obs.custom_certificate, Problem):
        problem = obs.custom_certificate
        return Condition(names.SECRET_READY, "False", problem.reason, problem.message)
    if not isinstance(secret, WebhookSecretState) or not secret.secret_token:
        return Condition(names.SECRET_READY, "False", "Pending", f'Secret "{secret_name}" is not created yet')
    spec = obs.spec
    if (
        isinstance(spec, TelegramBotSpec)
        and spec.webhook.certificate.mode == "SelfSigned"
        and not secret.tls_crt
    ):
        return Condition(
            names.SECRET_READY, "False", "Pending", f'Secret "{secret_name}" has no certificate yet'
        )
    what = "the secret token"
    if secret.tls_crt:
        what += " and a self-signed certificate"
    return Condition(names.SECRET_READY, "True", "Ready", f'Secret "{secret_name}" holds {what}')


def webhook_condition(obs: Observation, mem: Memory) -> Condition:
    failure = mem.failure
    if failure is not None and failure.action is ActionKind.SET_WEBHOOK and not failure.rejects_token:
        return Condition(names.WEBHOOK_REGISTERED, "False", failure.kind, failure.message)
    wanted = desired(obs)
    if wanted is None:
        return Condition(names.WEBHOOK_REGISTERED, "False", "Pending", "waiting for the token and the secret")
    params, print_ = wanted
    registration = mem.registration
    live = mem.live
    if registration is not None and registration.fingerprint == print_ and live is not None:
        differences = drift(params, live)
        if not differences:
            return Condition(names.WEBHOOK_REGISTERED, "True", "Registered", f"webhook set to {params.url}")
        return Condition(names.WEBHOOK_REGISTERED, "False", "Drifted", "; ".join(differences))
    return Condition(names.WEBHOOK_REGISTERED, "False", "Pending", f"webhook {params.url} not registered yet")


def delivering_condition(mem: Memory) -> Condition:
    """The verdict of the last getWebhookInfo check (delivery.py): the bot's health, not the
    operator's work, so it does not count for Ready."""
    if mem.delivering is None:
        return Condition(names.DELIVERING, "Unknown", "NotChecked", "getWebhookInfo has not answered yet")
    return mem.delivering


def ready_condition(parts: list[Condition], mem: Memory) -> Condition:
    for part in parts:
        if part.status != "True":
            return Condition(names.READY, "False", part.reason, f"{part.type}: {part.message}")
    failure = mem.failure
    if failure is not None and not failure.rejects_token:
        return Condition(names.READY, "False", failure.kind, failure.message)
    return Condition(names.READY, "True", "Ready", "the webhook is registered and in sync")


def build_status(
    obs: Observation,
    mem: Memory,
    *,
    secret_name: str,
    existing_conditions: list[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    parts = [token_condition(obs, mem), secret_condition(obs, secret_name), webhook_condition(obs, mem)]
    declared = isinstance(obs.spec, TelegramBotSpec) and obs.spec.profile is not None
    wanted = profile_items.desired(obs.spec.profile) if isinstance(obs.spec, TelegramBotSpec) else {}
    conditions = [
        ready_condition(parts, mem),
        *parts,
        delivering_condition(mem),
        profile_plan.condition(wanted, mem.profile, declared),
    ]
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "conditions": merge_conditions(
            existing_conditions, conditions, now=obs.now, generation=obs.generation
        ),
        "webhookSecretName": secret_name,
    }
    if mem.me is not None and mem.me_token_hash == obs.token_hash:
        status["bot"] = {"id": mem.me.id, "username": mem.me.username or "", "mention": _mention(mem)}
        keyed = identity_hash(obs)
        if keyed is not None:
            status["bot"]["identityHash"] = keyed
    if mem.live is not None and mem.live_at is not None:
        status["webhook"] = live_status(mem.live, mem.live_at)
    status.update(build_status_registration(mem))
    profile_status = profile_plan.status(mem.profile, declared)
    if profile_status is not None:
        status["profile"] = profile_status
    secret = obs.webhook_secret
    if isinstance(secret, WebhookSecretState):
        if secret.rotated_at is not None:
            status["secretTokenRotatedAt"] = rfc3339(secret.rotated_at)
        status["rotationPhase"] = str(secret.phase)
    return status


def build_status_registration(mem: Memory) -> dict[str, Any]:
    """``{"registration": ...}`` from memory (empty when nothing was registered)."""
    if mem.registration is None:
        return {}
    return {
        "registration": {
            "fingerprint": mem.registration.fingerprint,
            "registeredAt": rfc3339(mem.registration.registered_at),
            "url": mem.registration.url,
        }
    }


def live_status(live: WebhookInfo, checked_at: datetime) -> dict[str, Any]:
    result: dict[str, Any] = {
        "url": live.url,
        "pendingUpdateCount": live.pending_update_count,
        "hasCustomCertificate": live.has_custom_certificate,
        "lastCheckTime": rfc3339(checked_at),
    }
    if live.max_connections is not None:
        result["maxConnections"] = live.max_connections
    if live.allowed_updates is not None:
        result["allowedUpdates"] = list(live.allowed_updates)
    if live.ip_address:
        result["ipAddress"] = live.ip_address
    if live.last_error_date is not None:
        result["lastErrorDate"] = rfc3339(datetime.fromtimestamp(live.last_error_date, UTC))
    if live.last_error_message:
        result["lastErrorMessage"] = live.last_error_message
    if live.last_synchronization_error_date is not None:
        result["lastSynchronizationErrorDate"] = rfc3339(
            datetime.fromtimestamp(live.last_synchronization_error_date, UTC)
        )
    return result


#: A check (or profile read-back) that finds everything as it was writes no status, except that
#: its time is brought up to date once it is this many check intervals old (an hour at the
#: default 300 s). A status write per check cost every watcher of TelegramBots (kopf, kubectl -w,
#: the garbage collector) an event, and at 10,000 bots those writes were 54 % of kube-apiserver's
#: CPU (its CPU profile, docs/benchmarks.md); Kubernetes' node heartbeats left status for the same
#: reason.
CHECK_TIME_REFRESH_INTERVALS = 12
CHECK_TIMES = (("webhook", "lastCheckTime"), ("profile", "lastCheckTime"))


def only_recent_check_times(patch: Mapping[str, Any], written: Mapping[str, Any], refresh: timedelta) -> bool:
    """``patch`` changes nothing but check times (:data:`CHECK_TIMES`), each written less than
    ``refresh`` before its new value: the write can wait."""
    times = dict(CHECK_TIMES)
    if not patch or not set(patch) <= times.keys():
        return False
    for field, part in patch.items():
        key = times[field]
        if not isinstance(part, Mapping) or set(part) != {key}:
            return False
        before, after = (written.get(field) or {}).get(key), part[key]
        was = parse_time(before) if isinstance(before, str) else None
        now = parse_time(after) if isinstance(after, str) else None
        if was is None or now is None or now - was >= refresh:
            return False
    return True


def has_check_time_since(patch: Mapping[str, Any], since: datetime) -> bool:
    """``patch`` writes a check time (:data:`CHECK_TIMES`) at or after ``since``."""
    for field, key in CHECK_TIMES:
        part = patch.get(field)
        value = part.get(key) if isinstance(part, Mapping) else None
        when = parse_time(value) if isinstance(value, str) else None
        if when is not None and when >= since:
            return True
    return False


def merge_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``old`` into ``new`` (keys gone from ``new`` become null)."""
    patch: dict[str, Any] = {}
    old = old or {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif before != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def _mention(mem: Memory) -> str:
    if mem.me is None:
        return ""
    return f"@{mem.me.username}" if mem.me.username else str(mem.me.id)
