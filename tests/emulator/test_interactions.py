"""Control API helpers: press an inline button, send a /command, read a chat's transcript."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.helpers import BOT_ID, BotApi, Receiver
from tgbot_emulator import EmulatorClient, EmulatorClientError

USER = 100_000_001  # the control API's default user (and private chat)
KEYBOARD = {
    "inline_keyboard": [
        [{"text": "Tea", "callback_data": "drink:tea"}, {"text": "Coffee", "callback_data": "drink:coffee"}],
        [{"text": "Docs", "url": "https://example.com/docs"}],
    ]
}


async def keyboard_message(api: BotApi, chat_id: int = USER) -> dict[str, Any]:
    return dict(await api.ok("sendMessage", chat_id=chat_id, text="What to drink?", reply_markup=KEYBOARD))


def update_of(client_updates: list[dict[str, Any]], update_id: int) -> dict[str, Any]:
    [record] = [u for u in client_updates if u["update_id"] == update_id]
    return dict(record["update"])


async def test_send_command_marks_a_bot_command_entity(client: EmulatorClient) -> None:
    update_id = await client.send_command(BOT_ID, "start")
    update = update_of(await client.updates(BOT_ID), update_id)
    message = update["message"]
    assert message["text"] == "/start"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["chat"] == {"id": USER, "type": "private", "first_name": f"User{USER}"}

    update_id = await client.send_command(BOT_ID, "/start", "ref42", mention=True, user_id=7)
    message = update_of(await client.updates(BOT_ID), update_id)["message"]
    assert message["text"] == "/start@test_bot ref42"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 15}]
    assert message["from"]["id"] == 7


async def test_invalid_command_names_are_refused(client: EmulatorClient) -> None:
    with pytest.raises(EmulatorClientError) as refused:
        await client.send_command(BOT_ID, "no spaces")
    assert refused.value.status == 400
    assert await client.updates(BOT_ID) == []


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("/help me", [{"type": "bot_command", "offset": 0, "length": 5}]),
        ("see /help", [{"type": "bot_command", "offset": 4, "length": 5}]),
        ("\N{GRINNING FACE} /go", [{"type": "bot_command", "offset": 3, "length": 3}]),  # UTF-16 units
        ("no command", None),
        ("a/b is not one, nor is http://x/y", None),
    ],
)
async def test_typed_messages_get_command_entities(
    client: EmulatorClient, text: str, entities: list[dict[str, Any]] | None
) -> None:
    update_id = await client.send_user_message(BOT_ID, text)
    message = update_of(await client.updates(BOT_ID), update_id)["message"]
    assert message.get("entities") == entities


async def test_press_a_button_by_data_or_text(api: BotApi, client: EmulatorClient) -> None:
    sent = await keyboard_message(api)
    pressed = await client.press_button(BOT_ID, sent["message_id"], callback_data="drink:tea")
    query = pressed["update"]["callback_query"]
    assert query["id"] == pressed["callback_query_id"]
    assert query["data"] == "drink:tea"
    assert query["from"]["id"] == USER
    assert query["message"] == sent
    assert query["chat_instance"]
    by_text = await client.press_button(BOT_ID, sent["message_id"], text="Coffee", user_id=USER)
    assert by_text["update"]["callback_query"]["data"] == "drink:coffee"
    assert by_text["callback_query_id"] != pressed["callback_query_id"]
    queries = await client.callback_queries(BOT_ID)
    assert [(q["data"], q["answered"]) for q in queries] == [("drink:tea", False), ("drink:coffee", False)]


async def test_a_press_sees_the_message_as_edited(api: BotApi, client: EmulatorClient) -> None:
    sent = await keyboard_message(api)
    await api.ok(
        "editMessageText",
        chat_id=USER,
        message_id=sent["message_id"],
        text="Still thirsty?",
        reply_markup=KEYBOARD,
    )
    pressed = await client.press_button(BOT_ID, sent["message_id"], text="Tea")
    message = pressed["update"]["callback_query"]["message"]
    assert message["text"] == "Still thirsty?"
    assert "edit_date" in message


@pytest.mark.parametrize(
    ("press", "status", "fragment"),
    [
        ({"message_id": 99, "callback_data": "drink:tea"}, 404, "no message 99"),
        ({"message_id": 1, "callback_data": "drink:milk"}, 404, "buttons: ['Tea', 'Coffee', 'Docs']"),
        ({"message_id": 1, "text": "Docs"}, 409, "sends no callback_data (url)"),
        ({"message_id": 1}, 400, "exactly one of callback_data and text"),
        ({"message_id": 1, "text": "Tea", "callback_data": "drink:tea"}, 400, "exactly one"),
        ({"message_id": 2, "text": "Tea"}, 409, "has no inline keyboard"),
        ({"message_id": 1, "chat_id": 5, "text": "Tea"}, 404, "no message 1 from the bot in chat 5"),
    ],
)
async def test_impossible_presses(
    api: BotApi, client: EmulatorClient, press: dict[str, Any], status: int, fragment: str
) -> None:
    await keyboard_message(api)  # message 1
    await api.ok("sendMessage", chat_id=USER, text="plain")  # message 2
    message_id = press.pop("message_id")
    with pytest.raises(EmulatorClientError) as refused:
        await client.press_button(BOT_ID, message_id, **press)
    assert refused.value.status == status
    assert fragment in str(refused.value)
    assert await client.callback_queries(BOT_ID) == []


async def test_deleted_and_users_messages_cannot_be_pressed(api: BotApi, client: EmulatorClient) -> None:
    sent = await keyboard_message(api)
    await api.ok("deleteMessage", chat_id=USER, message_id=sent["message_id"])
    with pytest.raises(EmulatorClientError) as refused:
        await client.press_button(BOT_ID, sent["message_id"], text="Tea")
    assert refused.value.status == 404
    keyboard_from_user = {"text": "hi", "reply_markup": KEYBOARD}
    update = {
        "message": {
            "message_id": 50,
            "date": 1,
            "chat": {"id": USER, "type": "private"},
            "from": {"id": USER, "is_bot": False, "first_name": "U"},
            **keyboard_from_user,
        }
    }
    await client.inject_update(BOT_ID, update)
    with pytest.raises(EmulatorClientError):
        await client.press_button(BOT_ID, 50, text="Tea")


async def test_the_same_message_id_in_two_chats_needs_a_chat_id(api: BotApi, client: EmulatorClient) -> None:
    await keyboard_message(api, chat_id=11)
    await keyboard_message(api, chat_id=22)
    with pytest.raises(EmulatorClientError) as refused:
        await client.press_button(BOT_ID, 1, text="Tea")
    assert refused.value.status == 409
    pressed = await client.press_button(BOT_ID, 1, text="Tea", chat_id=22)
    assert pressed["update"]["callback_query"]["message"]["chat"]["id"] == 22


async def test_transcript_shows_the_chat_as_it_is_now(api: BotApi, client: EmulatorClient) -> None:
    await client.send_command(BOT_ID, "start")
    menu = await keyboard_message(api)
    await api.ok("sendMessage", chat_id=USER, text="typo")
    await api.ok("editMessageText", chat_id=USER, message_id=menu["message_id"], text="Pick a drink")
    await api.ok("deleteMessage", chat_id=USER, message_id=3)
    lines = await client.transcript(BOT_ID, USER)
    summary = [(m["message_id"], m["from_bot"], m["text"], m["edited"], m["deleted"]) for m in lines]
    assert summary == [
        (1, False, "/start", False, False),
        (2, True, "Pick a drink", True, False),
        (3, True, "typo", False, True),
    ]
    assert lines[0]["update_id"] == 1
    assert lines[1]["reply_markup"] is None  # the edit dropped the keyboard
    assert lines[1]["via"] == "api"
    [chat] = await client.chats(BOT_ID)
    assert chat["chat"]["id"] == USER
    assert chat["message_count"] == 3
    assert await client.transcript(BOT_ID, 999) == []


async def test_a_pressed_button_reaches_the_webhook(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    await api.ok("setWebhook", url=receiver.url, allowed_updates=["message", "callback_query"])
    sent = await keyboard_message(api)
    pressed = await client.press_button(BOT_ID, sent["message_id"], text="Tea")
    await client.wait_delivered(BOT_ID, [pressed["update_id"]], timeout=10)
    [delivered] = receiver.received
    assert delivered.body["callback_query"]["data"] == "drink:tea"
    assert delivered.body["update_id"] == pressed["update_id"]


async def test_a_users_edit_shows_in_the_transcript(client: EmulatorClient) -> None:
    update_id = await client.send_user_message(BOT_ID, "helo")
    original = update_of(await client.updates(BOT_ID), update_id)["message"]
    await client.inject_update(BOT_ID, {"edited_message": {**original, "text": "hello", "edit_date": 2}})
    [line] = await client.transcript(BOT_ID, USER)
    assert (line["text"], line["edited"], line["from_bot"]) == ("hello", True, False)
