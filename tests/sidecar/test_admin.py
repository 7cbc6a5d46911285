"""The admin port, metrics, drain in-process, and a request path that never blocks the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from blockbuster import BlockingError, blockbuster_ctx

from .conftest import VIRTUAL_TIME, EchoBot, FakeUpstream, KubeletSecret, MakeSidecar, update, wait_for


async def test_probes_and_metrics(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    async with running.session.get(running.admin_url + "/healthz") as response:
        assert (response.status, await response.text()) == (200, "ok\n")
    async with running.session.get(running.admin_url + "/readyz") as response:
        assert (response.status, await response.text()) == (200, "ready\n")
    # The admin port does not filter addresses and the webhook port does not serve probes.
    async with running.session.get(running.url.replace("/webhook", "/healthz")) as response:
        assert response.status == 404
    for update_id in (1, 2, 2):
        await running.post(update(update_id))
    await running.post(update(3), token="nope")
    metrics = await running.metrics()
    assert 'tgbot_sidecar_requests_total{outcome="forwarded",reason=""} 2.0' in metrics
    assert 'tgbot_sidecar_requests_total{outcome="duplicate",reason=""} 1.0' in metrics
    assert 'tgbot_sidecar_requests_total{outcome="rejected",reason="token"} 1.0' in metrics
    assert "tgbot_sidecar_forward_duration_seconds_count 2.0" in metrics
    assert 'tgbot_sidecar_forward_duration_seconds_bucket{le="+Inf"} 2.0' in metrics
    assert "tgbot_sidecar_in_flight 0.0" in metrics
    assert "tgbot_sidecar_secret_token_present 1.0" in metrics
    # Our own registry: no process or GC collectors from the default one.
    assert "python_gc" not in metrics


async def test_readiness_can_require_the_upstream(make_sidecar: MakeSidecar, bot_socket: Path):
    running = await make_sidecar(ready_requires_upstream=True)
    async with running.session.get(running.admin_url + "/readyz") as response:
        assert response.status == 503
        assert "upstream" in await response.text()
    bot = EchoBot(bot_socket)
    await bot.start()
    try:
        running.sidecar._upstream_probe = (0.0, False)  # skip the 1 s probe cache
        async with running.session.get(running.admin_url + "/readyz") as response:
            assert response.status == 200
    finally:
        await bot.stop()


@VIRTUAL_TIME
async def test_drain_finishes_in_flight_and_refuses_new(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    release = asyncio.Event()

    async def gated(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    fake_upstream.handler = gated
    running = await make_sidecar()
    call = asyncio.create_task(running.post(update(1)))
    await wait_for(lambda: len(fake_upstream.bodies) == 1)
    drain = asyncio.create_task(running.sidecar.drain(grace=5))
    await asyncio.sleep(0.05)
    assert not drain.done()
    async with running.session.get(running.admin_url + "/readyz") as response:
        assert response.status == 503
    release.set()
    status, headers, _ = await call
    assert (status, headers["Connection"]) == (200, "close")
    assert await drain is True


@VIRTUAL_TIME
async def test_drain_gives_up_after_the_grace_period(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    release = asyncio.Event()

    async def never(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    fake_upstream.handler = never
    running = await make_sidecar()
    call = asyncio.create_task(running.post(update(1)))
    await wait_for(lambda: len(fake_upstream.bodies) == 1)
    assert await running.sidecar.drain(grace=0.1) is False
    status, headers, _ = await call  # cut off with an answer that makes Telegram retry
    assert (status, headers["Connection"]) == (503, "close")
    release.set()


async def test_request_path_never_blocks_the_event_loop(
    echo_bot: EchoBot, make_sidecar: MakeSidecar, secret: KubeletSecret
):
    running = await make_sidecar()
    tokens = running.sidecar.tokens
    assert tokens is not None
    await running.post(update(1))  # warm up imports and connections outside the watch
    with blockbuster_ctx("tgbot_sidecar"):
        results = await asyncio.gather(*(running.post(update(i)) for i in range(2, 40)))
        # File reloads happen in the background too; they must stay off the loop.
        loads = tokens.reloads
        secret.write({"secret-token": "x" * 20})
        await wait_for(lambda: tokens.reloads > loads)
        rejected = await running.post(update(99))
        await running.post(b"not json", token="x" * 20)
        await running.metrics()
        # The guard is live: the same file check done on the loop would have been caught.
        with pytest.raises(BlockingError):
            tokens.refresh()
    assert {r[0] for r in results} == {200}
    assert rejected[0] == 401
