#!/usr/bin/env bash
# Copy the TelegramBot CRD (crds/, the source of truth) into the operator chart, which renders it
# from charts/telegram-bot-operator/files/ (Helm cannot read files outside a chart).
#   hack/sync-chart-crd.sh          # refresh the copy
#   hack/sync-chart-crd.sh --check  # exit 1 when the copy is stale (tests/charts check it too)
set -euo pipefail
cd "$(dirname "$0")/.."
src=crds/telegrambots.tgbot.dev.yaml
dst=charts/telegram-bot-operator/files/telegrambots.tgbot.dev.yaml
[ -f "$src" ] || { echo "sync-chart-crd: $src does not exist" >&2; exit 1; }
if [ "${1:-}" = --check ]; then
  if cmp -s "$src" "$dst"; then exit 0; fi
  echo "sync-chart-crd: $dst differs from $src; run hack/sync-chart-crd.sh" >&2
  exit 1
fi
cp "$src" "$dst"
echo "sync-chart-crd: copied $src to $dst" >&2
