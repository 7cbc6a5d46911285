#!/usr/bin/env bash
# Install what the pod test cluster needs beside the Kubernetes binaries, from Debian's packages:
# the container runtime (containerd + runc), CNI plugins (bridge, host-local, portmap, loopback),
# iptables for kube-proxy, and the image tools (buildah without a daemon, mmdebstrap for the base
# image, busybox-static for the pause image). Idempotent: does nothing when all are installed.
#
#   hack/install-node-deps.sh            # install what is missing (needs root / sudo)
#   hack/install-node-deps.sh --check    # exit 0 only if everything is installed
set -euo pipefail

PACKAGES=(
  containerd runc containernetworking-plugins iptables conntrack
  buildah mmdebstrap busybox-static ca-certificates
)

log() { printf '[node-deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg-query prints "install ok installed" only for a fully installed package.
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = --check ]; then
  log "missing: ${missing[*]}"
  exit 3
fi

command -v apt-get >/dev/null || { log "ERROR: apt-get not found: install ${missing[*]} yourself"; exit 1; }
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
t0=$SECONDS
log "installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# --no-install-recommends: containerd's and buildah's recommends pull in daemons we never start.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# The Debian package enables containerd's own service; the tests start their own instance with
# their own config and socket, so a service that is running is left alone but never needed.
log "done in $((SECONDS - t0)) s"
