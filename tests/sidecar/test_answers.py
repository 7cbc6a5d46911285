"""Every answer of the webhook port, with a real aiogram dispatcher (or a scripted one) behind it."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .conftest import TOKEN, VIRTUAL_TIME, EchoBot, FakeUpstream, MakeSidecar, raw_request, update, wait_for


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary)[1:-1]:
        head, _, value = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        fields[name] = value
    return fields


async def test_webhook_reply_from_aiogram_comes_back_intact(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    status, headers, body = await running.post(update(1, "hello there"))
    assert status == 200
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=webhookBoundary")
    fields = multipart_fields(headers["Content-Type"], body)
    assert fields["method"] == b"sendMessage"
    assert fields["chat_id"] == b"4242"
    assert fields["text"] == b"hello there"
    assert echo_bot.updates == [1]


async def test_multipart_reply_with_a_file(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    status, headers, body = await running.post(update(2, "/file please"))
    assert status == 200
    fields = multipart_fields(headers["Content-Type"], body)
    assert fields["method"] == b"sendDocument"
    attachment = fields["document"].removeprefix(b"attach://").decode()
    assert fields[attachment] == b"/file please"
    assert b'filename="echo.txt"' in body


async def test_json_reply_when_no_handler_answers(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    status, headers, body = await running.post(update(3, text=None))
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/json", {})
    assert echo_bot.updates == [3]


async def test_upstream_bytes_pass_unchanged_both_ways(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    reply = b"method=sendMessage&chat_id=1&text=%F0%9F%91%8B"

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-www-form-urlencoded"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(reply), 7):
            await response.write(reply[i : i + 7])
        await response.write_eof()
        return response

    fake_upstream.handler = chunked
    running = await make_sidecar()
    sent = update(4, "ünïcode ✓")
    status, headers, body = await running.post(sent)
    assert (status, headers["Content-Type"], body) == (200, "application/x-www-form-urlencoded", reply)
    assert fake_upstream.bodies == [sent]
    forwarded = fake_upstream.headers[0]
    assert forwarded["Content-Type"] == "application/json"
    assert forwarded["Host"] == "bot"
    # The dispatcher does not need the secret, so it never sees it.
    assert "X-Telegram-Bot-Api-Secret-Token" not in forwarded


async def test_rejections_are_never_forwarded(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(max_body_bytes=1000)
    base = running.url.rsplit("/", 1)[0]

    assert (await running.post(update(1), url=base + "/other"))[0] == 404
    async with running.session.get(running.url) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
    assert (await running.post(update(1), token=None))[0] == 401
    assert (await running.post(update(1), token="wrong"))[0] == 401
    assert (await running.post(update(1), token=TOKEN + "x"))[0] == 401
    assert (await running.post(b"{" + b" " * 2000 + b"}"))[0] == 413
    for bad in (b"not json", b"[1, 2]", b'{"update_id": "1"}', b'{"update_id": true}', b"{}", b"\xff\xfe"):
        assert (await running.post(bad))[0] == 400, bad
    assert fake_upstream.bodies == []
    metrics = await running.metrics()
    for reason, count in [("not_found", 1), ("method", 1), ("token", 3), ("too_large", 1), ("shape", 6)]:
        assert f'tgbot_sidecar_requests_total{{outcome="rejected",reason="{reason}"}} {count}.0' in metrics


async def test_address_outside_allowed_networks_is_403(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(allow_network=["149.154.160.0/20"])
    assert (await running.post(update(1)))[0] == 403
    assert fake_upstream.bodies == []


@VIRTUAL_TIME  # the kept-alive connection is read until a 1 s timeout: virtual, not slept through
async def test_chunked_request_body_is_limited_while_reading(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(max_body_bytes=100)
    host, port = running.sidecar.webhook_address
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = await raw_request(host, port, head + b"40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")
    body = b'{"update_id": 9}'
    ok = await raw_request(host, port, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), read_timeout=1)
    assert ok.startswith(b"HTTP/1.1 200 ")
    assert fake_upstream.bodies == [body]


async def test_smuggling_shapes_are_refused(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    host, port = running.sidecar.webhook_address
    prefix = f"POST /webhook HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n"
    for headers in (
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length : 5\r\n",
        "Content-Length: 5\r\n continued\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
    ):
        answer = await raw_request(host, port, (prefix + headers + "\r\nhello").encode())
        assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 501"), headers
    assert fake_upstream.bodies == []


async def test_keep_alive_connection_serves_many_updates(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    for update_id in range(10, 30):
        assert (await running.post(update(update_id)))[0] == 200
    assert echo_bot.updates == list(range(10, 30))
    assert len(running.sidecar.connections) == 1


async def test_upstream_socket_missing_is_503(make_sidecar: MakeSidecar):
    running = await make_sidecar()
    status, headers, _ = await running.post(update(1))
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert 'outcome="upstream_error",reason="unavailable"} 1.0' in await running.metrics()


@VIRTUAL_TIME
async def test_slow_upstream_is_504(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    fake_upstream.handler = slow
    running = await make_sidecar(upstream_timeout=0.2)
    assert (await running.post(update(1)))[0] == 504
    # The timed-out connection is not reused for the next update: it gets its own answer.
    fake_upstream.handler = None
    assert (await running.post(update(2)))[0] == 200


async def test_upstream_errors_are_502(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    statuses = iter([500, 401, 302])

    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=next(statuses), text="no")

    fake_upstream.handler = failing
    running = await make_sidecar()
    assert [(await running.post(update(i)))[0] for i in (1, 2, 3)] == [502, 502, 502]
    metrics = await running.metrics()
    assert 'reason="status_5xx"} 1.0' in metrics
    assert 'reason="status_4xx"} 1.0' in metrics
    assert 'reason="status_other"} 1.0' in metrics


async def test_upstream_restart(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    assert (await running.post(update(1)))[0] == 200
    await echo_bot.stop()
    during = [(await running.post(update(i)))[0] for i in (2, 3)]
    assert all(500 <= status < 600 for status in during), during
    await echo_bot.start()
    after = [(await running.post(update(i)))[0] for i in (2, 3, 4)]
    assert after == [200, 200, 200]
    assert echo_bot.updates[-3:] == [2, 3, 4]


async def test_duplicate_is_answered_without_forwarding(echo_bot: EchoBot, make_sidecar: MakeSidecar):
    running = await make_sidecar()
    first = await running.post(update(7))
    again = await running.post(update(7))
    assert first[0] == 200
    assert first[2]
    assert (again[0], again[2]) == (200, b"")
    assert echo_bot.updates == [7]
    assert 'outcome="duplicate",reason=""} 1.0' in await running.metrics()


async def test_concurrent_duplicates_wait_for_the_first(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    release = asyncio.Event()

    async def gated(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"method": "sendMessage"})

    fake_upstream.handler = gated
    running = await make_sidecar()
    calls = [asyncio.create_task(running.post(update(8))) for _ in range(3)]
    await wait_for(lambda: len(fake_upstream.bodies) == 1)
    await asyncio.sleep(0.05)
    release.set()
    results = sorted(await asyncio.gather(*calls), key=lambda r: len(r[2]))
    assert [r[0] for r in results] == [200, 200, 200]
    assert [r[2] for r in results[:2]] == [b"", b""]
    assert json.loads(results[2][2]) == {"method": "sendMessage"}
    assert len(fake_upstream.bodies) == 1


async def test_failed_first_delivery_is_not_remembered(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    answers = iter([500, 200])

    async def flaky(request: web.Request) -> web.Response:
        return web.json_response({}, status=next(answers))

    fake_upstream.handler = flaky
    running = await make_sidecar()
    assert (await running.post(update(5)))[0] == 502
    assert (await running.post(update(5)))[0] == 200
    assert len(fake_upstream.bodies) == 2


async def test_more_than_max_in_flight_is_503(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    release = asyncio.Event()

    async def gated(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    fake_upstream.handler = gated
    running = await make_sidecar(max_in_flight=2)
    calls = [asyncio.create_task(running.post(update(i))) for i in (1, 2)]
    await wait_for(lambda: len(fake_upstream.bodies) == 2)
    status, headers, _ = await running.post(update(3))
    assert (status, headers["Retry-After"]) == (503, "1")
    assert "tgbot_sidecar_in_flight 2.0" in await running.metrics()
    release.set()
    assert [r[0] for r in await asyncio.gather(*calls)] == [200, 200]
    assert (await running.post(update(3)))[0] == 200
