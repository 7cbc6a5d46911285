"""A real aiogram 3 Bot against the emulator: proof that clients can't tell the difference."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.methods import SendMessage
from aiogram.types import BufferedInputFile, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.emulator.helpers import BOT_ID, TOKEN
from tests.emulator.test_tls import self_signed
from tgbot_emulator import EmulatorClient, EmulatorServer


@pytest.fixture
async def bot(server: EmulatorServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
    async with Bot(TOKEN, session=session) as running:
        yield running


async def test_get_me_set_webhook_send_message(bot: Bot, client: EmulatorClient) -> None:
    me = await bot.get_me()
    assert me.id == BOT_ID
    assert me.is_bot
    assert me.username == "test_bot"

    assert await bot.set_webhook(
        "https://bot.example.com/hook", secret_token="aiogram-secret", allowed_updates=["message"]
    )
    info = await bot.get_webhook_info()
    assert info.url == "https://bot.example.com/hook"
    assert info.allowed_updates == ["message"]
    assert info.max_connections == 40
    assert info.last_error_date is None
    [call] = await client.calls(BOT_ID, method="setWebhook", reveal_secrets=True)
    assert call["params"]["secret_token"] == "aiogram-secret"

    message = await bot.send_message(chat_id=42, text="hello from aiogram")
    assert message.text == "hello from aiogram"
    assert message.chat.id == 42
    assert message.from_user is not None
    assert message.from_user.id == BOT_ID

    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).url == ""


async def test_certificate_upload_through_aiogram(bot: Bot, client: EmulatorClient) -> None:
    cert_pem, _ = self_signed()
    await bot.set_webhook("https://127.0.0.1:8443/hook", certificate=BufferedInputFile(cert_pem, "cert.pem"))
    assert (await bot.get_webhook_info()).has_custom_certificate is True
    assert (await client.webhook(BOT_ID))["certificate_sha256"] is not None


async def test_errors_map_to_aiogram_exceptions(bot: Bot, client: EmulatorClient) -> None:
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("https://bot.example.com/hook", secret_token="bad secret!")
    await client.add_fault("429", method="getMe", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.get_me()
    assert retry.value.retry_after == 3
    await client.replace_token(BOT_ID, "123456:ROTATED_TOKEN")
    with pytest.raises(TelegramUnauthorizedError):
        await bot.get_me()


async def test_aiogram_dispatcher_answers_through_the_webhook_response(
    bot: Bot, client: EmulatorClient
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> SendMessage:
        # Returning a method from a handler makes aiogram put it into the webhook response.
        return message.answer(f"echo: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="dp-secret").register(
        app, path="/hook"
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await bot.set_webhook(url, secret_token="dp-secret")
        update_id = await client.send_user_message(BOT_ID, "ping", user_id=9)
        await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    finally:
        await runner.cleanup()
    [sent] = await client.sent_messages(BOT_ID)
    assert sent["text"] == "echo: ping"
    assert sent["chat_id"] == 9
    assert sent["via"] == "webhook_reply"
    assert sent["reply_to_update_id"] == update_id
