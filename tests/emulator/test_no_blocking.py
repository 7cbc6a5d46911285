"""No blocking calls on the emulator's event loop, checked by BlockBuster."""

from __future__ import annotations

from pathlib import Path

from blockbuster import blockbuster_ctx

from tests.emulator.helpers import BOT_ID, BotApi, Receiver, start_receiver
from tests.emulator.test_tls import self_signed, server_context
from tgbot_emulator import EmulatorClient


async def test_api_and_delivery_do_not_block(
    api: BotApi, client: EmulatorClient, receiver: Receiver, tmp_path: Path
) -> None:
    cert_pem, key_pem = self_signed()
    tls_receiver = await start_receiver(ssl_context=server_context(cert_pem, key_pem, tmp_path))
    try:
        with blockbuster_ctx(["tgbot_emulator", "aiohttp"]):
            await api.ok("getMe")
            await api.form("setWebhook", url=receiver.url, secret_token="s")
            ids = [await client.send_user_message(BOT_ID, f"m{i}", chat_id=i + 1) for i in range(3)]
            await client.wait_delivered(BOT_ID, ids, timeout=10)
            status, body = await api.multipart(
                "setWebhook", files={"certificate": ("c.pem", cert_pem)}, url=tls_receiver.url
            )
            assert status == 200, body
            more = await client.send_user_message(BOT_ID, "over tls")
            await client.wait_delivered(BOT_ID, [more], timeout=10)
            await api.ok("getWebhookInfo")
            await client.calls(BOT_ID)
    finally:
        await tls_receiver.stop()
    assert tls_receiver.texts() == ["over tls"]
