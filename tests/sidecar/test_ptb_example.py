"""examples/ptb-bot behind the sidecar, with a fake Bot API for its outgoing calls."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from .conftest import REPO, MakeSidecar, update, wait_for

TOKEN = "123456:PTB_example_TOKEN_never_in_the_logs_x"


def load_ptb_bot() -> Any:
    spec = importlib.util.spec_from_file_location("ptb_bot", REPO / "examples" / "ptb-bot" / "ptb_bot.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_ptb_bot_answers_after_handling_and_never_logs_its_token(
    make_sidecar: MakeSidecar,
    bot_socket: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    sent: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def bot_api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            result: dict[str, Any] = {
                "id": 123456,
                "is_bot": True,
                "first_name": "Echo",
                "username": "echo_bot",
            }
        else:
            sent.append({"method": method, **dict(await request.post())})
            await release.wait()  # the handler is still running while this waits
            result = {"message_id": 1, "date": 0, "chat": {"id": 4242, "type": "private"}, "text": "x"}
        return web.json_response({"ok": True, "result": result})

    api = web.Application()
    api.router.add_post("/bot{token}/{method}", bot_api)
    api_runner = web.AppRunner(api, access_log=None)
    await api_runner.setup()
    await web.TCPSite(api_runner, "127.0.0.1", 0).start()
    port = api_runner.addresses[0][1]

    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_SOCKET", str(bot_socket))
    monkeypatch.setenv("BOT_API_SERVER", f"http://127.0.0.1:{port}")
    caplog.set_level(logging.DEBUG)  # the chattiest level: httpx would log every URL at INFO

    import tgbot_ptb

    ptb = load_ptb_bot()
    stop = asyncio.Event()
    serving = asyncio.create_task(tgbot_ptb.serve(ptb.build_application(), stop=stop))
    try:
        await wait_for(bot_socket.exists, timeout=10)
        running = await make_sidecar()
        answer = asyncio.create_task(running.post(update(1, "hi ptb")))
        await wait_for(lambda: len(sent) == 1)
        await asyncio.sleep(0.3)
        assert not answer.done()  # no answer while the handler's sendMessage is in progress
        release.set()
        status, _, body = await answer
        assert (status, body) == (200, b"{}")
        assert sent[0]["method"] == "sendMessage"
        assert (sent[0]["chat_id"], sent[0]["text"]) == ("4242", "hi ptb")
        assert (await running.post(b"[]"))[0] == 400  # the sidecar's shape check
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)
        await api_runner.cleanup()
    assert "getMe" in caplog.text  # PTB did log its calls...
    assert TOKEN not in caplog.text  # ...and never the token
    assert TOKEN.split(":", 1)[1] not in caplog.text
