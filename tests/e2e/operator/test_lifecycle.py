"""End to end: the operator (subprocess) + a real API server + the Bot API emulator (in-process)."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest

from tests.support import Cluster, Emulator
from tgbot_operator import names
from tgbot_operator.webhook_secret import SECRET_TOKEN_ALPHABET, inspect_certificate

from .conftest import OperatorFactory
from .support import (
    Bots,
    apply,
    assert_no_secrets_leaked,
    bot_manifest,
    condition,
    events,
    eventually,
    get,
    kubectl,
    new_token,
    secret_data,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_apply_to_ready_with_one_complete_setwebhook(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator()
    echo = await bots.ready_bot(
        "echo",
        1001,
        webhook={
            "allowedUpdates": ["message", "callback_query"],
            "maxConnections": 7,
            "dropPendingUpdates": True,
            "ipAddress": "127.0.0.1",
        },
    )
    token, manifest, bot = echo.token, echo.manifest, echo.body

    calls = await emulator.client.calls(1001, method="setWebhook", reveal_secrets=True)
    assert len(calls) == 1, calls
    params = calls[0]["params"]
    secret = await secret_data(cluster, namespace, "echo-webhook")
    secret_token = secret["secret-token"].decode()
    assert len(secret_token) == 64
    assert set(secret_token) <= set(SECRET_TOKEN_ALPHABET)
    assert params["url"] == manifest["spec"]["webhook"]["url"]
    assert params["secret_token"] == secret_token
    allowed = params["allowed_updates"]
    assert sorted(json.loads(allowed) if isinstance(allowed, str) else allowed) == [
        "callback_query",
        "message",
    ]
    assert str(params["max_connections"]) == "7"
    assert str(params["drop_pending_updates"]).lower() == "true"
    assert params["ip_address"] == "127.0.0.1"
    live = await emulator.client.webhook(1001, reveal_secrets=True)
    assert live["secret_token"] == secret_token
    assert live["max_connections"] == 7
    assert sorted(live["allowed_updates"]) == ["callback_query", "message"]

    status = bot["status"]
    assert {k: v for k, v in status["bot"].items() if k != "identityHash"} == {
        "id": 1001,
        "username": "echo_bot",
        "mention": "@echo_bot",
    }
    assert status["bot"]["identityHash"].startswith("hmac-sha256:")
    assert status["webhookSecretName"] == "echo-webhook"
    assert status["webhook"]["url"] == manifest["spec"]["webhook"]["url"]
    assert status["observedGeneration"] == bot["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "TokenValid",
        "SecretReady",
        "WebhookRegistered",
        "Delivering",
        "ProfileApplied",
    }
    assert all(c["status"] == "True" for c in status["conditions"])

    obj = await get(cluster, namespace, "secret", "echo-webhook")
    assert obj is not None
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tgbot-operator"
    assert obj["metadata"]["labels"]["tgbot.dev/bot"] == "echo"
    (owner,) = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "TelegramBot",
        "echo",
        bot["metadata"]["uid"],
        True,
    )
    assert "tgbot.dev/finalizer" in bot["metadata"]["finalizers"]

    table = (await kubectl(cluster, "get", "tgbot", "-n", namespace)).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "BOT", "URL", "READY", "PENDING", "DELIVERING", "AGE"]
    assert row.split()[:6] == ["echo", "@echo_bot", manifest["spec"]["webhook"]["url"], "True", "0", "True"]
    wide = (await kubectl(cluster, "get", "tgbot", "-n", namespace, "-o", "wide")).stdout
    assert "LASTERROR" in wide.splitlines()[0]

    # Quiet when in sync: a few checks later still one setWebhook, and no getMe per check.
    await asyncio.sleep(5)
    assert len(await emulator.client.calls(1001, method="setWebhook")) == 1
    assert len(await emulator.client.calls(1001, method="getMe")) == 1
    assert len(await emulator.client.calls(1001, method="getWebhookInfo")) >= 2

    # Nothing listens at the webhook URL: a delivery fails and LASTERROR shows it.
    await emulator.client.send_user_message(1001, "hello")

    async def wide_row() -> str:
        return (await kubectl(cluster, "get", "tgbot", "echo", "-n", namespace, "-o", "wide")).stdout

    table = await eventually(
        wide_row, lambda t: len(t.splitlines()[1].split()) > 7, timeout=30, what="LASTERROR"
    )
    assert table.splitlines()[1].split()[4] == "1"  # one pending update

    reasons = {e["reason"] for e in await events(cluster, namespace)}
    assert {"SecretCreated", "WebhookRegistered"} <= reasons
    await assert_no_secrets_leaked(cluster, namespace, operator, token, secret_token)


async def test_spec_change_re_registers_once(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator()
    manifest = (await bots.ready_bot("change", 1002)).manifest
    manifest["spec"]["webhook"]["maxConnections"] = 3
    await apply(cluster, namespace, manifest)
    await eventually(
        lambda: emulator.client.webhook(1002),
        lambda w: w.get("max_connections") == 3,
        timeout=30,
        what="max_connections=3",
    )
    bot = await wait_condition(cluster, namespace, "change")
    assert bot["status"]["observedGeneration"] == bot["metadata"]["generation"] == 2
    assert len(await emulator.client.calls(1002, method="setWebhook")) == 2


async def test_restart_causes_no_extra_setwebhook(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator()
    await bots.ready_bot("r", 1003)
    assert len(await emulator.client.calls(1003, method="setWebhook")) == 1
    checks_before = len(await emulator.client.calls(1003, method="getWebhookInfo"))
    operator.restart()
    # The restarted operator looks once (getWebhookInfo) and finds nothing to do: the bot's
    # identity and the registration come back from status, so neither getMe nor setWebhook.
    await eventually(
        lambda: emulator.client.calls(1003, method="getWebhookInfo"),
        lambda calls: len(calls) > checks_before,
        timeout=60,
        what="the restarted operator's getWebhookInfo",
    )
    await asyncio.sleep(4)
    assert len(await emulator.client.calls(1003, method="setWebhook")) == 1
    assert len(await emulator.client.calls(1003, method="getMe")) == 1
    assert condition(await get(cluster, namespace, "tgbot", "r"), "Ready")["status"] == "True"


async def test_self_signed_certificate_is_uploaded(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator()
    tls = await bots.ready_bot(
        "tls", 1004, webhook={"url": "https://127.0.0.1:8443/hook", "certificate": {"mode": "SelfSigned"}}
    )
    token, manifest, bot = tls.token, tls.manifest, tls.body
    secret = await secret_data(cluster, namespace, "tls-webhook")
    info = inspect_certificate(secret["tls.crt"])
    assert info.ip_addresses == ("127.0.0.1",)
    assert info.common_name == "127.0.0.1"
    assert (info.not_after - info.not_before).days >= 364
    assert b"PRIVATE KEY" in secret["tls.key"]
    live = await emulator.client.webhook(1004)
    assert live["has_custom_certificate"] is True
    assert live["certificate_sha256"] == info.sha256
    assert bot["status"]["webhook"]["hasCustomCertificate"] is True
    (call,) = await emulator.client.calls(1004, method="setWebhook")
    assert "certificate" in call["params"]
    # A new host means a new certificate (and a new registration).
    manifest["spec"]["webhook"]["url"] = "https://localhost:8443/hook"
    await apply(cluster, namespace, manifest)
    await eventually(
        lambda: emulator.client.webhook(1004),
        lambda w: w["url"] == "https://localhost:8443/hook" and w["certificate_sha256"] != info.sha256,
        timeout=30,
        what="re-registration with a certificate for localhost",
    )
    renewed = inspect_certificate((await secret_data(cluster, namespace, "tls-webhook"))["tls.crt"])
    assert renewed.dns_names == ("localhost",)
    key = (await secret_data(cluster, namespace, "tls-webhook"))["tls.key"].decode()
    await assert_no_secrets_leaked(cluster, namespace, operator, token, key.splitlines()[1])


async def test_secret_mode_uploads_and_follows_renewals(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    from datetime import UTC, datetime

    from tgbot_operator.webhook_secret import generate_self_signed

    def tls_secret(host: str) -> dict[str, object]:
        crt, key = generate_self_signed(host, datetime.now(UTC))
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "my-tls"},
            "data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()},
        }

    token = new_token(1005)
    await emulator.client.add_bot(token, "cm_bot")
    start_operator()
    manifest = bot_manifest(
        "cm",
        emulator.url,
        "cm-token",
        webhook={
            "url": "https://127.0.0.1:8443/hook",
            "certificate": {"mode": "Secret", "secretRef": {"name": "my-tls"}},
        },
    )
    await apply(cluster, namespace, token_secret("cm-token", token), manifest)
    # Without the TLS Secret: SecretReady=False naming it, no registration.
    bot = await wait_condition(cluster, namespace, "cm", "SecretReady", "False", "CertificateSecretNotFound")
    assert '"my-tls"' in condition(bot, "SecretReady")["message"]
    assert await emulator.client.calls(1005, method="setWebhook") == []
    first = tls_secret("127.0.0.1")
    await apply(cluster, namespace, first)
    await wait_condition(cluster, namespace, "cm")
    sha1 = inspect_certificate(base64.b64decode(str(first["data"]["tls.crt"]))).sha256  # type: ignore[index]
    assert (await emulator.client.webhook(1005))["certificate_sha256"] == sha1
    # cert-manager renews: the new certificate is uploaded.
    second = tls_secret("127.0.0.1")
    await apply(cluster, namespace, second)
    sha2 = inspect_certificate(base64.b64decode(str(second["data"]["tls.crt"]))).sha256  # type: ignore[index]
    await eventually(
        lambda: emulator.client.webhook(1005),
        lambda w: w["certificate_sha256"] == sha2,
        timeout=30,
        what="the renewed certificate",
    )
    assert len(await emulator.client.calls(1005, method="setWebhook")) == 2
    generated = await secret_data(cluster, namespace, "cm-webhook")
    assert "tls.crt" not in generated


async def test_drift_is_repaired(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator()
    drift = await bots.ready_bot("drift", 1006)
    token, manifest = drift.token, drift.manifest
    await asyncio.sleep(1.1)  # the emulator, like Telegram, rate-limits URL changes to one a second
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{emulator.url}/bot{token}/setWebhook", json={"url": "http://127.0.0.1:9/someone-else"}
        )
        assert (await response.json())["ok"] is True
    await eventually(
        lambda: emulator.client.webhook(1006),
        lambda w: w["url"] == manifest["spec"]["webhook"]["url"],
        timeout=30,
        what="the drift repair",
    )
    reasons = [e["reason"] for e in await events(cluster, namespace)]
    assert "WebhookDriftRepaired" in reasons
    await wait_condition(cluster, namespace, "drift")


async def test_replaced_secret_token_is_repaired_after_401s(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    """Someone re-ran setWebhook with the same URL but another secret: deliveries get 401s."""
    from aiohttp import web

    start_operator()
    secret_now: dict[str, str] = {}

    async def receive(request: web.Request) -> web.Response:
        ok = request.headers.get("X-Telegram-Bot-Api-Secret-Token") == secret_now.get("token")
        return web.json_response({}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/webhook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        s401 = await bots.ready_bot("s401", 1007, webhook={"url": f"http://127.0.0.1:{port}/webhook"})
        token, manifest = s401.token, s401.manifest
        secret_now["token"] = (await secret_data(cluster, namespace, "s401-webhook"))["secret-token"].decode()
        await asyncio.sleep(1.1)  # setWebhook rate limit
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{emulator.url}/bot{token}/setWebhook",
                json={"url": manifest["spec"]["webhook"]["url"], "secret_token": "someone-elses-secret"},
            )
            assert (await response.json())["ok"] is True
        await emulator.client.send_user_message(1007, "hello")
        await eventually(
            lambda: emulator.client.webhook(1007, reveal_secrets=True),
            lambda w: w["secret_token"] == secret_now["token"],
            timeout=40,
            what="the secret token to be re-registered",
        )
    finally:
        await runner.cleanup()


async def test_liveness_metrics_and_json_logs(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    from .support import free_port

    port = free_port()
    operator = start_operator("--liveness-listen", f"127.0.0.1:{port}", "--json-logs", "--log-level", "info")
    await bots.ready_bot("p", 1008)
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"http://127.0.0.1:{port}/healthz")
        assert response.status == 200
        metrics = await (await http.get(f"http://127.0.0.1:{operator.metrics_port}/metrics")).text()
    assert "tgbot_operator_bots 1.0" in metrics
    assert "tgbot_operator_bots_ready 1.0" in metrics
    assert 'tgbot_operator_telegram_calls_total{method="setWebhook",outcome="ok"} 1.0' in metrics
    assert "tgbot_operator_telegram_call_duration_seconds_bucket" in metrics
    assert 'tgbot_operator_reconciles_total{action="SetWebhook",outcome="ok"} 1.0' in metrics
    assert 'tgbot_operator_status_writes_total{fields="registration",outcome="ok"} 1.0' in metrics
    # The start-up full collection froze what was alive (gc_freeze), and pauses are measured.
    assert operator.metric("tgbot_operator_gc_frozen_objects") > 10_000
    assert operator.metric("tgbot_operator_gc_pause_seconds_count", generation="2") >= 1
    lines = [
        line for line in operator.log().splitlines()[1:] if line.strip() and not line.startswith("=====")
    ]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert any(
        r["message"].startswith("setWebhook ") and r.get("object") == f"{namespace}/p" for r in records
    )
    assert {"time", "level", "logger", "message"} <= set(records[0])
    # kopf ran the handler that drops managedFields on every event of the bot, and said nothing
    # (its success is not logged; a failure would be: "Handler 'forget-managed-fields' failed ...").
    assert not [r for r in records if names.FORGET_MANAGED_FIELDS in r["message"]]
