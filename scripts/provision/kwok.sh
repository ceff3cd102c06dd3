#!/usr/bin/env bash
# Build and cache KWOK (sigs.k8s.io/kwok), the Kubernetes WithOut Kubelet
# controller that keeps simulated Nodes Ready on a real kube-apiserver (the
# fleet-scale integration test and bench/kwok-fleet.ts).
#
# Compiled from the Go module proxy (go install, its own module graph), like
# the control plane in kube.sh. The binary lands in
# ${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}/kwok/<version>/bin/kwok.
# Next to it, stages.yaml holds KWOK's own node stages from the same module
# (node-initialize: Ready at once; node-heartbeat-with-lease: status refreshed
# every 10-20 min, liveness through Leases), passed with `kwok --config`.
# Idempotent: an existing binary is kept. Progress goes to stderr; stdout gets
# "KWOK_BIN=<path>", "KWOK_STAGES=<path>" and, as its last line, the binary's path.
#
# Usage: kwok.sh [--check]
#   --check   build nothing; exit 3 unless the binary is already cached.
#
# Environment:
#   NODEWARDEN_CACHE          cache root (default $HOME/.cache/nodewarden)
#   NODEWARDEN_KWOK_VERSION   sigs.k8s.io/kwok version (default below)
#   NODEWARDEN_BUILD_JOBS     go build -p / GOMAXPROCS (default 2)
set -euo pipefail

KWOK_VERSION="${NODEWARDEN_KWOK_VERSION:-v0.8.0}"
JOBS="${NODEWARDEN_BUILD_JOBS:-2}"
CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
ROOT="$CACHE/kwok/$KWOK_VERSION"
BIN="$ROOT/bin"

CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
  esac
done

log() { printf '[kwok.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

STAGES="$ROOT/stages.yaml"
done_line() { echo "KWOK_BIN=$BIN/kwok"; echo "KWOK_STAGES=$STAGES"; echo "$BIN/kwok"; }

if [ -x "$BIN/kwok" ] && [ -s "$STAGES" ]; then done_line; exit 0; fi
if [ "$CHECK_ONLY" = 1 ]; then
  log "kwok $KWOK_VERSION not built yet in $BIN (run: bash $0)"
  exit 3
fi
command -v go >/dev/null 2>&1 || die "go is not installed (kwok $KWOK_VERSION needs Go >= 1.26)"
mkdir -p "$BIN"

# One build at a time per cache (parallel test runs may all call us).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT/.lock"
  if ! flock -n 9; then
    log "another kwok.sh holds $ROOT/.lock; waiting"
    flock 9
  fi
  if [ -x "$BIN/kwok" ] && [ -s "$STAGES" ]; then done_line; exit 0; fi
fi

if [ ! -s "$STAGES" ]; then
  dir="$(cd "$ROOT" && GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' || true)"
  [ -n "$dir" ] && [ -d "$dir/kustomize/stage/node" ] || die "could not download sigs.k8s.io/kwok@$KWOK_VERSION sources"
  { cat "$dir/kustomize/stage/node/fast/node-initialize.yaml"; echo '---'
    cat "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"; } >"$STAGES.tmp"
  mv -f "$STAGES.tmp" "$STAGES"
  log "node stages written to $STAGES"
fi
if [ -x "$BIN/kwok" ]; then done_line; exit 0; fi

start=$SECONDS
tmpout="$(mktemp -d "$ROOT/.build.XXXXXX")"
trap 'rm -rf "$tmpout"' EXIT
log "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION (-p $JOBS)"
(cd "$ROOT" && GOTOOLCHAIN=local GOFLAGS= GOMAXPROCS="$JOBS" CGO_ENABLED=0 GOBIN="$tmpout" \
  go install -p "$JOBS" -trimpath -buildvcs=false -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2 \
  || die "go install kwok failed (see above)"
[ -x "$tmpout/kwok" ] || die "kwok binary not found in $tmpout"
mv -f "$tmpout/kwok" "$BIN/kwok"
rm -rf "$tmpout"; trap - EXIT
log "kwok $KWOK_VERSION built in $((SECONDS - start))s: $BIN/kwok"
done_line
