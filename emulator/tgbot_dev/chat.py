"""One private chat between you and the bot, through the emulator's control API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tgbot_emulator import EmulatorClient

#: The user tgbot-dev plays (a private chat has the user's id).
USER_ID = 100_000_001
USER_NAME = "Developer"


@dataclass(frozen=True)
class Button:
    message_id: int
    text: str
    callback_data: str | None
    url: str | None


@dataclass(frozen=True)
class Event:
    """Something the bot did that the user sees: a message, an edit, a deletion, a notice."""

    kind: str  # "message", "edited", "deleted", "notice"
    message_id: int | None
    text: str
    buttons: tuple[Button, ...] = ()


def _describe(message: dict[str, Any]) -> str:
    text = message.get("text") or message.get("caption")
    kind = message.get("kind") or "text"
    if kind not in ("text", "other"):
        return f"[{kind}] {text}" if text else f"[{kind}]"
    return str(text or "")


def _buttons(message_id: int, markup: Any) -> tuple[Button, ...]:
    if not isinstance(markup, dict):
        return ()
    found = []
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if isinstance(button, dict):
                found.append(
                    Button(
                        message_id,
                        str(button.get("text", "")),
                        button.get("callback_data"),
                        button.get("url"),
                    )
                )
    return tuple(found)


@dataclass
class Chat:
    client: EmulatorClient
    bot_id: int
    #: The buttons of the most recent bot message that has some; typing "2" presses the second.
    buttons: tuple[Button, ...] = ()
    _seen: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    _answered: set[str] = field(default_factory=set)

    async def send(self, text: str) -> int:
        """A message from the user; ``/command args`` arrives as a command (with its entity)."""
        if text.startswith("/") and len(text) > 1 and not text[1].isspace():
            command, _, args = text[1:].partition(" ")
            return await self.client.send_command(
                self.bot_id, command, args or None, chat_id=USER_ID, user_id=USER_ID, first_name=USER_NAME
            )
        return await self.client.send_user_message(
            self.bot_id, text, chat_id=USER_ID, user_id=USER_ID, first_name=USER_NAME
        )

    async def press(self, number: int) -> int:
        """Press button ``number`` (1-based) of the latest keyboard; returns the update id."""
        if not 1 <= number <= len(self.buttons):
            raise LookupError(f"there is no button {number}")
        button = self.buttons[number - 1]
        if button.callback_data is None:
            raise LookupError(f"button {number} opens {button.url or 'something else'}; nothing to press")
        answer = await self.client.press_button(
            self.bot_id,
            button.message_id,
            callback_data=button.callback_data,
            chat_id=USER_ID,
            user_id=USER_ID,
            first_name=USER_NAME,
        )
        return int(answer["update_id"])

    async def events(self) -> list[Event]:
        """What changed in the chat since the last call, in order."""
        found: list[Event] = []
        for message in await self.client.transcript(self.bot_id, USER_ID):
            if not message.get("from_bot"):
                continue
            message_id = int(message["message_id"])
            state = (message.get("text"), message.get("caption"), repr(message.get("reply_markup")))
            deleted = bool(message.get("deleted"))
            before = self._seen.get(message_id)
            self._seen[message_id] = (*state, deleted)
            if before == (*state, deleted):
                continue
            buttons = _buttons(message_id, message.get("reply_markup"))
            if before is None and not deleted:
                found.append(Event("message", message_id, _describe(message), buttons))
            elif deleted:
                if before is not None:
                    found.append(Event("deleted", message_id, _describe(message)))
                continue
            else:
                found.append(Event("edited", message_id, _describe(message), buttons))
            if buttons or any(b.message_id == message_id for b in self.buttons):
                self.buttons = buttons
        for query in await self.client.callback_queries(self.bot_id):
            answer = query.get("answer")
            if query.get("answered") and query["callback_query_id"] not in self._answered:
                self._answered.add(query["callback_query_id"])
                text = answer.get("text") if isinstance(answer, dict) else None
                if text:
                    found.append(Event("notice", int(query["message_id"]), str(text)))
        return found
