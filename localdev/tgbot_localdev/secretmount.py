"""Mirror a Kubernetes Secret into a folder the way the kubelet mounts it.

The kubelet writes each version of a Secret into a fresh timestamped folder and
swaps the ``..data`` symlink to it atomically; every key is a symlink through
``..data``. Readers never see half a version. The demo runs the sidecar as a
local process, so this stands in for the kubelet, with a short sync period. The one kubelet-style
writer of the checkout: the demo, the tests and the benchmarks use ``write_version``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from .kubectl import KubectlError, kubectl_async

#: Reads the Secret's ``data`` (base64 values) or None when it does not exist.
SecretReader = Callable[[], Awaitable[dict[str, str] | None]]


def write_version(folder: Path, data: Mapping[str, bytes], keep_history: bool = True) -> None:
    """Write one version of the Secret and switch ``..data`` to it atomically.

    ``keep_history=False`` removes the version it replaced, as the kubelet does; the demo keeps
    them, so that its folder shows the Secret's history (the rotation's tokens)."""
    folder.mkdir(parents=True, exist_ok=True)
    version = folder / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    version.mkdir()
    for key, value in data.items():
        path = version / key
        path.write_bytes(value)
        path.chmod(0o600)
    old = folder / "..data"
    previous = old.resolve() if old.is_symlink() else None
    tmp = folder / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(version.name)
    tmp.replace(old)
    # Key links: added for new keys, removed for keys the Secret no longer has.
    for key in data:
        link = folder / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    for entry in folder.iterdir():
        if not entry.name.startswith("..") and entry.name not in data:
            entry.unlink()
    if previous is not None and not keep_history:
        shutil.rmtree(previous)


async def mirror_secret(read: SecretReader, folder: Path, period: float = 0.5) -> None:
    """Keep ``folder`` in step with the Secret until cancelled."""
    last: dict[str, str] | None = None
    while True:
        data = await read()
        if data is not None and data != last:
            decoded = {key: base64.b64decode(value) for key, value in data.items()}
            await asyncio.to_thread(write_version, folder, decoded)
            last = data
        await asyncio.sleep(period)


def kubectl_secret_reader(name: str, namespace: str, env: dict[str, str]) -> SecretReader:
    async def read() -> dict[str, str] | None:
        try:
            out = await kubectl_async(env, "get", "secret", name, "-n", namespace, "-o", "json")
        except KubectlError:
            return None  # not written yet (or the API server is briefly away): the next sync tries again
        data: dict[str, str] = json.loads(out).get("data") or {}
        return data

    return read
