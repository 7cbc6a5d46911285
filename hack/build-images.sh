#!/usr/bin/env bash
# Build the project's container images from its own Dockerfiles, with buildah (no daemon, no
# registry), into a cache outside the work tree. An image is rebuilt only when its inputs change:
# its tag is the content hash of the Dockerfile, the files it copies and the base image.
#
#   1. the base: `debian:bookworm-slim` made from Debian's packages with mmdebstrap (variant minbase,
#      docs and man pages excluded as in the official slim image), tagged under the name the
#      Dockerfiles' FROM uses. A production build pulls the real image of that name instead.
#   2. the root Dockerfile's targets operator and sidecar (context: the repository root) and
#      examples/echo-bot/Dockerfile (context: its folder), built as they are.
#   3. a pause (pod sandbox) image: busybox-static's `sleep`, for containerd's sandbox_image, and a
#      curl image (the base + Debian's curl) for the operator chart's `helm test` pod, which
#      defaults to curlimages/curl from a registry.
# Each image is saved as a docker-archive tar (what `ctr images import`, `kind load image-archive`
# and `k3d image import` read).
#
# stdout: one line per image: NAME REF ARCHIVE SIZE_BYTES   (logs go to stderr)
#   hack/build-images.sh            # build what is missing
#   hack/build-images.sh --check    # exit 0 only when every image is already built
#
# This machine's package traffic goes through a proxy only the host trusts, so the build mounts the
# host's CA bundle, pip config and apt Acquire settings read-only into every RUN step; the
# Dockerfiles know nothing of it and build unchanged against the public index and mirrors.
#
# Environment: TGBOT_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/telegram-bot-operator),
#              DEBIAN_SUITE (default bookworm, must match the Dockerfiles' FROM).
set -euo pipefail
# All of it is one function, read whole before it runs: editing this file (or a checkout) while a
# build runs cannot make a running bash execute a mix of two versions.
main() {
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${TGBOT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/telegram-bot-operator}"
IMAGES="$CACHE_ROOT/images"
ARCHIVES="$IMAGES/archives"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
BASE_REF="docker.io/library/debian:${DEBIAN_SUITE}-slim"
# Bump when the recipe of the base changes (the Debian mirror's contents are not part of the key).
BASE_RECIPE=2
BUILDAH=(buildah --root "$IMAGES/storage" --runroot "$IMAGES/run" --storage-driver vfs)

log() { printf '[build-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# name  dockerfile  context  target (empty: the last stage)  inputs (relative to ROOT; must cover
# every COPY of the target's stages)
KIT_INPUTS="kit/pyproject.toml kit/tgbot_kit .dockerignore"
IMAGE_SPECS=(
  "tgbot-operator|Dockerfile|.|operator|operator/pyproject.toml operator/tgbot_operator $KIT_INPUTS"
  "tgbot-sidecar|Dockerfile|.|sidecar|sidecar/pyproject.toml sidecar/tgbot_sidecar $KIT_INPUTS"
  "echo-bot|examples/echo-bot/Dockerfile|examples/echo-bot||examples/echo-bot"
)

hash_files() {
  (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

base_key() {
  printf '%s\n' "$BASE_RECIPE" "$DEBIAN_SUITE" | sha256sum | cut -c1-16
}

# buildah's chroot isolation now and then fails to start a RUN step under load ("sealing memfd
# copy: Device or resource busy"); such a step is retried, a real build error fails three times.
retry() {
  local attempt
  for attempt in 1 2 3; do
    "$@" && return 0
    [ $attempt = 3 ] && return 1
    log "attempt $attempt failed; retrying: ${*:1:3} ..."
    sleep 2
  done
}

prune_older() { # archive: remove the archives of earlier inputs of the same image
  local base="${1%-*}"
  find "$ARCHIVES" -maxdepth 1 -name "$(basename "$base")-*.tar" ! -name "$(basename "$1")" -delete
}

emit() { # name ref archive
  echo "$1 $2 $3 $(stat -c %s "$3")"
}

check_only=0
[ "${1:-}" = --check ] && check_only=1

# --- keys of everything, to answer --check without a tool installed -------------------------------
bkey="$(base_key)"
pause_key="$(sha256sum /bin/busybox 2>/dev/null | cut -c1-16 || echo none)"
curl_key="$(printf '%s\n' curl 1 "$bkey" | sha256sum | cut -c1-12)"
declare -A keys
for spec in "${IMAGE_SPECS[@]}"; do
  IFS='|' read -r name dockerfile _context target inputs <<<"$spec"
  # shellcheck disable=SC2086 # inputs is a list of paths
  keys[$name]="$( { hash_files "$dockerfile" $inputs; echo "$bkey" "$target"; } | sha256sum | cut -c1-12)"
done
if [ $check_only = 1 ]; then
  [ -f "$ARCHIVES/pause-$pause_key.tar" ] || exit 3
  [ -f "$ARCHIVES/curl-$curl_key.tar" ] || exit 3
  for name in "${!keys[@]}"; do [ -f "$ARCHIVES/$name-${keys[$name]}.tar" ] || exit 3; done
  exit 0
fi

command -v buildah >/dev/null || die "buildah not found: run hack/install-node-deps.sh"
mkdir -p "$ARCHIVES"

# --- the base image ----------------------------------------------------------------------------------
build_base() {
  local have
  have="$("${BUILDAH[@]}" inspect --type image --format '{{index .ImageAnnotations "dev.tgbot.base-key"}}' \
    "$BASE_REF" 2>/dev/null || true)"
  [ "$have" = "$bkey" ] && return 0
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run hack/install-node-deps.sh"
  local t0=$SECONDS tmp c
  tmp="$(mktemp -d -t tgbot-base.XXXXXX)"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  local aptopts=()
  # This machine's mirror serves a snapshot whose Release files have expired; follow the host.
  if apt-config dump 2>/dev/null | grep '^Acquire::Check-Valid-Until "false"' >/dev/null; then  # not -q: SIGPIPE under pipefail
    aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"')
  fi
  log "base $BASE_REF: mmdebstrap $DEBIAN_SUITE (minbase)"
  # The same dpkg excludes as the official slim image; they stay in the image (dpkg.cfg.d), so
  # packages installed on top of it leave their docs out too.
  mmdebstrap --quiet --variant=minbase --mode=root "${aptopts[@]}" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    `# mmdebstrap merges /usr with the usrmerge package, which drags a full perl in: not in slim` \
    --customize-hook='chroot "$1" apt-get purge --yes --quiet --autoremove usrmerge >&2' \
    "$DEBIAN_SUITE" "$tmp/rootfs.tar" >&2
  c="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$c" "$tmp/rootfs.tar" / >/dev/null
  "${BUILDAH[@]}" config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --annotation "dev.tgbot.base-key=$bkey" "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$BASE_REF" >/dev/null
  log "base: $((SECONDS - t0)) s"
}

# --- mounts that let RUN steps use this machine's package proxy ------------------------------------
# The CA bundle goes to a path of its own (a package's postinst rewrites /etc/ssl/certs), and pip
# gets a config naming it, plus the host's index when it has one.
build_mounts=()
host_ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
mounts_dir="$(mktemp -d -t tgbot-build-mounts.XXXXXX)"
trap 'rm -rf "$mounts_dir"' EXIT
if [ -f "$host_ca" ]; then
  build_mounts+=(-v "$host_ca:/run/tgbot-host-ca.crt:ro")
  {
    echo "[global]"
    echo "cert = /run/tgbot-host-ca.crt"
    index="${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}"
    [ -n "$index" ] && echo "index-url = $index"
  } >"$mounts_dir/pip.conf"
  build_mounts+=(-v "$mounts_dir/pip.conf:/etc/pip.conf:ro")
fi
for f in /etc/apt/apt.conf.d/*; do
  [ -f "$f" ] && grep -q '^Acquire::' "$f" && build_mounts+=(-v "$f:/etc/apt/apt.conf.d/99host-$(basename "$f"):ro")
done

build_image() { # name dockerfile context target
  local name="$1" dockerfile="$2" context="$3" target="$4" key="${keys[$1]}"
  local target_args=()
  [ -n "$target" ] && target_args=(--target "$target")
  local ref="tgbot.local/$name:$key" archive="$ARCHIVES/$name-$key.tar"
  if [ ! -f "$archive" ]; then
    build_base
    local t0=$SECONDS
    log "$name: buildah bud $dockerfile ${target_args[*]}"
    # No --layers: with the vfs driver every cached layer is a full copy of the root file system
    # (gigabytes); the cache that matters is ours, by content, one archive per input hash.
    retry "${BUILDAH[@]}" bud --quiet --isolation chroot --network host --pull=never \
      "${build_mounts[@]}" "${target_args[@]}" -f "$ROOT/$dockerfile" -t "$ref" "$ROOT/$context" >&2
    rm -f "$archive.$$.tmp"
    "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$archive.$$.tmp:$ref" >&2
    prune_older "$archive"
    mv "$archive.$$.tmp" "$archive"
    # The archive is the cache; the store keeps only the base.
    "${BUILDAH[@]}" rmi "$ref" >/dev/null
    log "$name: $((SECONDS - t0)) s, $(( $(stat -c %s "$archive") / 1024 / 1024 )) MiB"
  fi
  emit "$name" "$ref" "$archive"
}

build_pause() {
  local ref="tgbot.local/pause:$pause_key" archive="$ARCHIVES/pause-$pause_key.tar"
  if [ ! -f "$archive" ]; then
    [ -x /bin/busybox ] || die "/bin/busybox not found: run hack/install-node-deps.sh"
    file -L /bin/busybox 2>/dev/null | grep -q 'dynamically' && die "/bin/busybox is not static (busybox-static)"
    local c
    c="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" copy "$c" /bin/busybox /busybox >/dev/null
    # It only holds the pod's namespaces; PID 1 ignores SIGTERM, containerd kills the sandbox.
    "${BUILDAH[@]}" config --entrypoint '["/busybox", "sleep", "2147483647"]' --user 65535:65535 "$c"
    "${BUILDAH[@]}" commit --quiet --rm "$c" "$ref" >/dev/null
    rm -f "$archive.$$.tmp"
    "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$archive.$$.tmp:$ref" >&2
    prune_older "$archive"
    mv "$archive.$$.tmp" "$archive"
    "${BUILDAH[@]}" rmi "$ref" >/dev/null
  fi
  emit pause "$ref" "$archive"
}

build_curl() {
  local ref="tgbot.local/curl:$curl_key" archive="$ARCHIVES/curl-$curl_key.tar"
  if [ ! -f "$archive" ]; then
    build_base
    local t0=$SECONDS c
    c="$("${BUILDAH[@]}" from --pull=never "$BASE_REF")"
    retry "${BUILDAH[@]}" run --isolation chroot --network host "${build_mounts[@]}" "$c" -- sh -c \
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq --yes --no-install-recommends curl >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log' >&2
    "${BUILDAH[@]}" config --entrypoint '["curl"]' --cmd '' --user 65532:65532 "$c"
    "${BUILDAH[@]}" commit --quiet --rm "$c" "$ref" >/dev/null
    rm -f "$archive.$$.tmp"
    "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$archive.$$.tmp:$ref" >&2
    prune_older "$archive"
    mv "$archive.$$.tmp" "$archive"
    "${BUILDAH[@]}" rmi "$ref" >/dev/null
    log "curl: $((SECONDS - t0)) s"
  fi
  emit curl "$ref" "$archive"
}

t_all=$SECONDS
build_pause
for spec in "${IMAGE_SPECS[@]}"; do
  IFS='|' read -r name dockerfile context target _inputs <<<"$spec"
  build_image "$name" "$dockerfile" "$context" "$target"
done
build_curl
log "all images ready in $((SECONDS - t_all)) s"
}
main "$@"
exit $?
