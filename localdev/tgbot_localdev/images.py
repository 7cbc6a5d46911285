"""The project's container images: built by ``hack/build-images.sh`` (buildah, cached by content)
and loaded into a cluster the way that cluster takes images without a registry.

- our pod node: ``ctr -n k8s.io images import`` into its containerd;
- kind: ``kind load image-archive ARCHIVE --name CLUSTER``;
- k3d: ``k3d image import ARCHIVE --cluster CLUSTER``.

``TGBOT_IMAGE_LOADER`` picks the last two for ``USE_EXISTING_CLUSTER=true`` (``kind:NAME``,
``k3d:NAME``, or ``none`` when the images are already in the cluster's runtime).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-images.sh"


class ImageError(RuntimeError):
    """An image could not be built or loaded."""


@dataclass(frozen=True)
class Image:
    """One built image: its short name, full reference and docker-archive file."""

    name: str
    ref: str
    archive: Path
    size: int

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]


def parse_build_output(text: str) -> dict[str, Image]:
    """``NAME REF ARCHIVE SIZE`` lines (the build script's stdout) -> images by name."""
    images = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[3].isdigit():
            raise ImageError(f"unexpected line from {BUILD_SCRIPT.name}: {line!r}")
        name, ref, archive, size = parts
        images[name] = Image(name=name, ref=ref, archive=Path(archive), size=int(size))
    return images


def build_images(stream: IO[str] | None = None) -> dict[str, Image]:
    """Build what is missing (or find it in the cache); the images by name."""
    result = subprocess.run(
        [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=stream, text=True, check=False
    )
    if result.returncode != 0:
        raise ImageError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    images = parse_build_output(result.stdout)
    for wanted in ("pause", "tgbot-operator", "tgbot-sidecar", "echo-bot", "curl"):
        if wanted not in images:
            raise ImageError(f"{BUILD_SCRIPT} built no {wanted} image")
    return images


def load_into_existing_cluster(images: dict[str, Image], loader: str | None = None) -> None:
    """Load the images into a kind or k3d cluster (``TGBOT_IMAGE_LOADER``: kind:NAME, k3d:NAME, none)."""
    loader = loader if loader is not None else os.environ.get("TGBOT_IMAGE_LOADER", "")
    if loader == "none":
        return
    tool, _, cluster = loader.partition(":")
    for image in images.values():
        if image.name == "pause":
            continue  # those clusters bring their own sandbox image
        if tool == "kind":
            argv = ["kind", "load", "image-archive", str(image.archive), "--name", cluster or "kind"]
        elif tool == "k3d":
            argv = ["k3d", "image", "import", str(image.archive), "--cluster", cluster or "k3s-default"]
        else:
            raise ImageError(
                "USE_EXISTING_CLUSTER=true with pod tests needs TGBOT_IMAGE_LOADER=kind:NAME, k3d:NAME "
                f"or none (images already loaded), not {loader!r}"
            )
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        if result.returncode != 0:
            raise ImageError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
