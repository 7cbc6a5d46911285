#!/usr/bin/env bash
# The whole test suite in one command, on a fresh machine or a warm one:
#   1. a virtualenv in .venv with the project and its dev tools (reinstalled when pyproject.toml changes),
#   2. the Kubernetes control plane binaries, built from Go modules once and cached
#      (skipped when KUBEBUILDER_ASSETS is set, or USE_EXISTING_CLUSTER=true),
#   3. ruff, mypy, then pytest (arguments are passed on to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/bootstrap.sh

if [ "${USE_EXISTING_CLUSTER:-}" != true ] && [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  KUBEBUILDER_ASSETS="$(hack/build-controlplane.sh)"
  export KUBEBUILDER_ASSETS
fi

echo "[test] ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy" >&2
.venv/bin/mypy
echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
