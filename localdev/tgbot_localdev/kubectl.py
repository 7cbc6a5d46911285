"""``kubectl`` as a subprocess: the one kubectl helper of localdev (the demo, the pod cluster, the
kubelet-style Secret mirror). Errors carry kubectl's own message, never the command's input."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence


class KubectlError(RuntimeError):
    """kubectl exited non-zero."""


def shown(args: Sequence[str]) -> str:
    """The command line as errors and the demo print it: ``--from-literal=KEY=VALUE`` carries a
    Secret's value (a bot token), so only its key is shown."""
    return " ".join(
        f"--from-literal={arg.removeprefix('--from-literal=').partition('=')[0]}=***"
        if arg.startswith("--from-literal=")
        else arg
        for arg in args
    )


def kubectl(
    env: Mapping[str, str], *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["kubectl", *args],
        input=input,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise KubectlError(f"kubectl {shown(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


async def kubectl_async(
    env: Mapping[str, str], *args: str, input: str | None = None, check: bool = True
) -> str:
    """``kubectl`` from a coroutine; its stdout."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        *args,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    out, err = await process.communicate(input.encode() if input is not None else None)
    if check and process.returncode != 0:
        raise KubectlError(f"kubectl {shown(args)} failed ({process.returncode}): {err.decode().strip()}")
    return out.decode()
