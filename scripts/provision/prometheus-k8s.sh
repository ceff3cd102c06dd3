#!/usr/bin/env bash
# A Prometheus WITH Kubernetes service discovery, for the real-node tests
# (test/node/): Debian's prometheus package is built without it ("field
# kubernetes_sd_configs not found"). Built from the Go module proxy with only
# the Kubernetes SD plugin (build tags remove_all_sd,enable_kubernetes_sd), no
# web UI assets (the HTTP API is all the tests use).
#
# Cached in ${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}/prometheus-k8s/<version>/prometheus.
# stdout: the binary path (last line). --check: build nothing, exit 3 if missing.
set -euo pipefail
VERSION="${NODEWARDEN_PROMETHEUS_K8S_VERSION:-v0.316.0}"   # = Prometheus 3.x, Go module version scheme
CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
DIR="$CACHE/prometheus-k8s/$VERSION"
BIN="$DIR/prometheus"
log() { printf '[prometheus-k8s.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
if [ "${1:-}" = "--check" ]; then
  [ -x "$BIN" ] || { log "not built: run bash $0"; exit 3; }
  echo "$BIN"; exit 0
fi
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || { log "ERROR: go is not installed"; exit 1; }
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"; flock 9
  if [ ! -x "$BIN" ]; then
    start=$SECONDS
    log "go install github.com/prometheus/prometheus/cmd/prometheus@$VERSION (kubernetes SD only)"
    tmp="$(mktemp -d "$DIR/.build.XXXXXX")"
    (cd "$DIR" && GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 GOMAXPROCS="${NODEWARDEN_BUILD_JOBS:-2}" GOBIN="$tmp" \
      go install -p "${NODEWARDEN_BUILD_JOBS:-2}" -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags '-s -w' \
      "github.com/prometheus/prometheus/cmd/prometheus@$VERSION") >&2
    mv -f "$tmp/prometheus" "$BIN"; rm -rf "$tmp"
    log "built in $((SECONDS - start))s: $BIN"
  fi
fi
echo "$BIN"
