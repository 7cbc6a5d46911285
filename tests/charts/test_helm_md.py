"""docs/helm.md, copied: every command of its ``sh`` blocks runs against a real API server, in the
order a reader would paste them, with only the namespaces renamed (and certificate files made up).

Commands that need running pods or a container engine cannot run here; each kind is listed in
``NOT_HERE`` with the test that exercises it instead, and any other command makes this test fail.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.charts.chartlib import CRD_NAME, REPO_ROOT, Releases, adopt_for_release, container, exists, get
from tests.support import Cluster

pytestmark = pytest.mark.cluster

HELM_MD = REPO_ROOT / "docs" / "helm.md"

#: The namespaces the page uses; each run renames them (cluster-scoped names derive from them).
DOC_NAMESPACES = ("tgbot-system", "staging-bots", "bots")

Argv = list[str]

#: Commands that cannot run against an API server without nodes: (what, test that covers it, matcher).
NOT_HERE: list[tuple[str, str, Callable[[Argv], bool]]] = [
    (
        "image builds and loads (no container engine here)",
        "tests/pods/conftest.py",  # builds the Dockerfiles with hack/build-images.sh, imports them
        lambda argv: argv[0] in {"docker", "kind", "k3d", "for", "done"},
    ),
    ("the control-plane build these tests run on", "tests/conftest.py", lambda argv: argv[0] == "export"),
    ("the chart tests themselves", "tests/charts", lambda argv: argv[0].endswith("pytest")),
    (
        "a running operator pod",
        "tests/pods/test_operator_pod.py",
        lambda argv: argv[0] == "kubectl" and "rollout" in argv,
    ),
    ("running pods", "tests/pods/test_operator_pod.py", lambda argv: argv[0] == "kubectl" and "logs" in argv),
    ("the helm test pod", "tests/pods/test_helm_test.py", lambda argv: argv[:2] == ["helm", "test"]),
]


def sh_commands(text: str) -> list[Argv]:
    """The commands of every ```sh block, continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def not_here(argv: Argv) -> str | None:
    for _, covered_by, matches in NOT_HERE:
        if matches(argv):
            return covered_by
    return None


def write_certificate(folder: Path, host: str) -> None:
    """fullchain.pem / privkey.pem, as the page's `kubectl create secret tls` expects them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


class Reader:
    """Runs the page's commands as a reader would, in renamed namespaces."""

    def __init__(self, cluster: Cluster, releases: Releases, files: Path) -> None:
        self.cluster, self.releases, self.files = cluster, releases, files
        suffix = secrets.token_hex(3)
        self.namespaces = {name: f"{name}-{suffix}" for name in DOC_NAMESPACES}
        pattern = "|".join(re.escape(n) for n in DOC_NAMESPACES)
        # A namespace as a whole word: not bots.example.com, telegram-bot-api.bots:8081, bots-example-com-tls.
        self.word = re.compile(rf"(?<![\w.-])({pattern})(?![\w.-])")
        self.outputs: list[str] = []

    def rename(self, arg: str) -> str:
        arg = self.word.sub(lambda m: self.namespaces[m.group(1)], arg)
        if arg.startswith("charts/"):
            return str(REPO_ROOT / arg)
        for flag in ("--cert=", "--key="):
            if arg.startswith(flag):
                return flag + str(self.files / arg.removeprefix(flag))
        return arg

    def run(self, argv: Argv) -> None:
        args = [self.rename(a) for a in argv]
        program = os.path.expandvars(args[0])
        if program == "kubectl":
            result = self.cluster.kubectl(*args[1:], check=False)
            if args[1:3] == ["create", "namespace"] and "AlreadyExists" in result.stderr:
                return  # this test created it beforehand, for the commands that expect it
        elif program == "helm":
            self.track(args)
            result = self.cluster.helm(*args[1:], check=False)
        elif Path(program).name in {"helm", "helm3"}:  # $KUBEBUILDER_ASSETS/helm lint: no cluster
            result = subprocess.run(
                [program, *args[1:]], env=self.cluster.env, capture_output=True, text=True, timeout=120
            )
        else:
            raise AssertionError(f"docs/helm.md runs {argv[0]!r}: neither run here nor listed in NOT_HERE")
        assert result.returncode == 0, f"{shlex.join(argv)}\nfailed:\n{result.stdout}\n{result.stderr}"
        self.outputs.append(result.stdout)

    def track(self, args: Argv) -> None:
        """Releases the page installs, to uninstall them when the test ends."""
        if args[1] not in {"install", "upgrade"}:
            return
        positional = [a for a in args[2:] if not a.startswith("-")]
        namespace = args[args.index("-n") + 1] if "-n" in args else args[args.index("--namespace") + 1]
        if (namespace, positional[0]) not in self.releases.installed:
            self.releases.track(namespace, positional[0])


def test_commands_are_all_run_or_covered() -> None:
    commands = sh_commands(HELM_MD.read_text())
    assert any(argv[:2] == ["helm", "install"] for argv in commands)
    assert any(argv[:2] == ["helm", "upgrade"] for argv in commands)
    for _, covered_by, _ in NOT_HERE:
        assert (REPO_ROOT / covered_by).exists(), covered_by
    for argv in commands:
        if not_here(argv) is None:
            assert os.path.expandvars(argv[0]).split("/")[-1] in {"helm", "helm3", "kubectl"}, argv
            assert "--dry-run" not in " ".join(argv), "the page's commands install for real"


def test_every_command_of_helm_md_works_when_copied(
    cluster: Cluster, releases: Releases, tmp_path: Path, telegrambot_crd: str
) -> None:
    reader = Reader(cluster, releases, tmp_path)
    write_certificate(tmp_path, "bots.example.com")
    for namespace in reader.namespaces.values():
        cluster.kubectl("create", "namespace", namespace)
        cluster.kubectl("label", "namespace", namespace, "tgbot.dev/test=true")
    operator_ns, bots_ns = reader.namespaces["tgbot-system"], reader.namespaces["bots"]
    try:
        if exists(cluster, "crd", CRD_NAME):  # the page's operator release takes the CRD over
            adopt_for_release(cluster, f"crd/{CRD_NAME}", "tgbot", operator_ns)
        ran = 0
        for argv in sh_commands(HELM_MD.read_text()):
            if not_here(argv) is None:
                reader.run(argv)
                ran += 1
        assert ran >= 12, ran

        # What the page says the commands did.
        operator = container(
            get(cluster, "deployment", "tgbot-telegram-bot-operator", "-n", operator_ns), "operator"
        )
        assert operator["image"] == "tgbot-operator:0.1.0"
        staging_ns = reader.namespaces["staging-bots"]
        assert {f"--namespace={bots_ns}", f"--namespace={staging_ns}"} <= set(operator["args"])
        assert "--all-namespaces" not in operator["args"]
        assert "--json-logs" in operator["args"], "--reuse-values kept the earlier settings and added these"
        bot = get(cluster, "tgbot", "echo-telegram-bot", "-n", bots_ns)
        assert bot["spec"]["webhook"]["url"] == "https://bots.example.com/echo"
        # telegramBot.profile, upgraded in with --reuse-values, is the TelegramBot's spec.profile.
        (commands,) = bot["spec"]["profile"]["commands"]
        assert [c["command"] for c in commands["commands"]] == ["start", "help"]
        ingress = get(cluster, "ingress", "echo-telegram-bot", "-n", bots_ns)
        assert ingress["spec"]["tls"] == [
            {"hosts": ["bots.example.com"], "secretName": "bots-example-com-tls"}
        ]
        assert get(cluster, "secret", "bots-example-com-tls", "-n", bots_ns)["type"] == "kubernetes.io/tls"
        deployment = get(cluster, "deployment", "echo-telegram-bot", "-n", bots_ns)
        assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]] == [
            "echo-bot:1.0.0",
            "tgbot-sidecar:0.1.0",
        ]
        assert any("echo-telegram-bot" in out for out in reader.outputs), "kubectl get tgbot -A lists the bot"
        # The installs' notes say which images the nodes need and where they come from.
        notes = "\n".join(reader.outputs)
        assert "Image: tgbot-operator:0.1.0. No registry publishes it" in notes, notes
        assert "Images: echo-bot:1.0.0 (bot) and tgbot-sidecar:0.1.0 (sidecar)." in notes, notes
    finally:
        releases.cleanup()
        releases.installed.clear()
        for namespace in reader.namespaces.values():
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
