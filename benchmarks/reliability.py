"""No loss: 10,000 updates over many chats through emulator -> sidecar -> aiogram while the bot is
SIGKILLed and restarted and the secret token is rotated through the operator.

The whole chain runs as in a pod, on one machine: control plane + operator + emulator (Telegram's
retry rules, retry cap shortened) + a TelegramBot whose webhook is the sidecar + the generated
Secret mirrored into a folder the way the kubelet mounts it + the sidecar reading those files +
an aiogram dispatcher on a Unix socket that appends every update_id it handles to a file.
Afterwards: every update_id handled exactly once? plus delivery figures and the token scan.

Here the run and the command; the bot and the sidecar are in ``reliability_chain``, the updates,
rotations and kills in ``reliability_scenarios``, the verdict and its table in ``reliability_report``.

    .venv/bin/python -m benchmarks.reliability [--updates 10000] [--chats 1000] [--kills 5] [--rotations 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tgbot_emulator import EmulatorClient
from tgbot_localdev.controlplane import free_port
from tgbot_localdev.secretmount import kubectl_secret_reader, mirror_secret

from . import report, tokenscan
from .processes import stopped_by_sigterm
from .reliability_chain import Bot, sidecar_metrics, start_sidecar
from .reliability_report import analyse, read_records, render
from .reliability_scenarios import chaos, inject, rotate
from .stack import FAST_OPERATOR, bot_manifest, env_from_os, is_ready, new_token, stack, token_secret, until

BOT = "reliable"


async def run(
    env: dict[str, str] | None,
    workdir: Path,
    updates: int = 10_000,
    chats: int = 1_000,
    kills: int = 5,
    rotations: int = 2,
    seconds: float | None = None,
) -> dict[str, Any]:
    seconds = seconds if seconds is not None else max(10.0, updates / 250)
    started = time.time()
    async with stack(env, workdir) as s:
        # Telegram retries after growing delays (up to 60-120 s); we cap them at 2 s to finish in minutes.
        await s.start_emulator("--retry-cap", "2")
        await s.start_operator(*FAST_OPERATOR)
        bot_id = random.randint(10**8, 10**9)
        token = new_token(bot_id)
        port = free_port()
        seen_secrets: set[str] = {token}
        async with EmulatorClient(s.emulator_url) as client:
            await client.add_bot(token, "reliable_bot")
            manifest = bot_manifest(
                BOT, s.emulator_url, "reliable-token", f"http://127.0.0.1:{port}/webhook", maxConnections=40
            )
            await s.apply(token_secret("reliable-token", token), manifest)
            await until("Ready", lambda: s.bot(BOT), is_ready, timeout=120)

            folder = workdir / "webhook-secret"
            read = kubectl_secret_reader(f"{BOT}-webhook", s.namespace, s.env)

            async def reader() -> dict[str, str] | None:
                data = await read()
                for value in (data or {}).values():
                    seen_secrets.add(base64.b64decode(value).decode(errors="replace"))
                return data

            mirror = asyncio.create_task(mirror_secret(reader, folder, period=0.5))
            await until(
                "the mounted Secret", lambda: asyncio.to_thread((folder / "secret-token").exists), bool, 60
            )
            socket, record = workdir / "bot.sock", workdir / "handled.txt"
            bot = Bot(s, socket, record)
            await bot.start()
            metrics_url = await start_sidecar(s, port, folder, socket)

            t0 = time.monotonic()
            injecting = asyncio.create_task(inject(client, bot_id, updates, chats, seconds))
            rotating = asyncio.create_task(rotate(s, BOT, rotations, pause=seconds / (rotations + 1) / 2))
            killing = asyncio.create_task(chaos(bot, kills, every=seconds / (kills + 1), down=1.0))
            ids = await injecting
            injected_in = time.monotonic() - t0
            await killing
            rotation_seconds = await rotating
            try:
                await client.wait_delivered(bot_id, ids, timeout=max(120.0, updates / 20))
                all_delivered = True
            except TimeoutError:
                all_delivered = False
            drained_in = time.monotonic() - t0
            await asyncio.sleep(1.0)  # the last answers' records
            deliveries = await client.deliveries(bot_id)
            set_webhooks = await client.calls(bot_id, method="setWebhook")
            sidecar_outcomes = await sidecar_metrics(metrics_url)
            mirror.cancel()
        result = analyse(ids, read_records(record), bot.killed_pids)
        failures = collections.Counter(
            str(d.get("status") or d.get("error") or "?")[:60]
            for d in deliveries
            if not (200 <= (d.get("status") or 0) < 300)
        )
        status = (await s.bot(BOT)).get("status") or {}
        events = await s.events_json()
        scan = tokenscan.scan(
            {**s.logs(), "events": events, "TelegramBot": json.dumps(await s.bots())}, seen_secrets
        )
        result.update(
            all_delivered=all_delivered,
            chats=chats,
            kills=kills,
            bot_starts=bot.starts,
            rotations=rotations,
            rotation_seconds=rotation_seconds,
            secret_token_versions_seen=len(seen_secrets) - 1,
            set_webhook_calls=len(set_webhooks),
            injected_in_s=injected_in,
            all_handled_in_s=drained_in,
            delivery_attempts=len(deliveries),
            failed_attempts=sum(failures.values()),
            failures=dict(failures.most_common()),
            rejected_401=sum(n for k, n in failures.items() if "401" in k),
            sidecar_requests=sidecar_outcomes,
            ready_at_end=status.get("conditions"),
            token_scan=scan,
            seconds=time.time() - started,
        )
        return result


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0])
    p.add_argument("--updates", type=int, default=10_000)
    p.add_argument("--chats", type=int, default=1_000)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--rotations", type=int, default=2)
    p.add_argument("--seconds", type=float, default=None, help="spread the injection over this long")
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tgbot-reliability-") as tmp:
        result = asyncio.run(
            run(env_from_os(), Path(tmp), args.updates, args.chats, args.kills, args.rotations, args.seconds)
        )
    print(render(result))
    result["machine"] = report.machine()
    print(f"\nJSON: {report.write_json('reliability', result, args.results)}")
    if not result["exactly_once_outside_kills"] or result["token_scan"]["leaks"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
