#!/usr/bin/env bash
# Build the test cluster (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl) and helm 4 + helm 3 from their Go modules, at pinned versions, into a cache
# folder outside the work tree. Does nothing when the binaries are already there.
#
# Why from source: no Docker engine and no prebuilt Kubernetes download are
# available on our machines, but the Go module proxy is. The result is the same
# set of binaries controller-runtime's envtest uses (its KUBEBUILDER_ASSETS).
#
#   hack/build-controlplane.sh            # build what is missing, print the folder
#   FORCE=1 hack/build-controlplane.sh    # rebuild everything
#   hack/build-controlplane.sh --check    # exit 0 (and print the folder) only if already built
#
# Environment:
#   K8S_VERSION, ETCD_VERSION, HELM_VERSION   pinned versions (defaults below)
#   TGBOT_CACHE_DIR   cache root (default ${XDG_CACHE_HOME:-~/.cache}/telegram-bot-operator)
#   JOBS              go build -p (default: number of CPUs)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM4_VERSION="${HELM4_VERSION:-v4.3.1}"
CACHE_ROOT="${TGBOT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/telegram-bot-operator}"
OUT="$CACHE_ROOT/controlplane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM4_VERSION}-${HELM_VERSION}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
BUILD_DATE="$(date -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)"

# Fail loudly rather than silently fetching another Go toolchain.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOWORK=off GO111MODULE=on CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[controlplane-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_all() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl helm helm3 helm4; do
    [ -x "$OUT/$b" ] || return 1
  done
}

if [ "${FORCE:-0}" != 1 ] && have_all; then
  echo "$OUT"
  exit 0
fi
if [ "${1:-}" = --check ]; then
  exit 3
fi

command -v go >/dev/null || die "go not found: install Go (>= 1.25) first"
mkdir -p "$OUT"
WORK="$(mktemp -d -t tgbot-controlplane-build.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
MODCACHE="$(go env GOMODCACHE)"
log "go: $(go version); GOPROXY=$(go env GOPROXY)"
log "building into $OUT (a cold build takes 15-35 minutes on 2 cores; later runs reuse it)"

# Download module@version into the module cache from a scratch module.
download() {
  local s="$WORK/dl"
  mkdir -p "$s"
  (cd "$s" && { [ -f go.mod ] || go mod init local.invalid/dl >/dev/null 2>&1; } && go mod download "$1")
}

timed() {
  local name="$1" t0=$SECONDS; shift
  "$@"
  log "$name: $((SECONDS - t0)) s"
}

# --- etcd ------------------------------------------------------------------
# `package main` is the root of go.etcd.io/etcd/server/v3, whose go.mod has
# replace lines, so `go install` refuses it; a consumer module ignores them.
build_etcd() {
  [ "${FORCE:-0}" != 1 ] && [ -x "$OUT/etcd" ] && return 0
  local mod="$WORK/etcd"
  mkdir -p "$mod" && cd "$mod"
  go mod init local.invalid/etcd-build >/dev/null 2>&1
  timed "etcd: go get" go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  local p=go.etcd.io/etcd/api/v3/version
  timed "etcd: go build" go build -mod=mod -p "$JOBS" -trimpath \
    -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$OUT/etcd.tmp" "$OUT/etcd"
  # Not `| head -1`: with pipefail, head closing the pipe early can kill the build with SIGPIPE (141).
  "$OUT/etcd" --version >&2
  : "$p"
}

