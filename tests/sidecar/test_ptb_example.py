"""examples/ptb-bot behind the sidecar, with a fake Bot API for its outgoing calls."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from aiohttp import web

from .conftest import REPO, MakeSidecar, update, wait_for


def load_ptb_bot() -> Any:
    spec = importlib.util.spec_from_file_location("ptb_bot", REPO / "examples" / "ptb-bot" / "ptb_bot.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_ptb_bot_echoes_through_the_api(make_sidecar: MakeSidecar, bot_socket: Path):
    sent: list[dict[str, Any]] = []

    async def bot_api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            result: dict[str, Any] = {"id": 1, "is_bot": True, "first_name": "Echo", "username": "echo_bot"}
        else:
            sent.append({"method": method, **dict(await request.post())})
            result = {"message_id": 1, "date": 0, "chat": {"id": 4242, "type": "private"}, "text": "x"}
        return web.json_response({"ok": True, "result": result})

    api = web.Application()
    api.router.add_post("/bot{token}/{method}", bot_api)
    api_runner = web.AppRunner(api, access_log=None)
    await api_runner.setup()
    site = web.TCPSite(api_runner, "127.0.0.1", 0)
    await site.start()
    port = api_runner.addresses[0][1]

    ptb = load_ptb_bot()
    application = ptb.build_application("123456:TEST-token", f"http://127.0.0.1:{port}")
    bot_runner = web.AppRunner(ptb.build_app(application), access_log=None)
    try:
        async with application:
            await application.start()
            await bot_runner.setup()
            await web.UnixSite(bot_runner, str(bot_socket)).start()
            running = await make_sidecar()
            status, _, body = await running.post(update(1, "hi ptb"))
            # Answered before handling: an empty 200, the echo goes out as an API call.
            assert (status, body) == (200, b"")
            await wait_for(lambda: len(sent) == 1)
            assert sent[0]["method"] == "sendMessage"
            assert (sent[0]["chat_id"], sent[0]["text"]) == ("4242", "hi ptb")
            assert (await running.post(b"[]"))[0] == 400  # the sidecar's shape check
            await bot_runner.cleanup()
            await application.stop()
    finally:
        await api_runner.cleanup()
