"""How the chat looks in a terminal."""

from __future__ import annotations

from .chat import Event


def render(event: Event) -> str:
    if event.kind == "message":
        head = f"bot: {event.text}"
    elif event.kind == "edited":
        head = f"bot (edited #{event.message_id}): {event.text}"
    elif event.kind == "deleted":
        head = f"bot deleted #{event.message_id}"
    else:
        head = f"bot (notice): {event.text}"
    if not event.buttons:
        return head
    keys = "  ".join(f"[{n}] {b.text}" for n, b in enumerate(event.buttons, 1))
    return f"{head}\n     {keys}"