# --- Kubernetes ------------------------------------------------------------
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging folders that are not in the module zip; a consumer module that
# replaces each with its published v0.<minor>.<patch> builds the commands.
build_k8s() {
  local b missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [ -x "$OUT/$b" ] || missing=1
  done
  if [ "${FORCE:-0}" != 1 ] && [ "$missing" = 0 ]; then
    return 0
  fi
  local v="${K8S_VERSION#v}" major minor patch
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"; patch="${v##*.}"
  local staging_version="v0.${minor}.${patch}"
  download "k8s.io/kubernetes@${K8S_VERSION}"
  local upstream_mod="$MODCACHE/cache/download/k8s.io/kubernetes/@v/${K8S_VERSION}.mod"
  [ -f "$upstream_mod" ] || die "missing $upstream_mod"
  local -a staging
  mapfile -t staging < <(sed -nE \
    's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[A-Za-z0-9._-]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' \
    "$upstream_mod" | sort -u)
  [ "${#staging[@]}" -ge 20 ] || die "parsed only ${#staging[@]} staging modules from $upstream_mod"
  local mod="$WORK/k8s"
  mkdir -p "$mod" && cd "$mod"
  go mod init local.invalid/k8s-build >/dev/null 2>&1
  local -a edits=()
  local m
  for m in "${staging[@]}"; do edits+=("-replace=${m}=${m}@${staging_version}"); done
  go mod edit "${edits[@]}"
  local -a pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
                 k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet
                 k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  local -a getargs=()
  for m in "${pkgs[@]}"; do getargs+=("${m}@${K8S_VERSION}"); done
  timed "kubernetes: go get" go get "${getargs[@]}"
  local commit info="$MODCACHE/cache/download/k8s.io/kubernetes/@v/${K8S_VERSION}.info"
  commit="$(sed -nE 's/.*"Hash":"([0-9a-f]+)".*/\1/p' "$info" 2>/dev/null || true)"
  # Stamp versions as hack/lib/version.sh does, else /version says v0.0.0-master
  # and helm rejects charts that declare kubeVersion.
  local ldflags="-s -w" vp
  for vp in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X ${vp}.gitVersion=${K8S_VERSION} -X ${vp}.gitMajor=${major} -X ${vp}.gitMinor=${minor}"
    ldflags+=" -X ${vp}.gitTreeState=clean -X ${vp}.buildDate=${BUILD_DATE}"
    [ -n "$commit" ] && ldflags+=" -X ${vp}.gitCommit=${commit}"
  done
  mkdir -p "$WORK/k8s-out"
  timed "kubernetes: go build" go build -mod=mod -p "$JOBS" -trimpath -pgo=off \
    -ldflags "$ldflags" -o "$WORK/k8s-out/" "${pkgs[@]}"
  mv "$WORK"/k8s-out/* "$OUT/"
  "$OUT/kube-apiserver" --version >&2
}

# --- helm ------------------------------------------------------------------
# Helm 4 is what `helm` runs (current); Helm 3 is kept as `helm3` so the charts are tested with both.
build_helm() {
  local major="$1" version="$2" name="helm$1"
  [ "${FORCE:-0}" != 1 ] && [ -x "$OUT/$name" ] && return 0
  local p="helm.sh/helm/v${major}"
  download "${p}@${version}"
  local hmod="$MODCACHE/cache/download/helm.sh/helm/v${major}/@v/${version}.mod" kminor
  # helm's Makefile: the Kubernetes minor it claims is client-go's minor.
  kminor="$(sed -nE '/^[[:space:]]*k8s\.io\/client-go v0\./{s#^[[:space:]]*k8s\.io/client-go v0\.([0-9]+)\..*#\1#p;q}' "$hmod")"
  local ldflags="-s -w -X ${p}/internal/version.version=${version} -X ${p}/internal/version.gitTreeState=clean"
  if [ "$major" = 3 ]; then
    ldflags+=" -X ${p}/pkg/chartutil.k8sVersionMajor=1 -X ${p}/pkg/chartutil.k8sVersionMinor=${kminor:-34}"
    ldflags+=" -X ${p}/pkg/lint/rules.k8sVersionMajor=1 -X ${p}/pkg/lint/rules.k8sVersionMinor=${kminor:-34}"
  else
    ldflags+=" -X ${p}/pkg/chart/common.k8sVersionMajor=1 -X ${p}/pkg/chart/common.k8sVersionMinor=${kminor:-35}"
    ldflags+=" -X ${p}/pkg/lint/rules.k8sVersionMajor=1 -X ${p}/pkg/lint/rules.k8sVersionMinor=${kminor:-35}"
  fi
  mkdir -p "$WORK/helm-bin-$major"
  (cd "$WORK/dl" && timed "helm $version: go install" env GOBIN="$WORK/helm-bin-$major" \
    go install -p "$JOBS" -trimpath -ldflags "$ldflags" "${p}/cmd/helm@${version}")
  mv "$WORK/helm-bin-$major/helm" "$OUT/$name"
  "$OUT/$name" version >&2
}

T0=$SECONDS
build_etcd
build_k8s
build_helm 4 "$HELM4_VERSION"
build_helm 3 "$HELM_VERSION"
ln -sf helm4 "$OUT/helm"
cat > "$OUT/VERSIONS" <<VERSIONS
kubernetes=${K8S_VERSION}
etcd=${ETCD_VERSION}
helm=${HELM4_VERSION}
helm3=${HELM_VERSION}
built=${BUILD_DATE}
go=$(go env GOVERSION)
VERSIONS
log "done in $((SECONDS - T0)) s"
echo "$OUT"
