"""Webhook delivery: per bot, per chat, in order, with retries and backoff.

Each bot has a :class:`BotDelivery`. It runs one task per ordering key (chat) that
has pending updates, so a failing update blocks only its own chat, and at most
``max_connections`` attempts of the bot are in flight at once. Every attempt reads
the webhook as it is *now*: after setWebhook changes URL or secret, an attempt in
flight to the old URL may finish, and every later one uses the new settings (a new
webhook also resets the backoff, like Telegram's fresh delivery actor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from . import clock
from .attempt import Outcome, post_update
from .config import EmulatorConfig
from .params import Params
from .pulse import Pulse
from .redact import redact_url
from .state import Bot, DeliveryAttempt, EmulatorState, UpdateRecord, Webhook
from .tls import TlsContexts
from .updates import is_allowed

log = logging.getLogger(__name__)

ReplyHandler = Callable[[Bot, Params, int], Awaitable[None]]


class BotDelivery:
    def __init__(
        self,
        bot: Bot,
        state: EmulatorState,
        config: EmulatorConfig,
        session: aiohttp.ClientSession,
        tls: TlsContexts,
        on_reply: ReplyHandler,
    ) -> None:
        self.bot = bot
        self._state = state
        self._config = config
        self._session = session
        self._tls = tls
        self._on_reply = on_reply
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight = 0
        self._slot_freed = Pulse()

    async def run(self) -> None:
        try:
            while True:
                self._spawn_ready()
                await self.bot.changed.wait()  # this bot's changes only (EmulatorState.notify)
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn_ready(self) -> None:
        if self.bot.webhook is None:
            return
        for key in self.bot.pending_keys():
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(
                    self._drain(key), name=f"tgbot-emulator-deliver-{self.bot.id}-{key}"
                )

    async def _drain(self, key: str) -> None:
        """Deliver one chat's updates strictly one after another."""
        try:
            while (record := self.bot.head_pending(key)) is not None and self.bot.webhook is not None:
                if not is_allowed(record.kind, self.bot.allowed_updates):
                    self._state.drop(self.bot, record, "not in allowed_updates")
                    continue
                if await self._backing_off(record, self.bot.webhook):
                    continue
                await self._acquire_slot()
                try:
                    webhook = self.bot.webhook
                    if webhook is None or record.state != "pending":
                        continue
                    await self._deliver(record, webhook)
                finally:
                    self._release_slot()
        finally:
            self._tasks.pop(key, None)
            # Let the scheduler look again: an update may have arrived as we were leaving.
            self._state.notify(self.bot)

    async def _backing_off(self, record: UpdateRecord, webhook: Webhook) -> bool:
        """Wait out the retry delay; True means "re-check everything before sending"."""
        if record.backoff_generation != webhook.generation:
            return False
        delay = record.next_attempt_at - clock.now()
        if delay <= 0:
            return False
        # Any change (new webhook, dropped updates, reset) ends the wait early: then re-check. A wait
        # that ran out is the delay over: send. (Re-checking then would spin when the loop's clock
        # lands a hair short of next_attempt_at - a float sum - as looptime's quantized clock does.)
        return await self.bot.changed.wait(delay)

    async def _acquire_slot(self) -> None:
        while True:
            webhook = self.bot.webhook
            limit = webhook.max_connections if webhook is not None else 1
            if self._in_flight < limit:
                self._in_flight += 1
                return
            await self._slot_freed.wait()

    def _release_slot(self) -> None:
        self._in_flight -= 1
        self._slot_freed.fire()

    async def _deliver(self, record: UpdateRecord, webhook: Webhook) -> None:
        record.attempts += 1
        attempt_no = record.attempts
        started_at = time.time()
        outcome = await post_update(
            self._session, self._tls, webhook, record.payload, self._config.delivery_timeout_seconds
        )
        self._state.record_attempt(
            self.bot,
            DeliveryAttempt(
                update_id=record.update_id,
                attempt=attempt_no,
                at=started_at,
                url=webhook.url,
                status=outcome.status,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            ),
        )
        if outcome.ok:
            self._state.mark_delivered(self.bot, record, "webhook")
            if outcome.reply is not None:
                await self._on_reply(self.bot, outcome.reply, record.update_id)
            return
        self._schedule_retry(record, webhook, outcome)

    def _schedule_retry(self, record: UpdateRecord, webhook: Webhook, outcome: Outcome) -> None:
        config = self._config
        if record.backoff_generation != webhook.generation or record.backoff <= 0:
            record.backoff = config.retry_initial_seconds
        else:
            record.backoff = min(record.backoff * 2, config.retry_cap_seconds)
        record.backoff_generation = webhook.generation
        delay = record.backoff
        if outcome.retry_after is not None:
            # Honour the receiver's Retry-After, but "0" must not turn into a busy loop.
            delay = max(outcome.retry_after, config.retry_initial_seconds)
        record.next_attempt_at = clock.now() + delay
        # An error of a webhook that was replaced meanwhile is not the new one's error.
        if self.bot.webhook is webhook and outcome.error is not None:
            self._state.webhook_error(self.bot, outcome.error)
        log.info(
            "delivery of update %s to %s failed (%s), retry in %.1fs",
            record.update_id,
            redact_url(webhook.url),
            outcome.error,
            delay,
        )


class DeliveryManager:
    """Keeps one BotDelivery running per bot; owns the HTTP session for webhooks."""

    def __init__(self, state: EmulatorState, config: EmulatorConfig, on_reply: ReplyHandler) -> None:
        self._state = state
        self._config = config
        self._on_reply = on_reply
        self._tls = TlsContexts(config.extra_ca_file)
        self._session: aiohttp.ClientSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._workers: dict[int, tuple[BotDelivery, asyncio.Task[None]]] = {}
        # Workers of replaced bots, cancelled but maybe still unwinding: awaited at stop.
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # No pooled keep-alive: a webhook receiver restarted between attempts (as in
        # rollout tests) must not see a stale connection counted as a failure.
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._supervisor = asyncio.create_task(self._supervise(), name="tgbot-emulator-delivery")

    async def stop(self) -> None:
        tasks = [task for _, task in self._workers.values()] + list(self._retiring)
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._retiring.clear()
        if self._session is not None:
            await self._session.close()

    async def _supervise(self) -> None:
        """A worker per bot. Woken by bots added, replaced or reset and by a worker's end, not by
        every change: with 10,000 bots a look at all of them per Bot API call was the emulator's
        whole CPU (and each bot's worker waits on its own bot's changes for the same reason)."""
        while True:
            self._sync_workers()
            await self._state.roster.wait()

    def _sync_workers(self) -> None:
        assert self._session is not None
        for bot_id, (worker, task) in list(self._workers.items()):
            # A reset replaces Bot objects even when ids come back: restart for those too.
            if self._state.bots.get(bot_id) is not worker.bot or task.done():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("delivery worker of bot %s died", bot_id, exc_info=task.exception())
                task.cancel()
                del self._workers[bot_id]
                if not task.done():
                    self._retiring.add(task)
                    task.add_done_callback(self._retiring.discard)
        for bot_id, bot in self._state.bots.items():
            if bot_id not in self._workers:
                worker = BotDelivery(bot, self._state, self._config, self._session, self._tls, self._on_reply)
                task = asyncio.create_task(worker.run(), name=f"tgbot-emulator-bot-{bot_id}")
                task.add_done_callback(lambda _: self._state.roster.fire())  # a died worker restarts
                self._workers[bot_id] = (worker, task)
