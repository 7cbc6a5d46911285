"""The README's first command: the demo runs from this checkout and proves each step it claims."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tgbot_localdev.story import BOT_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _secret_tokens(workdir: Path) -> set[str]:
    """Every secret token the demo's kubelet-style mount ever held."""
    tokens = set()
    for path in (workdir / "webhook-secret").glob("..*/*secret-token"):
        tokens.add(path.read_text().strip())
    return {token for token in tokens if token}


@pytest.mark.timeout(700)  # the demo's own limit is 600 s; a loaded machine needs more than 300 s
def test_demo_runs_every_step_and_leaks_no_token(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)  # the demo must start its own control plane
    result = subprocess.run(
        [sys.executable, "-m", "tgbot_localdev.demo", "--workdir", str(workdir), "--interactive"],
        input="ping from the test\n\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    for claim in (
        "True    0",  # kubectl get tgbot -o wide: Ready and no pending update
        "ProfileApplied=True: the operator called setMyCommands",
        "/start - Start the bot",  # getMyCommands from the emulator, as declared
        "/help - Show help",
        "/start and /help appear as declared in spec.profile",
        "bot   -> 'Hello from the demo!'",
        "wrong secret token from an allowed address -> 401",
        "right token, from an address outside the allowed networks -> 403",
        "X-Forwarded-For: 127.0.0.1 from an untrusted peer (ignored) -> 403",
        "none of them reached the bot",
        "all answered, no 401",
        "bot> ping from the test",
        "the operator called deleteWebhook",
        "Demo finished",
    ):
        assert claim in output, f"missing {claim!r} in:\n{output}"
    tokens = _secret_tokens(workdir)
    assert len(tokens) >= 2, "the rotation should have left two tokens in the mount's history"
    for log in (workdir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert BOT_TOKEN not in text, f"bot token in {log.name}"
        for token in tokens:
            assert token not in text, f"a secret token in {log.name}"
    assert BOT_TOKEN not in output


def test_demo_stops_everything_it_started() -> None:
    leftovers = subprocess.run(
        ["pgrep", "-f", "tgbot-demo-|tgbot_localdev.demo"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", leftovers.stdout


def test_sigterm_mid_demo_stops_everything(tmp_path: Path) -> None:
    """A closed terminal or a kill must not orphan the control plane, as Ctrl-C doesn't."""
    workdir = tmp_path / "demo"
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    env.pop("USE_EXISTING_CLUSTER", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "tgbot_localdev.demo", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert demo.stdout is not None
    seen = []
    for line in demo.stdout:
        seen.append(line)
        if "[5/10]" in line:
            break
    demo.send_signal(signal.SIGTERM)
    rest, _ = demo.communicate(timeout=120)
    output = "".join(seen) + rest
    assert demo.returncode == 143, output
    assert "Stopped by a signal" in output
    # Every control-plane process names the workdir (data dir, certificates, kubeconfig).
    left = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", f"left running: {left.stdout}"
