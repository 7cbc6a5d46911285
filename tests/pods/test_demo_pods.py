"""`hack/demo.sh --pods` (tgbot-demo --pods): the demo's story on a pod cluster of its own.

It runs first in the session (conftest orders it so): the demo starts and stops its own pod
cluster, and only one pod cluster can run on a machine at a time (kube-proxy's chains are global).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tgbot_localdev.story import BOT_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1320)
def test_demo_on_pods_tells_the_whole_story_and_leaves_nothing(tmp_path: Path) -> None:
    if os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}:
        pytest.skip("the pod demo starts its own pod cluster on this machine, not on kind/k3d")
    if os.environ.get("TGBOT_SKIP_PODS"):
        pytest.skip(os.environ["TGBOT_SKIP_PODS"])
    if os.geteuid() != 0:
        pytest.skip("the pod demo needs root (containerd, network namespaces, iptables)")
    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "USE_EXISTING_CLUSTER")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "tgbot_localdev.demo", "--pods", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        stdout, stderr = demo.communicate(timeout=1100)
    except subprocess.TimeoutExpired:
        # SIGTERM, not the SIGKILL of subprocess.run's timeout: the demo stops its pod cluster.
        demo.send_signal(signal.SIGTERM)
        stdout, stderr = demo.communicate(timeout=180)
        raise AssertionError(f"the pod demo took over 1100 s:\n{stdout}\n{stderr[-3000:]}") from None
    result = subprocess.CompletedProcess(demo.args, demo.returncode, stdout, stderr)
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr[-5000:]}"
    for claim in (
        "[8/8]",
        "tgbot.local/tgbot-operator:",  # our images, by content
        "the operator pod is Ready",
        "the pod is Ready and the operator registered http://",
        "bot   -> 'Hello from the demo!'",
        "/start - Start the bot",
        "/help - Show help",
        "/start and /help appear as declared",
        "ok: update",  # the bot chart's helm test delivered its own update
        "helm test echo: its hook pod succeeded",
        "helm uninstall: the TelegramBot is gone and so is the webhook",
        "Demo finished",
    ):
        assert claim in output, f"missing {claim!r} in:\n{output}"
    assert BOT_TOKEN not in output
    assert BOT_TOKEN not in result.stderr
    for log in workdir.rglob("*.log"):
        assert BOT_TOKEN not in log.read_text(errors="replace"), f"bot token in {log}"
    # Nothing of the pod cluster is left: no podcluster folder, no containerd of ours.
    assert not list(Path("/var/tmp").glob("tgbot-podcluster-*/node")), "the pod cluster's folder is left"
    left = subprocess.run(["pgrep", "-f", "tgbot-podcluster-"], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", f"left running: {left.stdout}"
