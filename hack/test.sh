#!/usr/bin/env bash
# The whole test suite in one command, on a fresh machine or a warm one:
#   1. a virtualenv in .venv with the project and its dev tools (reinstalled when pyproject.toml changes),
#   2. the Kubernetes control plane binaries, built from Go modules once and cached
#      (skipped when KUBEBUILDER_ASSETS is set, or USE_EXISTING_CLUSTER=true),
#   3. for the pod tests (tests/pods, marker `pods`): the node's Debian packages (containerd, runc,
#      CNI plugins, iptables, buildah, mmdebstrap; installed once) and our images, built with buildah
#      from our Dockerfiles and cached by content (docs/test-cluster.md). They need root; without it
#      (and without USE_EXISTING_CLUSTER=true) the pod tests are skipped, saying why.
#   4. ruff, mypy, import-linter, then pytest (arguments are passed on to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/bootstrap.sh

if [ "${USE_EXISTING_CLUSTER:-}" != true ] && [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  KUBEBUILDER_ASSETS="$(hack/build-controlplane.sh)"
  export KUBEBUILDER_ASSETS
fi

if [ "${USE_EXISTING_CLUSTER:-}" = true ] || [ "$(id -u)" -eq 0 ]; then
  [ "${USE_EXISTING_CLUSTER:-}" = true ] || hack/install-node-deps.sh
  echo "[test] images (buildah; cached by content)" >&2
  hack/build-images.sh >/dev/null
else
  echo "[test] not root: the pod tests (tests/pods) will be skipped (see docs/test-cluster.md)" >&2
  export TGBOT_SKIP_PODS="pod tests need root for containerd, network namespaces and iptables"
fi

echo "[test] ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy" >&2
.venv/bin/mypy
echo "[test] import-linter (.importlinter: layers and independent programs)" >&2
.venv/bin/lint-imports
echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
