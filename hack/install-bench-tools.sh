#!/usr/bin/env bash
# Tools of the sidecar benchmark (benchmarks/sidecar.py): nginx (the reference reverse proxy) and wrk
# (the closed-loop load generator), from the distribution's packages. Needs root (or sudo).
# The smoke tests in tests/benchmarks need neither: they use the Python load generator.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  if command -v wrk >/dev/null 2>&1; then
    echo "nginx and wrk are installed" >&2
    exit 0
  fi
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root: sudo $0   (it runs apt-get install -y nginx-light wrk)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx-light where the distribution still has it, else nginx (Debian 12+ folded it into nginx).
apt-get install -y --no-install-recommends nginx-light wrk || apt-get install -y --no-install-recommends nginx wrk
# The benchmark runs nginx itself, unprivileged, from a generated config; the service is not needed.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
echo "installed: $(nginx -v 2>&1), $(wrk --version 2>&1 | head -1)" >&2
