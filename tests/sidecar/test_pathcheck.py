"""A dispatcher serving another path: one clear error line and /readyz says why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web

from tgbot_sidecar.pathcheck import PathCheck

from .conftest import EchoBot, FakeUpstream, MakeSidecar, Running, update


async def readyz(running: Running) -> tuple[int, str]:
    async with running.session.get(running.admin_url + "/readyz") as response:
        return response.status, await response.text()


async def test_a_bot_on_another_path_gets_one_error_line_and_not_ready(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, bot_socket: Path, caplog: pytest.LogCaptureFixture
):
    # The echo bot serves /webhook; the sidecar is told to forward to /bot.
    running = await make_sidecar(upstream="http://bot/bot")
    assert (await readyz(running))[0] == 200
    with caplog.at_level(logging.ERROR, logger="tgbot_sidecar"):
        for update_id in range(1, 6):
            status, _, _ = await running.post(update(update_id))
            assert status == 502
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    expected = (
        f"the dispatcher (unix:{bot_socket}) answered 404 for POST /bot: is it serving that path? "
        "(the bot contract: docs/bot-contract.md)"
    )
    assert errors == [expected]  # once, not per update
    status, body = await readyz(running)
    assert status == 503
    assert expected in body.splitlines()
    assert echo_bot.updates == []


async def test_readiness_comes_back_when_a_forward_succeeds(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
):
    wrong = {"path": True}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404) if wrong["path"] else web.json_response({})

    fake_upstream.handler = handler
    running = await make_sidecar()
    with caplog.at_level(logging.ERROR, logger="tgbot_sidecar"):
        assert (await running.post(update(1)))[0] == 502
        assert "answered 404 for POST /webhook" in (await readyz(running))[1]
        wrong["path"] = False  # the bot was fixed
        assert (await running.post(update(1)))[0] == 200
        assert await readyz(running) == (200, "ready\n")
        wrong["path"] = True  # broken again: reported again at once
        assert (await running.post(update(2)))[0] == 502
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2


async def test_a_500_is_not_a_wrong_path(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=500)

    fake_upstream.handler = handler
    running = await make_sidecar()
    assert (await running.post(update(1)))[0] == 502
    assert await readyz(running) == (200, "ready\n")


def test_the_problem_expires_without_new_404s_and_logs_are_rate_limited(caplog: pytest.LogCaptureFixture):
    check = PathCheck("unix:/run/bot/bot.sock", "/webhook", log_every=600, hold=30)
    with caplog.at_level(logging.ERROR, logger="tgbot_sidecar"):
        check.answered(405, 0)
        assert check.problem(29) is not None
        assert "answered 405 for POST /webhook" in (check.problem(29) or "")
        # Readiness takes the pod out of its Service: a fixed bot must get traffic again.
        assert check.problem(31) is None
        check.answered(404, 100)
        assert check.problem(101) is not None
        check.answered(404, 601)
    assert len(caplog.records) == 2  # at 0 and at 601, not at 100
