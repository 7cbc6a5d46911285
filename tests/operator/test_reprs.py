"""Nothing that holds a token, a secret token or a key prints it: reprs, log lines, kopf's Events."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kopf
import pytest
from kopf._core.engines import posting

from tgbot_operator.actions import Purpose, SetWebhook
from tgbot_operator.botapi import BotApiClient
from tgbot_operator.deps import Deps
from tgbot_operator.kube import SecretView
from tgbot_operator.logs import KOPF_OBJECTS_LOGGER, RedactingFilter, setup_logging
from tgbot_operator.metrics import Metrics
from tgbot_operator.observation import Memory, Observation
from tgbot_operator.redaction import SecretRegistry
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.telegram import SetWebhookParams
from tgbot_operator.webhook_secret import RotationPhase, WebhookSecretState, generate_self_signed

from .conftest import FakeKube
from .test_reconcile import spec

BOT_TOKEN = "777001:AAHsecretHalfOfTheBotTokenForReprs0"
SECRET_TOKEN = "wSecretTokenNeverPrintedAnywhere_0123456789-abcdefghijklmnopqrst"
PREVIOUS = "pPreviousSecretTokenNeverPrinted_0123456789-abcdefghijklmnopqrs"
CERT, KEY = generate_self_signed("bots.example.com", datetime.now(UTC))
KEY_LINE = KEY.decode().splitlines()[3]
NEEDLES = (BOT_TOKEN, BOT_TOKEN.partition(":")[2], SECRET_TOKEN, PREVIOUS, KEY_LINE)


def state() -> WebhookSecretState:
    return WebhookSecretState(
        secret_token=SECRET_TOKEN,
        previous_secret_token=PREVIOUS,
        tls_crt=CERT,
        tls_key=KEY,
        phase=RotationPhase.PROPAGATING,
        phase_since=None,
        rotated_at=None,
        rotate_handled=None,
    )


def params() -> SetWebhookParams:
    return SetWebhookParams(
        url="https://bots.example.com/x",
        secret_token=SECRET_TOKEN,
        max_connections=40,
        allowed_updates=None,
        drop_pending_updates=False,
        ip_address=None,
        certificate=CERT,
    )


async def holders() -> list[Any]:
    obs = Observation(
        now=datetime.now(UTC),
        generation=1,
        spec=spec(),
        server="https://api.telegram.org",
        token=BOT_TOKEN,
        webhook_secret=state(),
        custom_certificate=None,
        rotate_request=None,
    )
    registry = SecretRegistry()
    registry.set("uid", BOT_TOKEN, SECRET_TOKEN, PREVIOUS)
    # kubectl apply keeps the whole manifest, stringData and all, in an annotation.
    applied = json.dumps({"kind": "Secret", "stringData": {"token": BOT_TOKEN}})
    meta = {"name": "t", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}}
    raw = {"metadata": meta, "stringData": {"token": BOT_TOKEN, "tls.key": KEY.decode()}}
    async with aiohttp.ClientSession() as http:
        client = BotApiClient(http, "https://api.telegram.org", BOT_TOKEN)
        deps = Deps(
            settings=OperatorSettings(),
            kube=FakeKube(),
            metrics=Metrics(),
            http=http,
            rng=random.Random(1),
            secrets=registry,
        )
        return [
            obs,
            state(),
            params(),
            SetWebhook(params(), "sha256:f", "why", purpose=Purpose.REGISTER),
            SecretView.from_dict(raw),
            client,
            registry,
            deps,
            Memory(),
        ]


async def test_reprs_and_debug_logs_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tgbot_operator.test_reprs")
    with caplog.at_level(logging.DEBUG):
        for holder in await holders():
            logger.debug("repr %r str %s", holder, holder)
            logger.debug(f"f-string {holder} {holder!r}")
    text = caplog.text
    assert "WebhookSecretState(" in text  # the objects were logged
    assert "Observation(" in text
    for needle in NEEDLES:
        assert needle not in text, f"{needle[:6]}... appears in a repr"


def test_the_filter_masks_the_secrets_the_registry_knows() -> None:
    registry = SecretRegistry()
    registry.set("a", BOT_TOKEN, SECRET_TOKEN)
    registry.set("b", PREVIOUS, "short")  # too short to mask by value
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "a=%s b=%s c=%s key=%s",
        (SECRET_TOKEN, PREVIOUS, BOT_TOKEN, KEY.decode()),
        None,
    )
    RedactingFilter(registry).filter(record)
    message = record.getMessage()
    for needle in NEEDLES:
        assert needle not in message
    registry.drop("a")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a=%s", (SECRET_TOKEN,), None)
    RedactingFilter(registry).filter(record)
    assert SECRET_TOKEN in record.getMessage()  # forgotten on purpose: the worker is gone


async def test_kopf_posting_of_log_records_as_events_is_masked() -> None:
    """With posting of log records on, kopf posts object-logger records at or above
    settings.posting.level as Events through its own handler on ``kopf.objects``: the root
    handler's filter never sees them."""
    root = logging.getLogger()
    objects = logging.getLogger(KOPF_OBJECTS_LOGGER)
    saved = root.handlers[:], root.level, objects.filters[:]
    registry = SecretRegistry()
    registry.set("uid", BOT_TOKEN, SECRET_TOKEN)
    queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
    posting.event_queue_var.set(queue)
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    try:
        setup_logging("debug", False, registry)
        root.handlers[0].stream = io.StringIO()  # type: ignore[attr-defined]
        settings = kopf.OperatorSettings()
        settings.posting.enabled = True
        settings.posting.loggers = True  # off by default in kopf >= 1.4x; on, every record is an Event
        settings.posting.level = logging.INFO
        body = kopf.Body(
            {"apiVersion": "tgbot.dev/v1alpha1", "kind": "TelegramBot", "metadata": {"name": "b", "uid": "u"}}
        )
        logger = kopf.ObjectLogger(body=body, settings=settings)
        logger.warning("secret token %s, bot token %s", SECRET_TOKEN, BOT_TOKEN)
        try:
            raise RuntimeError(f"failed with {SECRET_TOKEN}")
        except RuntimeError:
            logger.exception("handler failed")
        posted = [queue.get_nowait() for _ in range(queue.qsize())]
        logged = root.handlers[0].stream.getvalue()  # type: ignore[attr-defined]
    finally:
        root.handlers[:], level, objects.filters[:] = saved
        root.setLevel(level)
    assert len(posted) == 2
    assert posted[0].type == "Warning"
    text = " ".join(event.message for event in posted) + logged
    assert "secret token ***" in text
    for needle in (SECRET_TOKEN, BOT_TOKEN, BOT_TOKEN.partition(":")[2]):
        assert needle not in text


