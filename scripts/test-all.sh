#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, provisions
# the real servers (Kafka KRaft, Redis, kube-apiserver + etcd +
# kube-controller-manager, Prometheus, helm, KWOK), Debian's Chromium and the nodewarden
# image (buildah); kubelet, kube-scheduler, kube-proxy and containerd for the
# real-node suite; then lint, unit, integration and node tests. Heavy builds are
# cached under ${NODEWARDEN_CACHE:-~/.cache/nodewarden}.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEWARDEN_CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
mkdir -p "$NODEWARDEN_CACHE"

step() { printf '\n==> %s\n' "$*" >&2; }

# Every mocha run's output is kept so the closing line can count all of them
# (one plain "N passed, N failed" line, printed even when a step fails).
RESULTS="$(mktemp -d)"
summary() {
  local code=$? passed=0 failed=0 n
  set +e
  for f in "$RESULTS"/*.out; do
    [ -f "$f" ] || continue
    n=$(sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -Eo '^ +[0-9]+ passing' | grep -Eo '[0-9]+' | tail -n 1); passed=$((passed + ${n:-0}))
    n=$(sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -Eo '^ +[0-9]+ failing' | grep -Eo '[0-9]+' | tail -n 1); failed=$((failed + ${n:-0}))
  done
  if [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  printf '\ntests: %d passed, %d failed\n' "$passed" "$failed"
  rm -rf "$RESULTS"
  exit "$code"
}
trap summary EXIT
mocha_step() { npm run "$1" 2>&1 | tee "$RESULTS/$1.out"; }

step "npm dependencies and build"
if [ "${CI:-}" = "true" ] || [ ! -d node_modules ]; then npm ci --no-audit --no-fund; else npm run build; fi

step "provision real servers"
eval "$(bash scripts/provision/redis.sh)"
eval "$(bash scripts/provision/prometheus.sh)"
# openssl makes the throw-away CA of the TLS tests (test/harness/tls.ts); no service ("-").
eval "$(bash scripts/provision/apt-package.sh openssl - - openssl)"
export NODEWARDEN_REDIS_SERVER="$REDIS_SERVER_BIN" NODEWARDEN_PROMETHEUS="$PROMETHEUS_BIN"
PATH="$(dirname "$PROMTOOL_BIN"):$PATH"
export NODEWARDEN_KAFKA_LIBS="$(bash scripts/provision/kafka.sh | tail -n 1)"
export NODEWARDEN_KUBE_BIN="$(bash scripts/provision/kube.sh | tail -n 1)"
export NODEWARDEN_CRDS="$(bash scripts/provision/crds.sh | tail -n 1)"
# KWOK keeps the simulated GPU Nodes of the fleet-scale test Ready (built from the Go module proxy, ~2 min once)
eval "$(bash scripts/provision/kwok.sh | grep '^KWOK_')"
export NODEWARDEN_KWOK_BIN="$KWOK_BIN" NODEWARDEN_KWOK_STAGES="$KWOK_STAGES"
# Debian's Chromium for the console's browser test (driven by playwright-core; nothing downloaded by npm)
eval "$(bash scripts/provision/chromium.sh)"
export NODEWARDEN_CHROMIUM="$CHROMIUM_BIN"
# the real node (kubelet, containerd, kube-proxy pod): packages and images
eval "$(bash scripts/provision/node.sh)"
# Debian's prometheus has no Kubernetes service discovery; the node suite needs it
export NODEWARDEN_PROMETHEUS_K8S="$(bash scripts/provision/prometheus-k8s.sh | tail -n 1)"
# the kubectl next to the control plane (the machine's own, or one built from source)
PATH="$NODEWARDEN_KUBE_BIN:$PATH"
# the nodewarden image (deploy/Dockerfile, built with buildah; cached by source hash)
export NODEWARDEN_IMAGE_ARCHIVE="$(bash scripts/provision/image.sh | tail -n 1)"

step "lint, type and import-cycle checks"
npm run lint

step "unit tests"
mocha_step test:unit

step "fuzzing (100k cases per target, seeds in test/unit/fuzz/fuzz-support.ts)"
fuzz_start=$SECONDS
mocha_step test:fuzz
printf 'fuzzing took %ds\n' "$((SECONDS - fuzz_start))" >&2

step "integration tests (real servers)"
mocha_step test:integration

step "node tests (a real single-node cluster, nodewarden installed with helm and kubectl -k)"
mocha_step test:node
