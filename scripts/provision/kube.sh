#!/usr/bin/env bash
# Build and cache a real Kubernetes control plane for integration tests.
#
# Everything is compiled from the Go module proxy (no other download source):
#   kube-apiserver, kube-controller-manager (+ kubectl if none is installed)
#     and the node components kube-scheduler, kubelet, kube-proxy
#     from k8s.io/kubernetes, through a throwaway build module whose replace
#     directives pin every k8s.io staging module to its published v0.X.Y;
#   etcd from go.etcd.io/etcd/server/v3 (the version k8s.io/kubernetes pins);
#   helm from helm.sh/helm/v3/cmd/helm (go install, its own module graph).
#
# Binaries land in ${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}/kube/<version>/bin.
# Idempotent: finished binaries are recorded in a stamp file and skipped.
# Progress goes to stderr; stdout gets "KUBECTL=<path>" and, as its last line,
# the bin dir.
#
# Usage: kube.sh [--check] [--node]
#   --check   build nothing; exit 3 (listing what is missing on stderr) unless
#             every control-plane binary is already cached. Used by
#             test/harness/kube.ts.
#   --node    with --check: also require kube-scheduler, kubelet, kube-proxy
#             (test/harness/node-cluster.ts). A build always builds them.
#
# Environment:
#   NODEWARDEN_CACHE          cache root (default $HOME/.cache/nodewarden)
#   NODEWARDEN_KUBE_VERSION   k8s.io/kubernetes version (default below)
#   NODEWARDEN_BUILD_JOBS     go build -p / GOMAXPROCS (default 2)
#   NODEWARDEN_KUBE_BUILD_KUBECTL=1  build kubectl even if one is installed
set -euo pipefail

KUBE_VERSION="${NODEWARDEN_KUBE_VERSION:-v1.33.13}"
HELM_VERSION="${NODEWARDEN_HELM_VERSION:-v3.18.6}"
JOBS="${NODEWARDEN_BUILD_JOBS:-2}"
CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
ROOT="$CACHE/kube/$KUBE_VERSION"
BIN="$ROOT/bin"
SRC="$CACHE/kube/src/$KUBE_VERSION"
STAMP="$BIN/.stamp"

CHECK_ONLY=0
CHECK_NODE=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    --node) CHECK_NODE=1 ;;
    *) echo "usage: $0 [--check] [--node]" >&2; exit 2 ;;
  esac
done

