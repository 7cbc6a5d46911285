"""The whole system on one machine, no cluster and no Telegram account needed.

Steps: a local Kubernetes control plane (or an existing cluster, when asked), the CRD, the Bot API
emulator, the operator, a TelegramBot with its declared commands, then the example aiogram echo
bot behind the sidecar - and proof that it works: a message travels through the sidecar to the
dispatcher and the reply comes back, spoofed requests are refused, and the secret token rotates
while messages keep flowing. ``--pods`` tells the same story on a pod cluster (``podsdemo``).

Every step checks what it claims; the demo exits non-zero when one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from .controlplane import REPO_ROOT, ControlPlaneError
from .demo_checks import interactive, message_round_trip, rotation, spoofs
from .demo_steps import (
    Demo,
    apply_bot,
    control_plane,
    declare_commands,
    delete_bot,
    install_crd,
    leave_no_trace,
    start_bot_and_sidecar,
    start_emulator,
    start_operator,
)
from .emulatorproc import EmulatorError
from .images import ImageError
from .kubectl import KubectlError
from .polling import WaitTimeoutError
from .processes import ProcessFailedError, ProcessGroup
from .releases import ReleaseError
from .story import BOT_TOKEN, DemoError, say, step

__all__ = ["BOT_TOKEN", "main"]

TOTAL = 10


async def run(args: argparse.Namespace) -> None:
    # A closed terminal (SIGHUP) or a `kill` (SIGTERM) must stop everything like Ctrl-C does.
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, main_task.cancel)
    kubeconfig = args.kubeconfig or (
        os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        if os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}
        else None
    )
    workdir = _workdir(args)
    say(f"telegram-bot-operator demo (logs in {workdir})")
    group = ProcessGroup(workdir / "logs")
    step(1, TOTAL, "Kubernetes control plane")
    async with control_plane(workdir, kubeconfig) as env:
        demo = Demo(workdir=workdir, env=env, namespace=f"tgbot-demo-{secrets.token_hex(3)}", group=group)
        try:
            step(2, TOTAL, "TelegramBot CRD")
            await install_crd(demo)
            step(3, TOTAL, "Bot API emulator (stands in for api.telegram.org)")
            await start_emulator(demo)
            step(4, TOTAL, "Operator")
            await start_operator(demo)
            step(5, TOTAL, "Token Secret + TelegramBot -> Ready")
            await apply_bot(demo)
            step(6, TOTAL, "The bot's commands, declared in the TelegramBot (spec.profile)")
            await declare_commands(demo)
            step(7, TOTAL, "Echo bot (aiogram) behind the sidecar")
            await start_bot_and_sidecar(demo)
            step(8, TOTAL, "A message travels through the sidecar and the reply comes back")
            await message_round_trip(demo)
            step(9, TOTAL, "Spoofed requests are refused")
            await spoofs(demo)
            step(10, TOTAL, "Secret-token rotation while messages keep flowing")
            await rotation(demo)
            if args.interactive:
                await interactive(demo)
            say("\n==> Clean-up")
            await delete_bot(demo)
        finally:
            for task in demo.tasks:
                task.cancel()
            await asyncio.gather(*demo.tasks, return_exceptions=True)
            if kubeconfig:
                await asyncio.shield(leave_no_trace(demo))
            await asyncio.shield(group.stop_all())
    say("\nDemo finished: every step checked out. All processes stopped.")
    say(f"Logs and the mounted Secret's history are in {workdir} (rm -rf it when done).")


def _workdir(args: argparse.Namespace) -> Path:
    workdir = Path(args.workdir) if args.workdir else REPO_ROOT / ".tmp" / f"demo-{int(time.time())}"
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tgbot-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactive", "-i", action="store_true", help="type messages and see the replies")
    parser.add_argument(
        "--pods",
        action="store_true",
        help="the same story on a pod cluster started here (needs root): our images, both charts, "
        "the emulator reached from the pods",
    )
    parser.add_argument("--workdir", help="folder for logs and state (default: .tmp/demo-<time>)")
    parser.add_argument(
        "--kubeconfig",
        help="use this existing cluster instead of a local control plane (also: USE_EXISTING_CLUSTER=true "
        "with KUBECONFIG); the demo works in a namespace of its own and removes it afterwards",
    )
    args = parser.parse_args(argv)
    if args.pods and (args.kubeconfig or args.interactive):
        parser.error("--pods starts its own pod cluster: without --kubeconfig and --interactive")
    try:
        if args.pods:
            from .podsdemo import run_on_pods  # root-only machinery, only when asked for

            run_on_pods(_workdir(args))
        else:
            asyncio.run(run(args))
    except (
        DemoError,
        ControlPlaneError,
        ProcessFailedError,
        KubectlError,
        WaitTimeoutError,
        ReleaseError,
        EmulatorError,
        ImageError,
    ) as error:
        say(f"\nDEMO FAILED: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        say("\nInterrupted: everything started was stopped.")
        sys.exit(130)
    except asyncio.CancelledError:
        say("\nStopped by a signal: everything started was stopped.")
        sys.exit(143)


if __name__ == "__main__":
    main()
