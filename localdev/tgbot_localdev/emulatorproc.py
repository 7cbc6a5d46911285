"""``tgbot-emulator`` as a child process on an address pods reach, with a small synchronous client
of its control API: the pod tests and ``tgbot-demo --pods`` share it (the host demo, a coroutine,
uses ``tgbot_emulator.EmulatorClient``)."""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import select
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .processes import LocalProcess


class EmulatorError(RuntimeError):
    """The emulator did not start or refused a control call."""


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    @contextlib.contextmanager
    def start(cls, host: str, folder: Path, *extra_args: str) -> Iterator[Emulator]:
        """Listen on ``host`` (a free port); stopped when the block ends."""
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "emulator.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tgbot_emulator",
                    f"--listen={host}:0",
                    "--allow-local-webhooks",
                    "--retry-cap=2",
                    "--delivery-timeout=30",
                    "--no-setwebhook-rate-limit",
                    *extra_args,
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 60)
            line = process.stdout.readline().decode() if ready else ""
            if "listening on " not in line:
                raise EmulatorError(f"emulator did not start: {line!r}\n{log.read_text()[-2000:]}")
            yield cls(url=line.split("listening on ", 1)[1].strip(), process=process, log=log)
        finally:
            LocalProcess("emulator", process, log).stop()

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our emulator's http URL
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our emulator
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            # The path of a Bot API call holds the token: name the method only.
            shown = path if "/_emulator/" in path else path.rsplit("/", 1)[-1]
            raise EmulatorError(f"emulator {method} {shown}: {error.code} {error.read()[:500]!r}") from None

    def control(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        return self.request(method, f"/_emulator{path}", body, timeout)

    def add_bot(self, username: str, token: str | None = None) -> Bot:
        """A new bot; a random token unless one is given."""
        if token is None:
            bot_id = random.randint(10**8, 10**9 - 1)  # noqa: S311 - an id, not a secret
            token = f"{bot_id}:AA{secrets.token_urlsafe(24)}"
        created = self.control("POST", "/bots", {"token": token, "username": username})
        return Bot(id=int(created["id"]), token=token, username=username, emulator=self)


@dataclass
class Bot:
    id: int
    token: str
    username: str
    emulator: Emulator

    def __repr__(self) -> str:  # never the token
        return f"Bot(id={self.id}, username={self.username!r})"

    def _get(self, what: str) -> Any:
        return self.emulator.control("GET", f"/bots/{self.id}/{what}")

    def send(self, text: str, chat_id: int | None = None) -> int:
        body: dict[str, Any] = {"text": text}
        if chat_id is not None:
            body["chat_id"] = chat_id
        return int(self.emulator.control("POST", f"/bots/{self.id}/messages", body)["update_id"])

    def wait_delivered(self, update_ids: list[int], timeout: float = 120) -> None:
        self.emulator.control(
            "POST",
            f"/bots/{self.id}/wait-delivered",
            {"update_ids": update_ids, "timeout": timeout},
            timeout + 10,
        )

    def api(self, method: str, body: dict[str, Any] | None = None) -> Any:
        """A Bot API call as the bot itself makes it; its ``result``."""
        answer = self.emulator.request("POST", f"/bot{self.token}/{method}", body or {})
        return answer["result"]

    def sent(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("sent")
        return result

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(f"calls?method={method}" if method else "calls")
        return result

    def webhook(self, reveal_secrets: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._get("webhook?reveal_secrets=true" if reveal_secrets else "webhook")
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("deliveries")
        return result

    def updates(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("updates")
        return result

    def replies(self) -> dict[int, list[str]]:
        """Webhook replies by the update they answered."""
        out: dict[int, list[str]] = {}
        for message in self.sent():
            if message.get("via") == "webhook_reply" and message.get("reply_to_update_id") is not None:
                out.setdefault(int(message["reply_to_update_id"]), []).append(str(message.get("text")))
        return out
