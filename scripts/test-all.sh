#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, provisions
# the real servers (Kafka KRaft, Redis, kube-apiserver + etcd +
# kube-controller-manager, Prometheus, helm), then lint, unit and integration
# tests. Heavy builds are cached under ${NODEWARDEN_CACHE:-~/.cache/nodewarden}.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEWARDEN_CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
mkdir -p "$NODEWARDEN_CACHE"

step() { printf '\n==> %s\n' "$*" >&2; }

step "npm dependencies and build"
if [ "${CI:-}" = "true" ] || [ ! -d node_modules ]; then npm ci --no-audit --no-fund; else npm run build; fi

step "provision real servers"
eval "$(bash scripts/provision/redis.sh)"
eval "$(bash scripts/provision/prometheus.sh)"
export NODEWARDEN_REDIS_SERVER="$REDIS_SERVER_BIN" NODEWARDEN_PROMETHEUS="$PROMETHEUS_BIN"
PATH="$(dirname "$PROMTOOL_BIN"):$PATH"
export NODEWARDEN_KAFKA_LIBS="$(bash scripts/provision/kafka.sh | tail -n 1)"
export NODEWARDEN_KUBE_BIN="$(bash scripts/provision/kube.sh | tail -n 1)"
export NODEWARDEN_CRDS="$(bash scripts/provision/crds.sh | tail -n 1)"
# the kubectl next to the control plane (the machine's own, or one built from source)
PATH="$NODEWARDEN_KUBE_BIN:$PATH"

step "lint, type and import-cycle checks"
npm run lint

step "unit tests"
npm run test:unit

step "integration tests (real servers)"
npm run test:integration

if [ -x scripts/checks/all.sh ]; then
  step "end-to-end checks"
  bash scripts/checks/all.sh
fi
