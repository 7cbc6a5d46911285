"""The five setups of the sidecar benchmark, each in front of aiogram or of a trivial upstream.

A setup starts its processes in a :class:`Group` and says which process is the hop (nginx, the
sidecar, the naive forwarder; none for aiogram alone) and which is the bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tgbot_localdev.controlplane import free_port
from tgbot_localdev.processes import LocalProcess

from . import nginx
from .processes import BIN, PYTHON, Group
from .updates import SECRET_TOKEN

SETUPS = ("aiogram-alone", "nginx", "sidecar-unix", "sidecar-tcp", "naive-aiohttp")
UPSTREAMS = ("aiogram", "trivial")


@dataclass
class Running:
    setup: str
    upstream: str
    url: str
    bot: LocalProcess
    hop: LocalProcess | None
    hop_tree: bool = False  # count the hop's children (nginx workers)


def _bot(group: Group, upstream: str, where: str, unix: bool, checks: bool) -> LocalProcess:
    argv = [PYTHON, "-m", "benchmarks.servers", upstream, "--unix" if unix else "--tcp", where]
    if upstream == "aiogram" and checks:
        # aiogram's documented setup: secret_token on the handler, ip_filter_middleware.
        argv += ["--secret", SECRET_TOKEN, "--ip-filter", "127.0.0.1"]
    listen: str | tuple[str, int] = where if unix else ("127.0.0.1", int(where.rsplit(":", 1)[1]))
    return group.start(f"bot-{upstream}", argv, listen=listen)


def sidecar_argv(
    port: int,
    token_file: Path,
    upstream_url: str,
    unix: Path | None,
    *,
    host: str = "127.0.0.1",
    allow: Sequence[str] = ("127.0.0.1/32",),
    admin_port: int | None = None,
    log_level: str | None = "WARNING",
    extra: Sequence[str] = (),
) -> list[str]:
    """The sidecar's command line in front of ``upstream_url`` (over the Unix socket ``unix``);
    ``log_level=None`` keeps its default (the token scan reads every line it logs)."""
    argv = [
        str(BIN / "tgbot-sidecar"),
        "--listen",
        f"{host}:{port}",
        "--secret-token-file",
        str(token_file),
        "--upstream",
        upstream_url,
        "--admin-listen",
        f"127.0.0.1:{admin_port or free_port()}",
    ]
    for network in allow:
        argv += ["--allow-network", network]
    if log_level is not None:
        argv += ["--log-level", log_level]
    if unix is not None:
        argv += ["--upstream-unix-socket", str(unix)]
    return [*argv, *extra]


def start(setup: str, upstream: str, group: Group, workdir: Path) -> Running:
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "bot.sock"
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook"
    if setup == "aiogram-alone":
        bot = _bot(group, upstream, f"127.0.0.1:{port}", unix=False, checks=True)
        return Running(setup, upstream, url, bot, None)
    if setup == "nginx":
        bot = _bot(group, upstream, str(sock), unix=True, checks=True)
        hop = nginx.start(group, workdir / "nginx", port, f"unix:{sock}")
        return Running(setup, upstream, url, bot, hop, hop_tree=True)
    if setup in ("sidecar-unix", "sidecar-tcp"):
        token = workdir / "secret-token"
        token.write_text(SECRET_TOKEN)
        if setup == "sidecar-unix":
            bot = _bot(group, upstream, str(sock), unix=True, checks=False)
            argv = sidecar_argv(port, token, "http://bot/webhook", sock)
        else:
            bot_port = free_port()
            bot = _bot(group, upstream, f"127.0.0.1:{bot_port}", unix=False, checks=False)
            argv = sidecar_argv(port, token, f"http://127.0.0.1:{bot_port}/webhook", None)
        hop = group.start("sidecar", argv, listen=("127.0.0.1", port))
        return Running(setup, upstream, url, bot, hop)
    if setup == "naive-aiohttp":
        bot = _bot(group, upstream, str(sock), unix=True, checks=False)
        argv = [PYTHON, "-m", "benchmarks.servers", "naive", "--tcp", f"127.0.0.1:{port}"]
        argv += ["--upstream-unix", str(sock), "--secret", SECRET_TOKEN]
        hop = group.start("naive", argv, listen=("127.0.0.1", port))
        return Running(setup, upstream, url, bot, hop)
    raise ValueError(f"unknown setup {setup!r}")
