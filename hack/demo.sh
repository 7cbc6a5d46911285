#!/usr/bin/env bash
# The local demo in one command: control plane (built once), CRD, Bot API
# emulator, operator, an aiogram echo bot behind the sidecar; see README.
#   hack/demo.sh                 # runs every step and checks it
#   hack/demo.sh --interactive   # then lets you type messages to the bot
#   hack/demo.sh --pods          # the same story on a pod cluster: our images, both charts (root;
#                                # minutes, where the default takes seconds; docs/test-cluster.md)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/bootstrap.sh
exec .venv/bin/tgbot-demo "$@"
