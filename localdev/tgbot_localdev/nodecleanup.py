"""Removing what a node made, for ``node.Node.stop`` and its leftovers check: CNI DEL for every pod
network namespace, our containerd's shims, mounts under the node's folder, kubelet's QoS cgroups.
Every step tolerates what is already gone (a stop runs after failed starts too)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def cni_del_all(netns_root: Path, conflist: Mapping[str, Any], bin_dir: Path) -> None:
    """CNI DEL for every netns containerd made (releases IPs, veths and the bridge ports)."""
    if not netns_root.exists():
        return
    plugins = conflist["plugins"]
    for netns in netns_root.iterdir():
        for plugin in reversed(plugins):
            conf = dict(plugin, cniVersion=conflist["cniVersion"], name=conflist["name"])
            env = dict(
                os.environ,
                CNI_COMMAND="DEL",
                CNI_CONTAINERID=netns.name,
                CNI_NETNS=str(netns),
                CNI_IFNAME="eth0",
                CNI_PATH=str(bin_dir),
            )
            subprocess.run(
                [str(bin_dir / str(plugin["type"]))],
                input=json.dumps(conf),
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )


def kill_shims(containerd_socket: Path) -> None:
    """containerd-shim-runc-v2 processes started for our containerd (their -address says so)."""
    address = str(containerd_socket)
    if not address or address == ".":
        return
    for pid in pids_with_cmdline(lambda argv: "containerd-shim" in argv[0] and address in argv):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def unmount_under(folder: Path) -> None:
    prefix = str(folder.resolve()) + "/"
    for _ in range(3):
        mounts = [m for m in mount_points() if m.startswith(prefix)]
        if not mounts:
            return
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=60, check=False)


def remove_kubepods_cgroups() -> None:
    """kubelet's QoS cgroups (``kubepods``), once empty; deepest first."""
    root = Path("/sys/fs/cgroup")
    tops = [root / "kubepods"] if (root / "cgroup.controllers").exists() else list(root.glob("*/kubepods"))
    for top in tops:
        if not top.is_dir():
            continue
        for path in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            # The mount point is the 5th field, with spaces etc. octal-escaped.
            points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def pids_with_cmdline(match: Callable[[Sequence[str]], bool]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if words and match(words):
            pids.append(int(entry.name))
    return pids
