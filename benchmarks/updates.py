"""Realistic Telegram Update bodies (a text message in a private chat, as Telegram sends it)."""

from __future__ import annotations

import json
from typing import Any

SECRET_TOKEN = "bench_SECRET-token_0123456789abcdefABCDEF0123456789abcdefABCDEF01"
HEADER = "X-Telegram-Bot-Api-Secret-Token"

TEXTS = ("Hello there!", "/start", "What's the weather like in Berlin tomorrow?", "👍 thanks")


def update(update_id: int, chat: int = 0) -> dict[str, Any]:
    """A message update; ``chat`` picks one of many users."""
    user_id = 100_000_000 + chat
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1000 + update_id % 100_000,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "username": f"ada_{chat}",
                "language_code": "en",
            },
            "chat": {
                "id": user_id,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "username": f"ada_{chat}",
                "type": "private",
            },
            "date": 1_760_000_000 + update_id % 1_000_000,
            "text": TEXTS[update_id % len(TEXTS)],
        },
    }


def body(update_id: int, chat: int = 0) -> bytes:
    return json.dumps(update(update_id, chat), separators=(",", ":"), ensure_ascii=False).encode()


def template() -> tuple[bytes, bytes]:
    """The body split around the update_id (the load generators fill it in per request)."""
    marker = 987_654_321_987
    text = body(marker)
    head, _, tail = text.partition(str(marker).encode())
    return head, tail
