"""A real aiogram 3 Bot and Dispatcher using the methods typical bots call, against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChatMember,
    BufferedInputFile,
    CallbackQuery,
    ChatAdministratorRights,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    MenuButtonDefault,
    MenuButtonWebApp,
    Message,
    WebAppInfo,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.emulator.helpers import BOT_ID, TOKEN
from tests.emulator.test_media import png
from tgbot_emulator import EmulatorClient, EmulatorServer

USER = 100_000_001
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Tea", callback_data="drink:tea"),
            InlineKeyboardButton(text="Coffee", callback_data="drink:coffee"),
        ]
    ]
)


@pytest.fixture
async def bot(server: EmulatorServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
    async with Bot(TOKEN, session=session) as running:
        yield running


def pairs(commands: list[BotCommand]) -> list[tuple[str, str]]:
    return [(c.command, c.description) for c in commands]


def drinks_dispatcher() -> Dispatcher:
    """A bot written the way aiogram's docs write one: /start offers buttons, a press edits."""
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("What to drink?", reply_markup=KEYBOARD)

    @dispatcher.callback_query(F.data.startswith("drink:"))
    async def chosen(callback: CallbackQuery) -> None:
        assert callback.data is not None
        assert isinstance(callback.message, Message)
        drink = callback.data.removeprefix("drink:")
        await callback.answer(f"{drink} it is")
        await callback.message.edit_text(f"You chose {drink}")

    return dispatcher


async def test_a_dispatcher_bot_with_buttons_and_edits(bot: Bot, client: EmulatorClient) -> None:
    app = web.Application()
    SimpleRequestHandler(drinks_dispatcher(), bot, handle_in_background=False).register(app, path="/hook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        start = await client.send_command(BOT_ID, "start")
        await client.wait_delivered(BOT_ID, [start], timeout=10)
        [menu] = await client.sent_messages(BOT_ID)
        assert menu["text"] == "What to drink?"
        pressed = await client.press_button(BOT_ID, menu["message_id"], text="Coffee")
        await client.wait_delivered(BOT_ID, [pressed["update_id"]], timeout=10)
    finally:
        await runner.cleanup()
    lines = await client.transcript(BOT_ID, USER)
    assert [(m["from_bot"], m["text"], m["edited"]) for m in lines] == [
        (False, "/start", False),
        (True, "You chose coffee", True),
    ]
    assert lines[1]["reply_markup"] is None
    [query] = await client.callback_queries(BOT_ID)
    assert query["answer"]["text"] == "coffee it is"


async def test_profile_methods_through_aiogram(bot: Bot, client: EmulatorClient) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    assert pairs(await bot.get_my_commands()) == pairs(commands)
    member = BotCommandScopeChatMember(chat_id=-100500, user_id=7)
    assert await bot.set_my_commands(commands[:1], scope=member, language_code="de")
    assert pairs(await bot.get_my_commands(scope=member, language_code="de")) == [("start", "Start")]
    assert await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats()) == []
    assert await bot.delete_my_commands(scope=member, language_code="de")
    assert await bot.get_my_commands(scope=member, language_code="de") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])

    assert await bot.set_my_name("Echo")
    assert (await bot.get_my_name()).name == "Echo"
    assert await bot.set_my_description("Echoes what you say", language_code="en")
    assert (await bot.get_my_description(language_code="en")).description == "Echoes what you say"
    assert await bot.set_my_short_description("Echoes")
    assert (await bot.get_my_short_description()).short_description == "Echoes"

    assert isinstance(await bot.get_chat_menu_button(), MenuButtonDefault)
    assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert isinstance(await bot.get_chat_menu_button(), MenuButtonCommands)
    web_app = MenuButtonWebApp(text="Open", web_app=WebAppInfo(url="https://app.example.com/"))
    assert await bot.set_chat_menu_button(chat_id=USER, menu_button=web_app)
    read_button = await bot.get_chat_menu_button(chat_id=USER)
    assert isinstance(read_button, MenuButtonWebApp)
    assert (read_button.text, read_button.web_app.url) == ("Open", "https://app.example.com/")

    rights = ChatAdministratorRights(
        is_anonymous=False,
        can_manage_chat=True,
        can_delete_messages=True,
        can_manage_video_chats=False,
        can_restrict_members=False,
        can_promote_members=False,
        can_change_info=False,
        can_invite_users=False,
        can_post_stories=False,
        can_edit_stories=False,
        can_delete_stories=False,
        can_send_welcome_messages=False,
    )
    assert await bot.set_my_default_administrator_rights(rights=rights)
    read = await bot.get_my_default_administrator_rights()
    assert (read.can_manage_chat, read.can_delete_messages, read.can_promote_members) == (True, True, False)
    channels = await bot.get_my_default_administrator_rights(for_channels=True)
    assert channels.can_post_messages is False

    profile = await client.profile(BOT_ID)
    assert profile["names"] == {"": "Echo"}