log() { printf '[kube.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$CHECK_ONLY" = 1 ] || command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= 1.24)"

mkdir -p "$BIN" "$SRC"

# One build at a time per cache (parallel test runs may all call us).
if [ "$CHECK_ONLY" = 0 ] && command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT/.lock"
  if ! flock -n 9; then
    log "another kube.sh holds $ROOT/.lock; waiting"
    flock 9
  fi
fi

# Bump STAMP_REV when the way binaries are built changes: everything is
# rebuilt (mostly relinked, thanks to the Go build cache).
STAMP_REV=2
if ! grep -qx "rev=$STAMP_REV" "$STAMP" 2>/dev/null; then
  echo "rev=$STAMP_REV" >"$STAMP"
fi
stamped() { grep -qxF "$1" "$STAMP" && [ -x "$BIN/$1" ]; }
stamp() { grep -qxF "$1" "$STAMP" || echo "$1" >>"$STAMP"; }

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOMAXPROCS="$JOBS" CGO_ENABLED=0
BUILD_FLAGS=(-p "$JOBS" -trimpath -buildvcs=false)

# kubectl: use an installed one if there is one (symlinked into the bin dir
# so that "$BIN/kubectl" always works), else build it with the rest.
SYS_KUBECTL=""
kubectl_candidates=(/usr/bin/kubectl /usr/local/bin/kubectl "$(command -v kubectl 2>/dev/null || true)")
if [ "${NODEWARDEN_KUBE_BUILD_KUBECTL:-0}" = 1 ]; then kubectl_candidates=(); fi
for c in "${kubectl_candidates[@]}"; do
  [ -n "$c" ] && [ -x "$c" ] || continue
  # not one we built ourselves (when the bin dir is on PATH)
  case "$c" in "$BIN"/*) continue ;; esac
  case "$(readlink -f "$c")" in "$(readlink -f "$BIN")"/*) continue ;; esac
  SYS_KUBECTL="$c"; break
done
if [ -n "$SYS_KUBECTL" ] && ! stamped kubectl && [ "$(readlink "$BIN/kubectl" 2>/dev/null || true)" != "$SYS_KUBECTL" ]; then
  ln -sfn "$SYS_KUBECTL" "$BIN/kubectl"
  log "using installed kubectl $SYS_KUBECTL"
fi

need_kube=()
stamped kube-apiserver || need_kube+=(kube-apiserver)
stamped kube-controller-manager || need_kube+=(kube-controller-manager)
# Node components (test/harness/node-cluster.ts). --check without --node does
# not ask for them, so control-plane-only tests run on an older cache.
NODE_BINS=(kube-scheduler kubelet kube-proxy)
need_node=()
for b in "${NODE_BINS[@]}"; do stamped "$b" || need_node+=("$b"); done
if [ "$CHECK_ONLY" = 0 ] || [ "$CHECK_NODE" = 1 ]; then need_kube+=("${need_node[@]}"); fi
if ! stamped kubectl && { [ -z "$SYS_KUBECTL" ] || [ ! -x "$BIN/kubectl" ]; }; then
  need_kube+=(kubectl)
fi
need_etcd=1; stamped etcd && need_etcd=0
need_helm=1; stamped helm && need_helm=0

if [ "$CHECK_ONLY" = 1 ]; then
  missing="${need_kube[*]:-}"
  [ "$need_etcd" = 1 ] && missing="$missing etcd"
  [ "$need_helm" = 1 ] && missing="$missing helm"
  missing="${missing# }"
  if [ -n "$missing" ]; then
    log "not built yet in $BIN: $missing (run: bash $0)"
    exit 3
  fi
  echo "KUBECTL=$BIN/kubectl"
  echo "$BIN"
  exit 0
fi

if [ "${#need_kube[@]}" -gt 0 ] || [ "$need_etcd" = 1 ]; then
  start=$SECONDS
  log "resolving k8s.io/kubernetes@$KUBE_VERSION"
  kmod="$(cd "$SRC" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' || true)"
  [ -n "$kmod" ] && [ -f "$kmod" ] || die "could not download k8s.io/kubernetes@$KUBE_VERSION go.mod"
  staging_ver="v0.${KUBE_VERSION#v1.}"
  etcd_ver="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$kmod")"
  [ -n "$etcd_ver" ] || die "no go.etcd.io/etcd/server/v3 requirement in $kmod"
  # Every staging module (k8s.io/X => ./staging/src/k8s.io/X) except the
  # sample-* modules, which nothing we build imports (and which the proxy
  # may not serve).
  mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$kmod" | grep -v '^k8s.io/sample-')
  [ "${#staging[@]}" -gt 10 ] || die "found only ${#staging[@]} staging modules in $kmod"
  gover="$(awk '$1 == "go" { print $2; exit }' "$kmod")"
  {
    echo "// Generated by scripts/provision/kube.sh: throwaway module to build k8s $KUBE_VERSION."
    echo "module nodewarden.local/kubebuild"
    echo
    echo "go ${gover:-1.24.0}"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $KUBE_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $etcd_ver"
    echo ")"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	$m => $m $staging_ver"; done
    echo ")"
  } >"$SRC/go.mod.new"
  if ! cmp -s "$SRC/go.mod.new" "$SRC/go.mod" 2>/dev/null; then
    mv "$SRC/go.mod.new" "$SRC/go.mod"
    rm -f "$SRC/go.sum"
  else
    rm -f "$SRC/go.mod.new"
  fi
  [ -f "$SRC/main.go" ] || printf 'package main\n\nfunc main() {}\n' >"$SRC/main.go"
  log "build module $SRC: k8s $KUBE_VERSION, staging $staging_ver (${#staging[@]} modules), etcd $etcd_ver"

  # Version stamping as in kubernetes' hack/lib/version.sh, so that the
  # server reports v1.X.Y (clients such as helm parse it).
  kinfo="${kmod%.mod}.info"
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$kinfo" 2>/dev/null | sed 's/\.[0-9]*Z$/Z/')"
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  kldflags="-s -w"
  for vp in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    kldflags+=" -X $vp.gitVersion=$KUBE_VERSION -X $vp.gitMajor=1 -X $vp.gitMinor=$minor"
    kldflags+=" -X $vp.gitTreeState=clean -X $vp.gitCommit= -X $vp.buildDate=${build_date:-1970-01-01T00:00:00Z}"
  done

  pkgs=()
  for b in "${need_kube[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  if [ "$need_etcd" = 1 ]; then pkgs+=("go.etcd.io/etcd/server/v3"); fi
  tmpout="$(mktemp -d "$ROOT/.build.XXXXXX")"
  trap 'rm -rf "$tmpout"' EXIT
  log "go build (-p $JOBS): ${pkgs[*]}"
  (cd "$SRC" && go build "${BUILD_FLAGS[@]}" -ldflags="$kldflags" -o "$tmpout/" "${pkgs[@]}") >&2 \
    || die "go build failed (see above)"
  for b in "${need_kube[@]}"; do
    mv -f "$tmpout/$b" "$BIN/$b"; stamp "$b"
  done
  if [ "$need_etcd" = 1 ]; then
    # go names the binary of ".../server/v3" after "server" (older go: "v3").
    for n in server v3; do
      if [ -f "$tmpout/$n" ]; then mv -f "$tmpout/$n" "$BIN/etcd"; break; fi
    done
    [ -x "$BIN/etcd" ] || die "etcd binary not found in $tmpout: $(ls "$tmpout")"
    stamp etcd
  fi
  rm -rf "$tmpout"; trap - EXIT
  log "kubernetes/etcd built in $((SECONDS - start))s"
fi

if [ "$need_helm" = 1 ]; then
  start=$SECONDS
  log "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  tmpout="$(mktemp -d "$ROOT/.build.XXXXXX")"
  trap 'rm -rf "$tmpout"' EXIT
  # As helm's Makefile does; its k8s client libraries are v0.33 for helm 3.18.
  hminor="$(cd "$SRC/.." && GOFLAGS= go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | xargs awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' || true)"
  hldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  if [ -n "$hminor" ]; then
    for vp in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      hldflags+=" -X $vp.k8sVersionMajor=1 -X $vp.k8sVersionMinor=$hminor"
    done
  fi
  (cd "$SRC/.." && GOFLAGS= GOBIN="$tmpout" go install "${BUILD_FLAGS[@]}" -ldflags="$hldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >&2 \
    || die "go install helm failed (see above)"
  mv -f "$tmpout/helm" "$BIN/helm"; stamp helm
  rm -rf "$tmpout"; trap - EXIT
  log "helm built in $((SECONDS - start))s"
fi

for b in etcd kube-apiserver kube-controller-manager helm kubectl "${NODE_BINS[@]}"; do
  [ -x "$BIN/$b" ] || die "missing $BIN/$b after build"
done
{
  echo "k8s.io/kubernetes $KUBE_VERSION"
  echo "helm.sh/helm/v3 $HELM_VERSION"
  "$BIN/etcd" --version 2>/dev/null | head -1 || true
} >"$ROOT/VERSIONS"
log "ready: $(tr '\n' ';' <"$ROOT/VERSIONS") in $BIN"
export KUBECTL="$BIN/kubectl"
echo "KUBECTL=$KUBECTL"
echo "$BIN"
