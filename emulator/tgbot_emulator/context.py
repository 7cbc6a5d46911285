"""What every Bot API method handler gets (the call's context) and gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import EmulatorConfig
from .params import Params
from .state import Bot, EmulatorState, Via


@dataclass
class CallContext:
    state: EmulatorState
    config: EmulatorConfig
    bot: Bot
    via: Via = "api"
    reply_to_update_id: int | None = None


@dataclass
class MethodResult:
    result: Any
    description: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": True, "result": self.result}
        if self.description is not None:
            out["description"] = self.description
        return out


Handler = Callable[[CallContext, Params], Awaitable[MethodResult]]
