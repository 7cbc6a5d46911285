"""The control API through EmulatorClient, mirroring the documented routes."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import BOT_ID, BotApi, Receiver
from tgbot_emulator import EmulatorClient, EmulatorClientError, EmulatorServer, EmulatorTimeoutError


async def test_health(client: EmulatorClient) -> None:
    assert await client.health() == {"ok": True}


async def test_add_and_list_bots_never_show_tokens(client: EmulatorClient, api: BotApi) -> None:
    bot = await client.add_bot("777:SECRET_PART_xyz", "other_bot", first_name="Other")
    assert bot["id"] == 777
    assert bot["username"] == "other_bot"
    assert bot["first_name"] == "Other"
    assert bot["token_redacted"] == "777:***"
    listed = await client.list_bots()
    assert {b["id"] for b in listed} == {BOT_ID, 777}
    assert "SECRET_PART" not in repr(listed)
    status, body = await api.json("getMe", token="777:SECRET_PART_xyz")
    assert status == 200
    assert body["result"]["first_name"] == "Other"


async def test_add_bot_conflicts_and_bad_tokens(client: EmulatorClient) -> None:
    with pytest.raises(EmulatorClientError) as conflict:
        await client.add_bot("123456:DIFFERENT", "x")
    assert conflict.value.status == 409
    with pytest.raises(EmulatorClientError) as bad:
        await client.add_bot("no-colon", "x")
    assert bad.value.status == 400
    assert "no-colon" not in str(bad.value)


async def test_unknown_bot_is_404(client: EmulatorClient) -> None:
    with pytest.raises(EmulatorClientError) as missing:
        await client.webhook(42)
    assert missing.value.status == 404


async def test_replace_token_keeps_bot_id(client: EmulatorClient) -> None:
    with pytest.raises(EmulatorClientError):
        await client.replace_token(BOT_ID, "999:OTHER_ID")
    bot = await client.replace_token(BOT_ID, "123456:ROTATED")
    assert bot["token_redacted"] == "123456:***"


async def test_send_user_message_to_a_group(client: EmulatorClient, server: EmulatorServer) -> None:
    update_id = await client.send_user_message(BOT_ID, "hi group", chat_id=-100123, user_id=5)
    [record] = await client.updates(BOT_ID)
    assert record["update_id"] == update_id
    assert record["state"] == "pending"
    assert record["attempts"] == 0
    message = record["update"]["message"]
    assert message["chat"]["type"] == "supergroup"
    assert message["from"]["id"] == 5
    assert server.state.bots[BOT_ID].updates[update_id].kind == "message"


async def test_inject_update_any_type(client: EmulatorClient) -> None:
    update_id = await client.inject_update(
        BOT_ID, {"update_id": 999, "inline_query": {"id": "q", "query": "x"}}
    )
    [record] = await client.updates(BOT_ID)
    assert record["update"]["update_id"] == update_id != 999
    assert record["type"] == "inline_query"
    with pytest.raises(EmulatorClientError):
        await client.inject_update(BOT_ID, {})


async def test_webhook_view(client: EmulatorClient, api: BotApi) -> None:
    view = await client.webhook(BOT_ID)
    assert view["url"] == ""
    assert view["secret_token"] is None
    assert view["certificate_sha256"] is None
    await api.ok("setWebhook", url="https://a.example.com/", secret_token="abc", drop_pending_updates=True)
    view = await client.webhook(BOT_ID)
    assert view["secret_token"] == "***"
    assert view["drop_pending_updates_applied"] is True
    assert view["max_connections"] == 40
    assert (await client.webhook(BOT_ID, reveal_secrets=True))["secret_token"] == "abc"


async def test_wait_delivered_times_out(client: EmulatorClient) -> None:
    update_id = await client.send_user_message(BOT_ID, "never delivered: no webhook")
    with pytest.raises(EmulatorTimeoutError) as timeout:
        await client.wait_delivered(BOT_ID, [update_id], timeout=0.2)
    assert timeout.value.status == 408
    assert isinstance(timeout.value, TimeoutError)


async def test_wait_delivered_unknown_update(client: EmulatorClient) -> None:
    with pytest.raises(EmulatorClientError) as missing:
        await client.wait_delivered(BOT_ID, [12345], timeout=0.1)
    assert missing.value.status == 404


async def test_deliveries_and_sent(client: EmulatorClient, api: BotApi, receiver: Receiver) -> None:
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "x")
    await client.wait_delivered(BOT_ID, [update_id])
    [attempt] = await client.deliveries(BOT_ID)
    assert set(attempt) >= {"update_id", "attempt", "at", "status", "error", "duration_ms"}
    await api.ok("sendMessage", chat_id=1, text="from api")
    assert [s["via"] for s in await client.sent_messages(BOT_ID)] == ["api"]


async def test_client_works_without_context_manager(server: EmulatorServer) -> None:
    client = EmulatorClient(server.url + "/")
    try:
        assert (await client.health())["ok"] is True
    finally:
        await client.close()
    await client.close()  # closing twice is harmless
