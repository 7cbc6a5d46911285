"""The docs' kubectl commands, pasted into bash against a real API server, in order, as a reader would.

The reader's shell: a kubeconfig whose context namespace is a fresh one (the docs' commands name no
namespace), kubectl from the control plane build on PATH, the repository as the working folder, and
an operator watching that namespace with the emulator as its default Bot API server (so the docs'
TelegramBot, which names none, is registered as against Telegram). The only edits: the docs' token
placeholder becomes a token the emulator knows, ``<name>``-style placeholders get values
(fences.PLACEHOLDERS). The doc's commented output under ``kubectl get tgbot`` is compared with the
real one. The finalizer escape hatch runs last, with the operator stopped, as the docs say.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs.fences import INLINE, REPO_ROOT, Block, all_blocks, fill
from tests.support import Cluster

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent
TOKEN = f"123456:{secrets.token_urlsafe(27)}"
#: The docs' stand-ins for a token from @BotFather.
TOKEN_PLACEHOLDERS = {"123456:ABC...": TOKEN, "<token>": TOKEN}
#: Run after everything else, with the operator stopped (they remove its finalizer).
ESCAPE_HATCH = "finalizers"


class Reader:
    def __init__(self, cluster: Cluster, namespace: str, folder: Path) -> None:
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(Path(cluster.env["KUBECONFIG"]).read_text())
        self.env = {**cluster.env, "KUBECONFIG": str(kubeconfig)}
        self.namespace = namespace
        self.outputs: dict[str, str] = {}
        self.run(f"kubectl config set-context --current --namespace={namespace}")

    def run(self, command: str, ok_codes: tuple[int, ...] = (0,)) -> str:
        pasted = fill(command, **TOKEN_PLACEHOLDERS)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", pasted],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode in ok_codes, f"{command}\nfailed:\n{result.stdout}\n{result.stderr}"
        self.outputs[command] = result.stdout
        return result.stdout

    def tgbot(self) -> dict[str, Any]:
        return json.loads(self.run("kubectl get tgbot echo -o json"))  # type: ignore[no-any-return]


def commands_with_output(block: Block) -> Iterator[tuple[str, list[str]]]:
    """(command, the doc's commented output lines right under it)."""
    current: tuple[str, list[str]] | None = None
    for line in block.text.replace("\\\n", " ").splitlines():
        if line.startswith("# ") and current is not None:
            current[1].append(line[2:])
        elif line.strip():
            if current is not None:
                yield current
            current = (line, [])
    if current is not None:
        yield current


def start(argv: list[str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def compare_get_output(command: str, shown: list[str], actual: str) -> None:
    rows = [line.split() for line in actual.strip().splitlines()]
    expected = [line.split() for line in shown]
    assert rows[0] == expected[0], f"{command}: columns {rows[0]}, the doc shows {expected[0]}"
    # NAME BOT URL READY PENDING as shown; DELIVERING and AGE depend on the moment.
    assert rows[1][:5] == expected[1][:5], f"{command}: {rows[1]}, the doc shows {expected[1]}"


def test_every_kubectl_command_works_when_pasted(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    emulator = start(
        [str(BIN / "tgbot-emulator"), "--listen", "127.0.0.1:0", "--bot", f"{TOKEN}=echo_bot",
         "--allow-local-webhooks"],
        tmp_path / "emulator.log",
    )  # fmt: skip
    operator = None
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().split()[-1]
        reader = Reader(cluster, namespace, tmp_path)
        operator = start(
            [str(BIN / "tgbot-operator"), "--namespace", namespace, "--kubeconfig", reader.env["KUBECONFIG"],
             "--default-bot-api-server", url, "--check-interval", "5s", "--rotation-propagation-grace", "2s",
             "--rotation-retire-grace", "2s"],
            tmp_path / "operator.log",
        )  # fmt: skip
        blocks = all_blocks("kubectl")
        hatches = [b for b in blocks if ESCAPE_HATCH in b.text]
        ran_get = False
        for block in [b for b in blocks if b not in hatches]:
            for command, shown in commands_with_output(block):
                if command.startswith("kubectl get tgbot") and not ran_get:
                    reader.run("kubectl wait tgbot/echo --for=condition=Ready --timeout=120s")
                    ran_get = True
                out = reader.run(command)
                if shown:
                    compare_get_output(command, shown, out)
        assert ran_get, "the docs' first kubectl block shows no `kubectl get tgbot`"

        prose = [c for c, how in INLINE.items() if how == ("run", "kubectl")]
        for command in prose:
            out = reader.run(command, ok_codes=(0, 1) if "auth can-i" in command else (0,))
            if "-o wide" in command:
                assert "LASTERROR" in out.splitlines()[0], out
            if command.startswith("kubectl describe"):
                assert "Conditions" in out or "conditions" in out.lower(), out
            if "auth can-i" in command:
                assert out.strip() in {"yes", "no"}, out
            if "rotate-secret-token" in command:  # the annotation starts a rotation
                deadline = time.monotonic() + 60
                while reader.tgbot()["status"].get("secretTokenRotatedAt") is None:
                    assert time.monotonic() < deadline, "the annotation started no rotation"
                    time.sleep(1)

        stop(operator)  # "when no operator runs"
        assert hatches
        for block in hatches:
            for command in block.commands():
                reader.run(command)
        assert reader.tgbot()["metadata"].get("finalizers") is None
        reader.run("kubectl delete tgbot echo --timeout=30s")
    finally:
        if operator is not None:
            stop(operator)
        stop(emulator)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


MINIMAL = {
    "apiVersion": "tgbot.dev/v1alpha1",
    "kind": "TelegramBot",
    "metadata": {"name": "fragment"},
    "spec": {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://bots.example.com/x"}},
}


@pytest.mark.parametrize("block", all_blocks("apply"), ids=str)
def test_every_telegrambot_in_the_docs_is_accepted_by_the_api_server(
    cluster: Cluster, namespace: str, telegrambot_crd: None, block: Block
) -> None:
    """Schema and CEL rules: the server validates as for a real apply, and stores nothing."""
    document = yaml.safe_load(block.text)
    resource = deep_merge(MINIMAL, document) if "kind" not in document else document
    resource["metadata"]["namespace"] = namespace  # the docs' `bots` need not exist here
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(resource), check=False)
    assert result.returncode == 0, f"{block}: {result.stderr}"
    assert re.search(r"telegrambot\.tgbot\.dev/\S+ created \(server dry run\)", result.stdout), result.stdout


@pytest.fixture(scope="module")
def telegrambot_crd(cluster: Cluster) -> None:
    crd = str(REPO_ROOT / "crds" / "telegrambots.tgbot.dev.yaml")
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crd)
    cluster.kubectl("wait", "--for=condition=Established", "crd/telegrambots.tgbot.dev", "--timeout=60s")