async def test_set_my_name_rate_limit_reaches_aiogram(bot: Bot, client: EmulatorClient) -> None:
    await client.add_fault("429", method="setMyName", for_seconds=3600)
    with pytest.raises(TelegramRetryAfter) as limited:
        await bot.set_my_name("Echo")
    assert limited.value.retry_after > 3500


async def test_messages_media_and_chats_through_aiogram(bot: Bot, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "hello", user_id=USER, first_name="Ann")
    chat = await bot.get_chat(USER)
    assert (chat.id, chat.type, chat.first_name) == (USER, "private", "Ann")
    assert await bot.send_chat_action(USER, "typing")

    photo = await bot.send_photo(
        USER, BufferedInputFile(png(40, 30), "p.png"), caption="first", reply_markup=KEYBOARD
    )
    assert photo.photo is not None
    assert (photo.photo[-1].width, photo.photo[-1].height) == (40, 30)
    edited = await bot.edit_message_caption(chat_id=USER, message_id=photo.message_id, caption="second")
    assert isinstance(edited, Message)
    assert edited.caption == "second"
    assert edited.reply_markup is None
    again = await bot.send_photo(USER, photo.photo[-1].file_id)
    assert again.photo is not None
    assert again.photo[-1].file_unique_id == photo.photo[-1].file_unique_id

    document = await bot.send_document(USER, BufferedInputFile(b"plain text\n", "notes.txt"))
    assert document.document is not None
    assert (document.document.file_name, document.document.mime_type) == ("notes.txt", "text/plain")

    text = await bot.send_message(USER, "menu", reply_markup=KEYBOARD)
    swapped = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Milk", callback_data="milk")]]
    )
    marked = await bot.edit_message_reply_markup(
        chat_id=USER, message_id=text.message_id, reply_markup=swapped
    )
    assert isinstance(marked, Message)
    assert marked.reply_markup is not None
    assert marked.reply_markup.inline_keyboard[0][0].callback_data == "milk"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=text.message_id, reply_markup=swapped)
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=USER, message_id=photo.message_id)

    copied = await bot.copy_message(chat_id=-100777, from_chat_id=USER, message_id=1)
    forwarded = await bot.forward_message(chat_id=-100777, from_chat_id=USER, message_id=1)
    assert forwarded.text == "hello"
    assert forwarded.forward_origin is not None
    assert copied.message_id < forwarded.message_id

    assert await bot.delete_message(USER, text.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("gone", chat_id=USER, message_id=text.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, text.message_id)
    group = await client.transcript(BOT_ID, -100777)
    assert [m["text"] for m in group] == ["hello", "hello"]


async def test_methods_returned_from_handlers_go_back_in_the_webhook_reply(
    bot: Bot, client: EmulatorClient
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Ready?", reply_markup=KEYBOARD)

    @dispatcher.callback_query()
    async def chosen(callback: CallbackQuery) -> object:
        # aiogram puts a returned method into the webhook response instead of calling the API.
        return callback.answer("noted", show_alert=True)

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False).register(app, path="/hook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        await client.wait_delivered(BOT_ID, [await client.send_command(BOT_ID, "start")], timeout=10)
        [menu] = await client.sent_messages(BOT_ID)
        pressed = await client.press_button(BOT_ID, menu["message_id"], callback_data="drink:tea")
        await client.wait_delivered(BOT_ID, [pressed["update_id"]], timeout=10)
    finally:
        await runner.cleanup()
    [query] = await client.callback_queries(BOT_ID)
    assert query["answer"] == {"text": "noted", "show_alert": True, "url": None, "cache_time": 0}
    [call] = await client.calls(BOT_ID, method="answerCallbackQuery")
    assert (call["via"], call["status"]) == ("webhook_reply", 200)
