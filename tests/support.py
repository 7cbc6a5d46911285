"""Helpers shared by tests of every subsystem."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tgbot_emulator import EmulatorClient
from tgbot_localdev.kubectl import KubectlError, kubectl

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_PATH = REPO_ROOT / "crds" / "telegrambots.tgbot.dev.yaml"


def use_existing_cluster() -> bool:
    """``USE_EXISTING_CLUSTER=true``: the tests use the cluster of KUBECONFIG (and PATH's tools)."""
    return os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}


@dataclass
class Cluster:
    """How tests reach the cluster: a kubeconfig and an environment for kubectl/helm."""

    kubeconfig: Path
    env: dict[str, str]
    server: str
    #: False on an existing cluster whose controller-manager we don't know about.
    has_garbage_collector: bool = True
    #: What ``helm()`` runs: a name looked up in ``env["PATH"]`` (our build has ``helm``, Helm 4,
    #: and ``helm3``) or a path.
    helm_command: str = "helm"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl`` against this cluster; on failure the error shows its stderr."""
        try:
            return kubectl(self.env, *args, input=input, check=check, timeout=timeout)
        except KubectlError as error:
            raise AssertionError(str(error)) from None

    def helm(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.helm_command, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.helm_command} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def using_helm(self, command: str) -> Cluster:
        """The same cluster, with ``helm()`` running ``command`` (e.g. ``helm3``)."""
        return dataclasses.replace(self, helm_command=command)


@dataclass
class Emulator:
    """The Bot API emulator serving in the test's process: its URL and a control client."""

    url: str
    client: EmulatorClient
