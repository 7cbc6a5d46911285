"""End to end: Telegram etiquette. An operator restart costs no burst (one getWebhookInfo per bot,
spread over the check interval, no setter); --bot-api-rate-limit paces every bot of a server; after
a Bot API outage a bot converges within one backoff step (after a 429, right after retry_after)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    OperatorProcess,
    apply,
    assert_no_secrets_leaked,
    bot_manifest,
    condition,
    eventually,
    get,
    new_token,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PROFILE: dict[str, Any] = {
    "commands": [{"commands": [{"command": "start", "description": "Start the bot"}]}],
    "names": [{"name": "Etiquette"}],
    "menuButton": {"type": "commands"},
}
#: Long enough to tell "spread over the interval" from "all at once", short enough for a test.
CHECK_INTERVAL = 12.0
BOTS = 6


def workers(operator: OperatorProcess) -> float:
    """The restarted operator's running workers (0 until it serves /metrics)."""
    try:
        return operator.metric("tgbot_operator_bots")
    except OSError:
        return 0.0


async def calls_since(emulator: Emulator, bot_id: int, since: float) -> list[dict[str, Any]]:
    return [c for c in await emulator.client.calls(bot_id) if c["at"] >= since]


async def test_a_restart_makes_one_spread_getwebhookinfo_per_bot_and_no_setter(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    ids = [1801 + n for n in range(BOTS)]
    tokens = {bot_id: new_token(bot_id) for bot_id in ids}
    docs = []
    for n, bot_id in enumerate(ids):
        await emulator.client.add_bot(tokens[bot_id], f"polite_{n}_bot")
        spec = {"profile": PROFILE} if n % 2 == 0 else {}
        docs += [
            token_secret(f"p{n}-token", tokens[bot_id]),
            bot_manifest(f"p{n}", emulator.url, f"p{n}-token", **spec),
        ]
    operator = start_operator("--check-interval", f"{CHECK_INTERVAL:g}")
    await apply(cluster, namespace, *docs)
    ready_since = {}
    for n in range(BOTS):
        bot = await wait_condition(cluster, namespace, f"p{n}", timeout=90)
        if n % 2 == 0:
            bot = await wait_condition(
                cluster, namespace, f"p{n}", "ProfileApplied", "True", reason="Applied"
            )
        ready_since[n] = condition(bot, "Ready")["lastTransitionTime"]

    operator.stop()
    restarted_at = time.time()
    operator.start()
    # Once every worker runs, one interval: every bot has had its first check by then.
    await eventually(lambda: asyncio.to_thread(workers, operator), lambda n: n == BOTS, what="workers")
    await asyncio.sleep(CHECK_INTERVAL + 1.5)
    firsts = []
    for n, bot_id in enumerate(ids):
        calls = await calls_since(emulator, bot_id, restarted_at)
        methods = [c["method"] for c in calls]
        assert not [m for m in methods if not m.startswith("get")], methods  # no set*, no delete*
        assert "getMe" not in methods  # the identity came back from status
        checks = [c["at"] for c in calls if c["method"] == "getWebhookInfo"]
        assert checks, f"bot {n}: no check within one interval of the restart"
        firsts.append(checks[0])
        # One call of each kind per interval (a check, a profile read): never two in a row.
        for method in set(methods):
            times = [c["at"] for c in calls if c["method"] == method]
            assert all(b - a >= 0.9 * CHECK_INTERVAL - 0.5 for a, b in itertools.pairwise(times)), method
        if n % 2 == 0:
            assert {"getMyCommands", "getMyName", "getChatMenuButton"} <= set(methods)  # read back
        now = await get(cluster, namespace, "tgbot", f"p{n}")
        assert condition(now, "Ready")["status"] == "True"
        assert condition(now, "Ready")["lastTransitionTime"] == ready_since[n]  # never flipped
    # Spread, not a burst: six first checks at random in 12 s are not all in the same 2 s.
    assert max(firsts) - min(firsts) > 2.0, sorted(f - restarted_at for f in firsts)
    for bot_id in ids:
        assert len(await emulator.client.calls(bot_id, method="setWebhook")) == 1
    await assert_no_secrets_leaked(cluster, namespace, operator, *tokens.values())


async def test_the_rate_limit_paces_all_bots_of_a_server(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    rate = 4.0
    ids = [1851 + n for n in range(BOTS)]
    tokens = {bot_id: new_token(bot_id) for bot_id in ids}
    docs = []
    for n, bot_id in enumerate(ids):
        await emulator.client.add_bot(tokens[bot_id], f"paced_{n}_bot")
        docs += [
            token_secret(f"r{n}-token", tokens[bot_id]),
            bot_manifest(f"r{n}", emulator.url, f"r{n}-token"),
        ]
    # Checks every 60 s: what is paced here is the registration of six bots applied at once.
    operator = start_operator("--check-interval", "60", "--bot-api-rate-limit", f"{rate:g}")
    await apply(cluster, namespace, *docs)
    for n in range(BOTS):
        await wait_condition(cluster, namespace, f"r{n}", timeout=90)
    calls = [c for bot_id in ids for c in await emulator.client.calls(bot_id)]
    ats = sorted(c["at"] for c in calls)
    assert len(ats) >= 4 * BOTS  # getMe, getWebhookInfo, setWebhook, getWebhookInfo each
    # A token bucket of one second's worth: n calls take at least (n - rate) / rate seconds.
    burst = int(rate)
    for first, last in zip(ats, ats[2 * burst :], strict=False):
        assert last - first >= burst / rate - 0.2, "more calls in a second than the limit allows"
    assert ats[-1] - ats[0] >= (len(ats) - burst) / rate - 0.5
    assert operator.metric("tgbot_operator_telegram_rate_limit_wait_seconds_total") > 0
    for bot_id in ids:
        assert len(await emulator.client.calls(bot_id, method="setWebhook")) == 1
    await assert_no_secrets_leaked(cluster, namespace, operator, *tokens.values())


async def outage_and_return(
    cluster: Cluster, namespace: str, emulator: Emulator, bot_id: int, name: str, *, fault: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply a bot while its Bot API server fails (``fault``) for OUTAGE seconds; its calls that
    failed and those that worked, once it is Ready."""
    token = new_token(bot_id)
    await emulator.client.add_bot(token, f"{name}_bot")
    await emulator.client.add_fault(fault, bot_id=bot_id, for_seconds=OUTAGE)
    await apply(
        cluster,
        namespace,
        token_secret(f"{name}-token", token),
        bot_manifest(name, emulator.url, f"{name}-token"),
    )
    await wait_condition(cluster, namespace, name, timeout=60)
    calls = await emulator.client.calls(bot_id)
    failed = [c for c in calls if c["status"] != 200]
    worked = [c for c in calls if c["status"] == 200]
    assert failed, calls
    assert worked, calls
    assert len(await emulator.client.calls(bot_id, method="setWebhook")) == 1
    return failed, worked


OUTAGE = 10.0


async def test_after_a_bot_api_outage_a_bot_converges_within_one_backoff_step(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    start_operator()
    failed, worked = await outage_and_return(cluster, namespace, emulator, 1871, "down", fault="500")
    returned = failed[0]["at"] + OUTAGE
    # Retries at 1, 2, 4, 8 s (+-20 %): the step in effect at the return is at most 8 x 1.2 s.
    assert worked[0]["at"] - returned <= 8 * 1.2 + 1.0
    assert worked[0]["at"] - failed[-1]["at"] <= 8 * 1.2 + 1.0
    assert len(failed) <= 6  # backing off, not hammering: ~5 attempts in 10 s


async def test_after_flood_control_a_bot_comes_back_right_after_retry_after(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    start_operator()
    failed, worked = await outage_and_return(cluster, namespace, emulator, 1872, "flood", fault="429")
    # The first 429 said "retry after 10 s": no call meanwhile, and back within 10 % of it.
    assert len(failed) == 1, failed
    waited = worked[0]["at"] - failed[0]["at"]
    assert OUTAGE - 0.5 <= waited <= OUTAGE * 1.1 + 1.0
