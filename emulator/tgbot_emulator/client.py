"""EmulatorClient: async client of the control API (in-process or a subprocess)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, cast

import aiohttp


class EmulatorClientError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body


class EmulatorTimeoutError(EmulatorClientError, TimeoutError):
    """wait_delivered ran out of time (HTTP 408)."""


class EmulatorClient:
    """Mirrors the /_emulator/ routes 1:1. Use ``async with`` or call :meth:`close`."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Created lazily: a client may be built outside a running event loop.
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _request_bytes(self, path: str) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        async with self._session.get(f"{self.base_url}/_emulator{path}") as response:
            if response.status >= 400:
                raise EmulatorClientError(response.status, await response.json(content_type=None))
            return await response.read()

    async def _request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        wait_seconds: float | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        request_timeout = aiohttp.ClientTimeout(total=wait_seconds) if wait_seconds is not None else None
        async with self._session.request(
            method, f"{self.base_url}/_emulator{path}", json=json, params=params, timeout=request_timeout
        ) as response:
            body = await response.json(content_type=None)
            if response.status == 408:
                raise EmulatorTimeoutError(response.status, body)
            if response.status >= 400:
                raise EmulatorClientError(response.status, body)
            return body

    async def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._request("GET", "/health"))

    async def reset(self) -> None:
        await self._request("POST", "/reset")

    async def add_bot(self, token: str, username: str, first_name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"token": token, "username": username}
        if first_name is not None:
            body["first_name"] = first_name
        return cast(dict[str, Any], await self._request("POST", "/bots", body))

    async def list_bots(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", "/bots"))

    async def replace_token(self, bot_id: int, new_token: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], await self._request("POST", f"/bots/{bot_id}/token", {"token": new_token})
        )

    async def send_user_message(
        self,
        bot_id: int,
        text: str,
        chat_id: int | None = None,
        user_id: int | None = None,
        first_name: str | None = None,
    ) -> int:
        body: dict[str, Any] = {"text": text}
        for key, value in (("chat_id", chat_id), ("user_id", user_id), ("first_name", first_name)):
            if value is not None:
                body[key] = value
        answer = await self._request("POST", f"/bots/{bot_id}/messages", body)
        return int(answer["update_id"])

    async def inject_update(self, bot_id: int, update: dict[str, Any]) -> int:
        answer = await self._request("POST", f"/bots/{bot_id}/updates", {"update": update})
        return int(answer["update_id"])

    async def sent_messages(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/sent"))

    async def calls(
        self, bot_id: int, method: str | None = None, reveal_secrets: bool = False
    ) -> list[dict[str, Any]]:
        params = {"reveal_secrets": "true" if reveal_secrets else "false"}
        if method is not None:
            params["method"] = method
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/calls", params=params))

    async def webhook(self, bot_id: int, reveal_secrets: bool = False) -> dict[str, Any]:
        params = {"reveal_secrets": "true" if reveal_secrets else "false"}
        return cast(dict[str, Any], await self._request("GET", f"/bots/{bot_id}/webhook", params=params))

    async def deliveries(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/deliveries"))

    async def updates(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/updates"))

    async def wait_delivered(
        self,
        bot_id: int,
        update_ids: list[int],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        body = {"update_ids": list(update_ids), "timeout": timeout}
        # The HTTP request must outlive the server-side wait so a 408 can arrive.
        path = f"/bots/{bot_id}/wait-delivered"
        answer = await self._request("POST", path, body, wait_seconds=timeout + 10)
        return cast(dict[str, Any], answer)

    async def add_fault(
        self,
        kind: str,
        count: int = 1,
        method: str | None = None,
        bot_id: int | None = None,
        retry_after: int | None = None,
        for_seconds: float | None = None,
    ) -> None:
        """The next ``count`` matching calls fail; with ``for_seconds``, every matching call
        fails for that long (a flood wait, ``retry_after`` counting down)."""
        body: dict[str, Any] = {"kind": kind, "count": count}
        optional = (("method", method), ("bot_id", bot_id), ("retry_after", retry_after))
        for key, value in (*optional, ("for_seconds", for_seconds)):
            if value is not None:
                body[key] = value
        await self._request("POST", "/faults", body)

    async def clear_faults(self) -> None:
        await self._request("DELETE", "/faults")

    async def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", "/faults"))

    # -- conversations -----------------------------------------------------------

    async def press_button(
        self,
        bot_id: int,
        message_id: int,
        *,
        callback_data: str | None = None,
        text: str | None = None,
        chat_id: int | None = None,
        user_id: int | None = None,
        first_name: str | None = None,
    ) -> dict[str, Any]:
        """Press an inline button of a bot message (by callback_data or by its text).

        Returns ``{"update_id", "update", "callback_query_id"}``; the bot's
        answerCallbackQuery shows up in :meth:`callback_queries`.
        """
        body: dict[str, Any] = {"message_id": message_id}
        optional = (
            ("callback_data", callback_data),
            ("text", text),
            ("chat_id", chat_id),
            ("user_id", user_id),
            ("first_name", first_name),
        )
        body.update({key: value for key, value in optional if value is not None})
        return cast(dict[str, Any], await self._request("POST", f"/bots/{bot_id}/press", body))

    async def send_command(
        self,
        bot_id: int,
        command: str,
        args: str | None = None,
        *,
        mention: bool = False,
        chat_id: int | None = None,
        user_id: int | None = None,
        first_name: str | None = None,
    ) -> int:
        """A user sends ``/command [args]`` (``/command@bot`` with mention); returns the update_id."""
        body: dict[str, Any] = {"command": command, "mention": mention}
        optional = (("args", args), ("chat_id", chat_id), ("user_id", user_id), ("first_name", first_name))
        body.update({key: value for key, value in optional if value is not None})
        answer = await self._request("POST", f"/bots/{bot_id}/commands", body)
        return int(answer["update_id"])

    async def chats(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/chats"))

    async def transcript(self, bot_id: int, chat_id: int) -> list[dict[str, Any]]:
        """Every message of a chat, users' and the bot's, as it is now (edited, deleted flags)."""
        path = f"/bots/{bot_id}/chats/{chat_id}/messages"
        return cast(list[dict[str, Any]], await self._request("GET", path))

    async def callback_queries(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/callback-queries"))

    async def files(self, bot_id: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._request("GET", f"/bots/{bot_id}/files"))

    async def file_content(self, bot_id: int, file_id: str) -> bytes:
        return await self._request_bytes(f"/bots/{bot_id}/files/{file_id}")

    async def profile(self, bot_id: int) -> dict[str, Any]:
        """Commands per scope and language, names, descriptions, menu buttons, admin rights."""
        return cast(dict[str, Any], await self._request("GET", f"/bots/{bot_id}/profile"))