def test_the_registry_masks_embedded_shared_and_odd_secrets() -> None:
    registry = SecretRegistry()
    registry.set("a", BOT_TOKEN, SECRET_TOKEN)
    registry.set("b", SECRET_TOKEN, "an odd secret: with spaces")
    text = f"/bot{BOT_TOKEN}/getMe x{SECRET_TOKEN}y an odd secret: with spaces"
    masked = registry.redact(text)
    assert masked == "/bot***/getMe x***y ***"
    registry.drop("a")
    assert SECRET_TOKEN not in registry.redact(SECRET_TOKEN)  # "b" still holds it
    registry.drop("b")
    assert registry.redact(SECRET_TOKEN) == SECRET_TOKEN
    assert len(registry) == 0


def test_the_registry_follows_each_change_of_an_owners_secrets() -> None:
    # Kept value by value (no rebuild per change): lengths come and go with the last holder.
    long_secret, short_secret = "L" * 64, "s" * 12
    registry = SecretRegistry()
    registry.set("a", long_secret)
    registry.set("b", short_secret)
    assert registry.redact(f"{long_secret} {short_secret}") == "*** ***"
    registry.set("a", short_secret)  # a's token changed: the long one is no secret any more
    assert registry.redact(f"{long_secret} {short_secret}") == f"{long_secret} ***"
    registry.drop("b")
    assert registry.redact(short_secret) == "***"  # "a" holds it now
    registry.set("a")
    assert registry.redact(short_secret) == short_secret
    assert len(registry) == 0
