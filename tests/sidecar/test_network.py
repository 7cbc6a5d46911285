"""The address filter end to end: X-Forwarded-For spoofing, trusted proxies, IPv6 and mapped IPv4."""

from __future__ import annotations

import pytest

from .conftest import TOKEN, FakeUpstream, MakeSidecar, raw_request, update

TELEGRAM = "149.154.167.220"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(allow_network=["149.154.160.0/20"])
    status, _, _ = await running.post(update(1), headers={"X-Forwarded-For": TELEGRAM})
    assert status == 403
    assert fake_upstream.bodies == []


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ([TELEGRAM], 200),
        ([f"{TELEGRAM}, 127.0.0.9"], 200),  # the ingress chain: Telegram, then another trusted hop
        ([TELEGRAM, "127.0.0.9"], 200),  # the same as two headers
        ([f"6.6.6.6, {TELEGRAM}"], 200),  # a client-supplied prefix does not matter
        ([f"{TELEGRAM}, 6.6.6.6"], 403),  # the nearest untrusted hop is the client
        (["127.0.0.3"], 403),  # only trusted hops: the leftmost is the client, not allowed
        ([f"{TELEGRAM}, not-an-ip"], 403),  # garbage from a "trusted" proxy: unknown client
        ([f"{TELEGRAM},"], 403),
        ([f"::ffff:{TELEGRAM}"], 200),  # mapped form compares as IPv4
        (["2001:db8::5"], 200),
        (["[2001:db8::5]"], 200),
        ([], 403),  # no header: the proxy itself is the client
    ],
)
async def test_trusted_proxy_chains(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar, forwarded_for: list[str], expected: int
):
    running = await make_sidecar(
        allow_network=["149.154.160.0/20", "2001:db8::/32"], trusted_proxy=["127.0.0.0/8"]
    )
    # aiohttp joins a list into one header; several headers need raw bytes.
    host, port = running.sidecar.webhook_address
    body = update(1)
    head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {TOKEN}\r\n"
    head += "".join(f"X-Forwarded-For: {value}\r\n" for value in forwarded_for)
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    answer = await raw_request(host, port, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 %d " % expected), answer[:60]
    assert len(fake_upstream.bodies) == (1 if expected == 200 else 0)


async def test_ipv6_listener(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(listen="[::1]:0", allow_network=["::1/128"])
    assert running.url.startswith("http://[::1]:")
    assert (await running.post(update(1)))[0] == 200
    denied = await make_sidecar(listen="[::1]:0", allow_network=["127.0.0.0/8"])
    assert (await denied.post(update(2)))[0] == 403


async def test_dual_stack_listener_sees_ipv4_clients_as_ipv4(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar
):
    running = await make_sidecar(listen="[::]:0", allow_network=["127.0.0.0/8"])
    port = running.sidecar.webhook_address[1]
    # The socket reports ::ffff:127.0.0.1; the filter must compare it as 127.0.0.1.
    assert (await running.post(update(1), url=f"http://127.0.0.1:{port}/webhook"))[0] == 200
    assert (await running.post(update(2), url=f"http://[::1]:{port}/webhook"))[0] == 403


async def test_mapped_cidr_in_the_allow_list(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    running = await make_sidecar(allow_network=["::ffff:127.0.0.0/104"])
    assert (await running.post(update(1)))[0] == 200
