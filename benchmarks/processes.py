"""Where the benchmarks' programs are, and the processes of a setup started and stopped together.

Starting and waiting are localdev's one process helper (``spawn``, ``wait_ready``): each process
in a session of its own with its log in a file, stopped only by its own pid. :class:`Group` adds
what a benchmark setup needs: ``benchmarks`` importable in the child, wait until it listens, and
stop the setup's processes in reverse order.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

from tgbot_localdev.processes import LocalProcess, spawn, wait_ready

__all__ = ["BIN", "PYTHON", "REPO", "Group", "child_env", "listening", "stopped_by_sigterm"]

PYTHON = sys.executable
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]

#: How long a started server may take to accept connections.
LISTEN_TIMEOUT = 30.0


P = ParamSpec("P")
R = TypeVar("R")


def stopped_by_sigterm(main: Callable[P, R]) -> Callable[P, R]:
    """A benchmark's ``main``: SIGTERM (``timeout``, CI, ``kill``) stops it as Ctrl-C does, so the
    ``with`` blocks of its setup stop the processes they started. Those run in sessions of their
    own and outlived a benchmark that SIGTERM killed (a kube-apiserver and etcd kept running).

    Only the first SIGTERM interrupts: later ones would cut that cleanup short, and they come
    (``pkill -f`` matches both ``timeout`` and the benchmark it runs, and ``timeout`` passes its
    own on). They are caught and dropped - not ``SIG_IGN``, which processes the cleanup starts would
    inherit."""

    def interrupt_once(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, _dropped)
        raise KeyboardInterrupt

    @functools.wraps(main)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if threading.current_thread() is not threading.main_thread():
            return main(*args, **kwargs)
        previous = signal.signal(signal.SIGTERM, interrupt_once)
        try:
            return main(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapped


def _stop_quietly(proc: LocalProcess) -> None:
    with contextlib.suppress(Exception):
        proc.stop()


def _dropped(signum: int, frame: object) -> None:
    """A SIGTERM after the first, while the benchmark cleans up."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment, with ``python -m benchmarks.…`` importable from any working directory."""
    return {**os.environ, "PYTHONPATH": str(REPO), **(extra or {})}


def listening(address: str | tuple[str, int]) -> bool:
    """A readiness probe: ``address`` (a Unix socket path or host/port) accepts connections."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True


class Group:
    """Processes started together (logs in ``logdir``) and stopped in reverse order."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[LocalProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        listen: str | tuple[str, int] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> LocalProcess:
        """Start ``argv``; with ``listen``, return once it accepts connections there."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        proc = spawn(name, argv, self.logdir, child_env(env))
        self.procs.append(proc)
        if listen is not None:
            wait_ready(proc, lambda: listening(listen), LISTEN_TIMEOUT)
        return proc

    def stop(self) -> None:
        """Stop them all, last first. An interrupt (Ctrl-C, or the SIGTERM of
        :func:`stopped_by_sigterm`) while one stops does not leave the rest running: that one is
        stopped again (a later SIGTERM is dropped by then), the others after it, then it is raised."""
        interrupted: KeyboardInterrupt | None = None
        for proc in reversed(self.procs):
            try:
                _stop_quietly(proc)
            except KeyboardInterrupt as e:
                interrupted = interrupted or e
                _stop_quietly(proc)
        self.procs.clear()
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
