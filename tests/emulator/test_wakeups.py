"""Who wakes whom in the emulator: a bot's change wakes its own delivery worker and the state's
waiters, not every bot's worker (with 10,000 bots that was the emulator's whole CPU)."""

from __future__ import annotations

import asyncio

from tgbot_emulator.state import EmulatorState


async def woken(wait: asyncio.Task[bool]) -> bool:
    await asyncio.sleep(0)
    return wait.done()


async def test_one_bots_call_wakes_its_own_worker_and_the_state_waiters_only() -> None:
    state = EmulatorState()
    a = state.add_bot("1001:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "a_bot")
    b = state.add_bot("1002:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "b_bot")
    a_waits, b_waits = asyncio.create_task(a.changed.wait()), asyncio.create_task(b.changed.wait())
    state_waits, roster_waits = (
        asyncio.create_task(state.changed.wait()),
        asyncio.create_task(state.roster.wait()),
    )
    await asyncio.sleep(0)
    state.record_call(b, "getWebhookInfo", {}, 200, "api")
    assert await woken(b_waits)
    assert await woken(state_waits)
    assert not await woken(a_waits)
    assert not await woken(roster_waits)  # a call adds no bot: the supervisor sleeps on
    state.notify()  # a change of no bot in particular: every bot's worker looks
    assert await woken(a_waits)
    roster_waits.cancel()


async def test_bots_added_or_reset_wake_the_supervisor_and_every_worker() -> None:
    state = EmulatorState()
    a = state.add_bot("1001:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "a_bot")
    roster = asyncio.create_task(state.roster.wait())
    await asyncio.sleep(0)
    state.add_bot("1002:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "b_bot")
    assert await woken(roster)
    a_waits, roster = asyncio.create_task(a.changed.wait()), asyncio.create_task(state.roster.wait())
    await asyncio.sleep(0)
    state.reset()
    assert await woken(a_waits)  # its worker sees the reset (and is replaced)
    assert await woken(roster)
