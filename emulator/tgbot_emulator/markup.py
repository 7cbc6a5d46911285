"""reply_markup checked the way the Bot API server checks it, with its error texts."""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_request
from .params import Params, get_json

MAX_CALLBACK_DATA_BYTES = 64
# Fields that give an inline button something to do; a button needs exactly one.
INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def parse_reply_markup(params: Params) -> dict[str, Any] | None:
    if params.get("reply_markup") in (None, ""):
        return None
    try:
        markup = get_json(params, "reply_markup")
    except ApiError:
        raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad_request("object expected as reply markup")
    if "inline_keyboard" in markup:
        check_inline_keyboard(markup["inline_keyboard"])
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('field "keyboard" must be an Array of Arrays')
    return markup


def check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            problem = _inline_button_problem(button)
            if problem is not None:
                raise bad_request(f"can't parse inline keyboard button: {problem}")
            data = button.get("callback_data")
            if isinstance(data, str) and len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if isinstance(url, str) and url and not _looks_like_url(url):
                raise bad_request("BUTTON_URL_INVALID")


def _inline_button_problem(button: Any) -> str | None:
    if not isinstance(button, dict):
        return "InlineKeyboardButton must be an Object"
    if not isinstance(button.get("text"), str):
        return 'Can\'t find field "text"'
    if not any(button.get(action) not in (None, "") for action in INLINE_ACTIONS):
        return "Text buttons are unallowed in the inline keyboard"
    return None


def _looks_like_url(url: str) -> bool:
    lowered = url.lower()
    return lowered.startswith(("http://", "https://", "tg://")) and len(lowered.split("://", 1)[1]) > 0


def inline_buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every inline button of a message's markup, row by row."""
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        return []
    rows = [row for row in markup["inline_keyboard"] if isinstance(row, list)]
    return [button for row in rows for button in row if isinstance(button, dict)]
