#!/usr/bin/env bash
# Create .venv with every distribution of the repository installed editable plus the dev tools
# (pyproject.toml's dependency group `dev`). Does nothing when no pyproject.toml has changed since
# the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# Each program is its own distribution, and each depends on tgbot-kit (kit/) by path; the emulator
# (tgbot-dev runs the sidecar) and localdev (the demo runs all three) depend on other programs too.
# pip would replace an editable install with a copy of what a path dependency names, so the programs
# go in first (with the dependencies: a copy of the kit among them), then the kit and the dependent
# distributions, editable and without dependencies, over them. `pip check` then proves that nothing
# they need is missing.
DISTRIBUTIONS=(operator sidecar)
DEPENDENT=(kit emulator localdev)
stamp=.venv/.installed-from
shopt -s nullglob
want="$(cat pyproject.toml ./*/pyproject.toml integrations/*/pyproject.toml hack/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
"$PYTHON" - <<'PY' || { echo "Python >= 3.11 is required (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(sys.version_info < (3, 11))
PY
echo "[bootstrap] installing the project into .venv (a minute or two the first time)" >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip >= 25.1 reads dependency groups (--group).
.venv/bin/python -m pip install --quiet --upgrade 'pip>=25.1'
editables=()
for d in "${DISTRIBUTIONS[@]}" integrations/*/; do
  [ -f "${d%/}/pyproject.toml" ] && editables+=(-e "./${d%/}")
done
.venv/bin/python -m pip install --quiet "${editables[@]}" --group dev
dependent=()
for d in "${DEPENDENT[@]}"; do dependent+=(-e "./$d"); done
.venv/bin/python -m pip install --quiet --no-deps "${dependent[@]}"
.venv/bin/python -m pip check >&2
echo "$want" > "$stamp"
