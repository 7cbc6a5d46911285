#!/usr/bin/env bash
# The whole test suite in one command, on a fresh machine or a warm one:
#   1. a virtualenv in .venv with the project and its dev tools (reinstalled when pyproject.toml changes),
#   2. the Kubernetes control plane binaries, built from Go modules once and cached
#      (skipped when KUBEBUILDER_ASSETS is set, or USE_EXISTING_CLUSTER=true),
#   3. for the pod tests (tests/pods, marker `pods`), beside step 2: the node's Debian packages (containerd, runc,
#      CNI plugins, iptables, buildah, mmdebstrap; installed once) and our images, built with buildah
#      from our Dockerfiles and cached by content (docs/test-cluster.md). They need root; without it
#      (and without USE_EXISTING_CLUSTER=true) the pod tests are skipped, saying why.
#   ruff, mypy and import-linter run first (after step 1), pytest last (arguments are passed on to it).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/bootstrap.sh

# The quick checks first: a lint error fails in a minute, not after a cold build.
echo "[test] ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy" >&2
.venv/bin/mypy
echo "[test] import-linter (.importlinter: layers and independent programs)" >&2
.venv/bin/lint-imports

# The node's packages and our images are made beside the control plane's Go build: they are mostly
# downloads, debootstrap and pip, the Go build is CPU, so on a cold machine they overlap.
images_pid=
if [ "${USE_EXISTING_CLUSTER:-}" = true ] || [ "$(id -u)" -eq 0 ]; then
  (
    [ "${USE_EXISTING_CLUSTER:-}" = true ] || hack/install-node-deps.sh
    echo "[test] images (buildah; cached by content)" >&2
    hack/build-images.sh >/dev/null
  ) &
  images_pid=$!
  trap '[ -z "$images_pid" ] || { pkill -P "$images_pid"; kill "$images_pid"; } 2>/dev/null || true' EXIT
else
  echo "[test] not root: the pod tests (tests/pods) will be skipped (see docs/test-cluster.md)" >&2
  export TGBOT_SKIP_PODS="pod tests need root for containerd, network namespaces and iptables"
fi

if [ "${USE_EXISTING_CLUSTER:-}" != true ] && [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  KUBEBUILDER_ASSETS="$(hack/build-controlplane.sh)"
  export KUBEBUILDER_ASSETS
fi

if [ -n "$images_pid" ]; then
  wait "$images_pid" || { echo "[test] ERROR: the node's packages or the images failed (above)" >&2; exit 1; }
  images_pid=
fi

echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
