"""Editing, deleting, copying and forwarding messages, getChat, sendChatAction, answerCallbackQuery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator.helpers import BOT_ID, BotApi
from tgbot_emulator import EmulatorClient

CHAT = 4242
KEYBOARD = {
    "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}]]
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly"
    " the same as a current content and reply markup of the message"
)


async def error(api: BotApi, method: str, **params: Any) -> tuple[int, str]:
    status, body = await api.json(method, **params)
    assert body["ok"] is False, body
    assert body["error_code"] == status
    return status, body["description"]


async def sent(api: BotApi, text: str = "Pick one", **extra: Any) -> dict[str, Any]:
    return dict(await api.ok("sendMessage", chat_id=CHAT, text=text, **extra))


async def test_edit_message_text_changes_the_message_in_place(api: BotApi, client: EmulatorClient) -> None:
    message = await sent(api, reply_markup=KEYBOARD)
    assert message["reply_markup"] == KEYBOARD
    edited = await api.ok(
        "editMessageText", chat_id=CHAT, message_id=message["message_id"], text="Done", reply_markup=KEYBOARD
    )
    assert edited["text"] == "Done"
    assert edited["message_id"] == message["message_id"]
    assert edited["reply_markup"] == KEYBOARD
    assert isinstance(edited["edit_date"], int)
    [view] = await client.sent_messages(BOT_ID)
    assert (view["text"], view["edited"], view["deleted"]) == ("Done", True, False)


async def test_edit_without_reply_markup_removes_the_keyboard(api: BotApi) -> None:
    message = await sent(api, reply_markup=KEYBOARD)
    edited = await api.ok("editMessageText", chat_id=CHAT, message_id=message["message_id"], text="Thanks")
    assert "reply_markup" not in edited


async def test_unchanged_edits_are_refused_like_telegram(api: BotApi) -> None:
    message = await sent(api, reply_markup=KEYBOARD)
    mid = message["message_id"]
    same_text = {"chat_id": CHAT, "message_id": mid, "text": "Pick one", "reply_markup": KEYBOARD}
    assert await error(api, "editMessageText", **same_text) == (400, NOT_MODIFIED)
    same_markup = {"chat_id": CHAT, "message_id": mid, "reply_markup": KEYBOARD}
    assert await error(api, "editMessageReplyMarkup", **same_markup) == (400, NOT_MODIFIED)


async def test_edit_message_reply_markup(api: BotApi, client: EmulatorClient) -> None:
    message = await sent(api, reply_markup=KEYBOARD)
    new_keyboard = {"inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]}
    edited = await api.ok(
        "editMessageReplyMarkup", chat_id=CHAT, message_id=message["message_id"], reply_markup=new_keyboard
    )
    assert edited["reply_markup"] == new_keyboard
    assert edited["text"] == "Pick one"
    removed = await api.ok("editMessageReplyMarkup", chat_id=CHAT, message_id=message["message_id"])
    assert "reply_markup" not in removed
    [line] = await client.transcript(BOT_ID, CHAT)
    assert line["reply_markup"] is None
    assert line["edited"] is True


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"chat_id": CHAT, "message_id": 999, "text": "x"}, "Bad Request: message to edit not found"),
        ({"chat_id": CHAT, "text": "x"}, "Bad Request: message to edit not found"),
        ({"text": "x"}, "Bad Request: message identifier is not specified"),
        ({"inline_message_id": "AAAA", "text": "x"}, "Bad Request: MESSAGE_ID_INVALID"),
        ({"chat_id": CHAT, "message_id": 1, "text": " "}, "Bad Request: message text is empty"),
        ({"chat_id": CHAT, "message_id": 1, "text": "x" * 4097}, "Bad Request: message is too long"),
        (
            {"chat_id": CHAT, "message_id": 1, "text": "x", "parse_mode": "BBCode"},
            "Bad Request: unsupported parse_mode",
        ),
    ],
)
async def test_edit_message_text_errors(api: BotApi, params: dict[str, Any], expected: str) -> None:
    await sent(api)  # message 1 in CHAT
    assert await error(api, "editMessageText", **params) == (400, expected)


async def test_only_the_bots_own_messages_can_be_edited(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "mine", user_id=CHAT)
    status, description = await error(api, "editMessageText", chat_id=CHAT, message_id=1, text="hijack")
    assert (status, description) == (400, "Bad Request: message can't be edited")


async def test_edit_caption_needs_a_captioned_message(api: BotApi) -> None:
    message = await sent(api)
    status, description = await error(
        api, "editMessageCaption", chat_id=CHAT, message_id=message["message_id"], caption="c"
    )
    assert (status, description) == (400, "Bad Request: there is no caption in the message to edit")


async def test_invalid_inline_keyboards_are_refused(api: BotApi) -> None:
    too_long = {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]}
    assert await error(api, "sendMessage", chat_id=CHAT, text="t", reply_markup=too_long) == (
        400,
        "Bad Request: BUTTON_DATA_INVALID",
    )
    text_only = {"inline_keyboard": [[{"text": "x"}]]}
    assert await error(api, "sendMessage", chat_id=CHAT, text="t", reply_markup=text_only) == (
        400,
        "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
    )
    not_rows = {"inline_keyboard": [{"text": "x", "callback_data": "y"}]}
    status, description = await error(api, "sendMessage", chat_id=CHAT, text="t", reply_markup=not_rows)
    assert status == 400
    assert "must be an Array of Arrays" in description
    status, body = await api.form("sendMessage", chat_id=str(CHAT), text="t", reply_markup="{oops")
    assert (status, body["description"]) == (
        400,
        "Bad Request: can't parse reply keyboard markup JSON object",
    )


async def test_delete_message(api: BotApi, client: EmulatorClient) -> None:
    message = await sent(api)
    mid = message["message_id"]
    assert await api.ok("deleteMessage", chat_id=CHAT, message_id=mid) is True
    assert await error(api, "deleteMessage", chat_id=CHAT, message_id=mid) == (
        400,
        "Bad Request: message to delete not found",
    )
    assert await error(api, "editMessageText", chat_id=CHAT, message_id=mid, text="late") == (
        400,
        "Bad Request: message to edit not found",
    )
    assert await error(api, "deleteMessage", message_id=mid) == (
        400,
        "Bad Request: chat identifier is not specified",
    )
    assert await error(api, "deleteMessage", chat_id=CHAT) == (
        400,
        "Bad Request: message identifier is not specified",
    )
    [view] = await client.sent_messages(BOT_ID)
    assert view["deleted"] is True
    [line] = await client.transcript(BOT_ID, CHAT)
    assert line["deleted"] is True


async def test_bots_delete_users_messages_in_private_chats(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "spam", user_id=CHAT)
    assert await api.ok("deleteMessage", chat_id=CHAT, message_id=1) is True
    [line] = await client.transcript(BOT_ID, CHAT)
    assert (line["from_bot"], line["deleted"], line["text"]) == (False, True, "spam")


async def test_copy_message_keeps_content_and_answers_a_message_id(
    api: BotApi, client: EmulatorClient
) -> None:
    await client.send_user_message(BOT_ID, "hello there", user_id=7)
    copied = await api.ok("copyMessage", chat_id=CHAT, from_chat_id=7, message_id=1)
    assert set(copied) == {"message_id"}
    [line] = await client.transcript(BOT_ID, CHAT)
    assert line["message_id"] == copied["message_id"]
    assert (line["text"], line["from_bot"]) == ("hello there", True)
    assert "forward_origin" not in line["message"]
    assert await error(api, "copyMessage", chat_id=CHAT, from_chat_id=7, message_id=99) == (
        400,
        "Bad Request: message to copy not found",
    )
    assert await error(api, "copyMessage", chat_id=CHAT, message_id=1) == (
        400,
        "Bad Request: from_chat_id is empty",
    )


async def test_forward_message_names_its_origin(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "look", user_id=7, first_name="Ann")
    forwarded = await api.ok("forwardMessage", chat_id=CHAT, from_chat_id=7, message_id=1)
    assert forwarded["text"] == "look"
    assert forwarded["chat"]["id"] == CHAT
    origin = forwarded["forward_origin"]
    assert origin["type"] == "user"
    assert origin["sender_user"]["first_name"] == "Ann"
    assert await error(api, "forwardMessage", chat_id=CHAT, from_chat_id=7, message_id=5) == (
        400,
        "Bad Request: message to forward not found",
    )


async def test_replies_carry_the_replied_message(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "question", user_id=CHAT)
    answer = await api.ok("sendMessage", chat_id=CHAT, text="answer", reply_parameters={"message_id": 1})
    assert answer["reply_to_message"]["text"] == "question"
    status, description = await error(
        api, "sendMessage", chat_id=CHAT, text="x", reply_parameters={"message_id": 77}
    )
    assert (status, description) == (400, "Bad Request: message to be replied not found")
    lenient = {"message_id": 77, "allow_sending_without_reply": True}
    assert "reply_to_message" not in await api.ok(
        "sendMessage", chat_id=CHAT, text="x", reply_parameters=lenient
    )


async def test_get_chat(api: BotApi, client: EmulatorClient) -> None:
    assert await error(api, "getChat", chat_id=555) == (400, "Bad Request: chat not found")
    await client.send_user_message(BOT_ID, "hi", user_id=555, first_name="Bo")
    chat = await api.ok("getChat", chat_id=555)
    assert (chat["id"], chat["type"], chat["first_name"]) == (555, "private", "Bo")
    assert chat["accent_color_id"] == 0
    assert chat["max_reaction_count"] > 0
    assert await error(api, "getChat") == (400, "Bad Request: chat_id is empty")


async def test_send_chat_action(api: BotApi) -> None:
    for action in ("typing", "upload_photo", "UPLOAD_DOCUMENT", "record_voice", "choose_sticker"):
        assert await api.ok("sendChatAction", chat_id=CHAT, action=action) is True
    assert await error(api, "sendChatAction", chat_id=CHAT, action="dancing") == (
        400,
        "Bad Request: wrong parameter action in request",
    )
    assert await error(api, "sendChatAction", chat_id=CHAT) == (
        400,
        "Bad Request: wrong parameter action in request",
    )
    assert await error(api, "sendChatAction", action="typing") == (400, "Bad Request: chat_id is empty")


async def test_answer_callback_query_once(api: BotApi, client: EmulatorClient) -> None:
    message = await sent(api, reply_markup=KEYBOARD)
    pressed = await client.press_button(BOT_ID, message["message_id"], callback_data="yes")
    query_id = pressed["callback_query_id"]
    assert await error(api, "answerCallbackQuery", callback_query_id=query_id, text="x" * 201) == (
        400,
        "Bad Request: MESSAGE_TOO_LONG",
    )
    assert (
        await api.ok("answerCallbackQuery", callback_query_id=query_id, text="Saved", show_alert=True) is True
    )
    invalid = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    assert await error(api, "answerCallbackQuery", callback_query_id=query_id) == (400, invalid)
    assert await error(api, "answerCallbackQuery", callback_query_id="12345") == (400, invalid)
    [query] = await client.callback_queries(BOT_ID)
    assert query["answer"] == {"text": "Saved", "show_alert": True, "url": None, "cache_time": 0}


async def test_injected_callback_queries_can_be_answered(api: BotApi, client: EmulatorClient) -> None:
    update = {
        "callback_query": {"id": "777", "from": {"id": 5, "is_bot": False, "first_name": "U"}, "data": "d"}
    }
    await client.inject_update(BOT_ID, update)
    assert await api.ok("answerCallbackQuery", callback_query_id="777") is True


async def test_form_encoded_edit(api: BotApi) -> None:
    await sent(api)
    status, body = await api.form(
        "editMessageText", chat_id=str(CHAT), message_id="1", text="form", reply_markup=json.dumps(KEYBOARD)
    )
    assert status == 200, body
    assert body["result"]["reply_markup"] == KEYBOARD
