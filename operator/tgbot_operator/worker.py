"""One worker per TelegramBot: observe -> decide -> execute -> record, write status, sleep, repeat.

| step    | module                       | what                                                   |
| ------- | ---------------------------- | ------------------------------------------------------ |
| observe | ``observe.py``               | Kubernetes reads -> ``Observation``                    |
| decide  | ``reconcile.decide``         | ``Observation`` + ``Memory`` -> one action (pure)      |
| execute | ``execute.py``               | the action against Telegram or the Secret -> outcome   |
| record  | ``record.py``                | outcome -> ``Memory``, backoff, Events (pure)          |
| status  | ``status.py``                | ``Observation`` + ``Memory`` -> ``.status`` (pure)     |

The worker is the only thing that talks to Telegram about its bot while the bot exists, so
registrations, checks and rotations never race each other. It runs as a kopf daemon
(handlers.py), which pokes it when the spec or the rotation annotation changes.

About 360 lines: the loop, its schedule (jittered checks, the restart spread) and the
status write stay together, because the order of one pass is the thing to read; the steps
themselves live in the modules above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from . import names, profile, profile_items, profile_plan, status
from .actions import Wait
from .deps import Deps, EventSink
from .execute import execute
from .kube import KubeError, SecretView
from .model import TelegramBotSpec, plain
from .observation import LocalFailure, Memory, Observation, Problem, memory_from_status
from .observe import BotRef, observe
from .reconcile import adopt_status_identity, decide
from .record import (
    MAX_BACKOFF,
    Looked,
    Recorded,
    Registered,
    clear_observe_failure,
    failure_delay,
    observe_failed,
    place_resumed_checks,
    record,
)
from .redaction import redact
from .status import build_status, build_status_registration, merge_patch

MAX_STEPS_PER_PASS = 16
#: A check made this shortly before the worker stops (an operator restart: kopf's stop reaches the
#: worker up to a second or two after the SIGTERM) is written at the stop even if it found nothing
#: new, so the next process does not check again at once (record.place_resumed_checks). It costs a
#: status write per check of that window: 5 s x 33 checks/s = ~170 at 10,000 bots every 300 s.
RECORD_CHECKS_AT_STOP = timedelta(seconds=5)
#: Token problems that the user should hear about as a Warning Event (not just in status).
WARNED_PROBLEMS = frozenset({"BotApiServerNotAllowed", "SecretTypeNotAllowed", "TokenMalformed"})
#: Why a worker's sleep ended: its next step is due, its token check is, or something poked it.
Wakeup = Literal["due", "token", "poke"]


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
        self.deps = deps
        self.body = body
        self.bot = BotRef.from_body(body)
        self.logger = logger
        self.events = events
        self.memory: Memory = memory_from_status(body.get("status"))
        self._wake = asyncio.Event()
        self._stopped = False
        self._done = asyncio.Event()
        self._written_status: dict[str, Any] | None = plain(body.get("status")) or {}
        self._last_warning: str | None = None
        self._last_problem: str | None = None
        self._ready = False
        self._failing = False
        self._secret_view: SecretView | None = None
        #: Status writes that failed in a row (the API server is away): retried with its backoff.
        self._status_failures = 0
        self._token_checks = 0
        self._poked = False
        #: kube.secrets_epoch when the last pass began: unchanged -> its Secrets are as it read them.
        self._secrets_epoch: int | None = None
        place_resumed_checks(self.memory, now=deps.clock(), timing=deps.timing, uniform=deps.rng.uniform)

    # --- lifecycle ---------------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed (the spec, the rotation annotation): run a pass now."""
        self._poked = True
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._poked = True
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def wait_done(self) -> None:
        await self._done.wait()

    async def run(self) -> None:
        self.deps.metrics.bots.inc()
        try:
            while not self.stopped:
                until = await self.run_pass()
                # A token check whose Secrets cannot have changed is no pass: the pass is a function
                # of the Secrets, the spec (a change pokes) and the time (``until`` says when).
                while await self._sleep(until) == "token" and self._secrets_unchanged():
                    pass
            await self._record_check_at_stop()
        finally:
            self.deps.secrets.drop(self.bot.uid)
            self.deps.metrics.bots.dec()
            if self._ready:
                self.deps.metrics.ready.dec()
            if self._failing:
                self.deps.metrics.failing.dec()
            self._done.set()

    def _token_check_delay(self) -> float:
        """The first token check at a random moment of the interval, then every 80-100 % of it:
        bots started together do not read their Secrets together, and a changed token is still
        seen within the interval."""
        self._token_checks += 1
        spread = (0.0, 1.0) if self._token_checks == 1 else (0.8, 1.0)
        return self.deps.settings.token_check_interval * self.deps.rng.uniform(*spread)

    async def _sleep(self, until: datetime | None) -> Wakeup:
        """Until ``until`` ("due"), the next token check ("token"), or a poke or stop ("poke":
        kopf's field handlers poke)."""
        if self.stopped:
            return "poke"
        timeout = self._token_check_delay()
        wakeup: Wakeup = "token"
        if until is not None:
            due = max(0.0, (until - self.deps.clock()).total_seconds())
            if due <= timeout:
                timeout, wakeup = due, "due"
        # A timer that sets the wake-up, not asyncio.wait_for: on Python 3.11 that is a second task
        # per sleeping bot (~1.1 KB each, tracemalloc), and 10,000 bots sleep at once.
        if not self._poked:
            self._wake.clear()  # an earlier timer's; a poke since the pass began still counts
        alarm = asyncio.get_running_loop().call_later(timeout, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            alarm.cancel()
        return "poke" if self._poked else wakeup

    def _secrets_unchanged(self) -> bool:
        """Nothing a read of the namespace's Secrets returns changed since the last pass began."""
        epoch = self.deps.kube.secrets_epoch(self.bot.namespace)
        return epoch is not None and epoch == self._secrets_epoch and not self.stopped

    # --- one pass ----------------------------------------------------------------------------

    async def run_pass(self) -> datetime | None:
        """Observe, decide, execute, record until there is nothing to do; write status; say
        when to look again."""
        obs: Observation | None = None
        until: datetime | None = None
        checked = acted = False
        # What poked the worker until now is seen by this pass; a poke from here on (a spec change
        # arriving mid-pass) makes another pass, even if the Secrets are unchanged.
        self._poked = False
        self._wake.clear()
        self._secrets_epoch = self.deps.kube.secrets_epoch(self.bot.namespace)
        try:
            for _ in range(MAX_STEPS_PER_PASS):
                if self.stopped:
                    break
                obs = await self.observe()
                self._warn_problem(obs)
                adopt_status_identity(obs, self.memory)
                clear_observe_failure(self.memory)
                step = decide(obs, self.memory, self.deps.timing)
                if isinstance(step, Wait):
                    until = step.until
                    break
                token = obs.token if isinstance(obs.token, str) else ""
                self.logger.debug("Action %s", redact(repr(step), token))
                outcome = await execute(self.deps, self.bot, step, obs, self._secret_view)
                acted = True
                checked = checked or isinstance(outcome, Looked)
                recorded = self._record(record(self.memory, step, outcome, **self._record_args(obs)))
                self.deps.metrics.reconciles.labels(action=step.kind, outcome=recorded.metric).inc()
                if isinstance(outcome, Registered):
                    await self._persist_registration()
            else:
                until = self.deps.clock() + timedelta(seconds=1)
        except KubeError as exc:
            self._observe_failed(LocalFailure.KUBERNETES, str(exc))
            until = self.memory.not_before
        except Exception:
            self.logger.exception("Unexpected error while reconciling (will retry)")
            self._observe_failed(LocalFailure.INTERNAL, "unexpected error: see the operator log")
            until = self.memory.not_before
        if obs is not None and not self.stopped:
            profile_until = await self._profile_pass(obs, checked)
            if profile_until is not None:
                until = profile_until if until is None else min(until, profile_until)
        # Stopped mid-pass (a SIGTERM, a rollout) after a call: its record is still written, or
        # the next operator process would not know of it and do it again (a check that found
        # nothing new only says when it was made: that waits like any check time, see status.py).
        if obs is not None and (not self.stopped or acted) and not await self.write_status(obs):
            retry = self.deps.clock() + timedelta(seconds=self._status_retry_delay())
            until = retry if until is None else min(until, retry)
        self._count_failing()
        return until

    def _status_retry_delay(self) -> float:
        return failure_delay(LocalFailure.KUBERNETES, self._status_failures - 1, self.deps.rng.uniform)

    def _count_failing(self) -> None:
        """``tgbot_operator_bots_failing``: a failed step, failed reads or an unwritten status
        (0 again once every bot has converged after an outage)."""
        failing = self.memory.failure is not None or self._status_failures > 0
        if failing != self._failing:
            self.deps.metrics.failing.inc() if failing else self.deps.metrics.failing.dec()
            self._failing = failing

    async def observe(self) -> Observation:
        obs, self._secret_view = await observe(self.deps, self.bot, self.body)
        return obs

    def _record_args(self, obs: Observation) -> dict[str, Any]:
        deps = self.deps
        return {"obs": obs, "now": deps.clock(), "timing": deps.timing, "uniform": deps.rng.uniform}

    def _observe_failed(self, kind: LocalFailure, message: str) -> None:
        now = self.deps.clock()
        self._record(observe_failed(self.memory, kind, message, now=now, uniform=self.deps.rng.uniform))

    def _record(self, recorded: Recorded) -> Recorded:
        """Emit what ``record`` says: Events, log lines, and a failure's Warning once per text."""
        for type_, reason, message in recorded.events:
            self.events(type_, reason, message)
        if recorded.warning is not None:
            type_, reason, text = recorded.warning
            if text != self._last_warning:
                self._last_warning = text
                self.events(type_, reason, text)
        for level, line in recorded.logs:
            self.logger.log(level, "%s", line)
        return recorded

    async def _profile_pass(self, obs: Observation, checked: bool) -> datetime | None:
        """spec.profile, beside the webhook: its failures (a 429 on setMyName...) stay its own.
        ``checked``: this pass looked at the webhook (getWebhookInfo)."""
        spec, token, mem = obs.spec, obs.token, self.memory
        if not isinstance(spec, TelegramBotSpec) or not isinstance(token, str):
            return None
        if mem.me is None or mem.me_token_hash != obs.token_hash:
            return None  # getMe has not accepted this token (yet)
        wanted = profile_items.desired(spec.profile)
        if not wanted and not mem.profile.applied:
            return None  # nothing declared, nothing to reset: no profile call at all
        interval = self.deps.timing.check_interval
        profile_plan.resume(
            wanted, mem.profile, generation=obs.generation, now=self.deps.clock(), interval=interval
        )
        along, alone = profile_plan.ALONG_WITH_CHECKS
        try:
            api = self.deps.bot_api(obs.server, token)
            outcome = await profile.reconcile(
                wanted,
                mem.profile,
                call=api.call,
                clock=self.deps.clock,
                interval=interval,
                generation=obs.generation,
                redact=lambda text: redact(text, token),
                # Read back with this pass's webhook check: one status write for both.
                read_due=interval * (along if checked else alone),
                read_by=interval * alone,
            )
        except Exception:
            self.logger.exception("Unexpected error while applying spec.profile (will retry)")
            return self.deps.clock() + MAX_BACKOFF
        for type_, reason, message in outcome.events:
            self.events(type_, reason, message)
            (self.logger.warning if type_ == "Warning" else self.logger.info)("%s (%s)", message, reason)
        return outcome.until

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

    # --- status ------------------------------------------------------------------------------

    async def _patch_status(self, patch: Mapping[str, Any]) -> bool:
        """Whether the patch was written. Never raises: a failed status write must not end the
        worker, whose memory (what it registered) is the only record until a write succeeds."""
        fields = "+".join(sorted(patch))  # a handful of top-level keys: bounded
        try:
            await self.deps.kube.patch_bot_status(self.bot.namespace, self.bot.name, patch)
        except KubeError as exc:
            self.logger.warning("Cannot write status: %s", exc)
        except Exception:
            self.logger.exception("Cannot write status (unexpected error)")
        else:
            self._status_failures = 0
            self.deps.metrics.status_writes.labels(fields=fields, outcome="ok").inc()
            return True
        self._status_failures += 1
        self.deps.metrics.status_writes.labels(fields=fields, outcome="failed").inc()
        return False

    async def _persist_registration(self) -> None:
        """Write ``status.registration`` right after a successful setWebhook, before anything else
        can fail: a restart then finds the fingerprint and does not register again."""
        new = build_status_registration(self.memory)
        existing = self._written_status or {}
        patch = merge_patch({"registration": existing.get("registration")}, new)
        if patch and await self._patch_status(patch):
            self._written_status = {**existing, **new}

    async def _record_check_at_stop(self) -> None:
        """A check of the last seconds whose time the pass left unwritten (it found nothing new):
        written now. Another observation (the Secret from the cache) rather than the pass's kept
        in every sleeping worker."""
        checks = (self.memory.live_at, self.memory.profile.checked_at)
        since = self.deps.clock() - RECORD_CHECKS_AT_STOP
        if not any(at is not None and at >= since for at in checks):
            return
        try:
            obs = await self.observe()
        except KubeError:
            return  # the API server is away: the next process checks again, as before
        await self.write_status(obs)

    def _check_times_can_wait(self, patch: Mapping[str, Any], written: Mapping[str, Any]) -> bool:
        """A patch of nothing but check times waits (status.only_recent_check_times) - unless the
        worker is stopping and a check is recent: the next process should know of it."""
        refresh = self.deps.timing.check_interval * status.CHECK_TIME_REFRESH_INTERVALS
        if not status.only_recent_check_times(patch, written, refresh):
            return False
        since = self.deps.clock() - RECORD_CHECKS_AT_STOP
        return not (self.stopped and status.has_check_time_since(patch, since))

    async def write_status(self, obs: Observation) -> bool:
        """False when the status could not be written (the pass after next tries again soon)."""
        existing = self._written_status or {}
        new = build_status(
            obs, self.memory, secret_name=self.bot.secret_name, existing_conditions=existing.get("conditions")
        )
        patch = merge_patch(existing, new)
        if not patch or self._check_times_can_wait(patch, existing):
            self._status_failures = 0  # (what a failed write left out is in by now)
            return True
        if not await self._patch_status(patch):
            return False  # memory keeps it all; the next pass writes it
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
        return True
