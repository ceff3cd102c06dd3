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
export NODEWARDEN_REDIS_SERVER="$(bash scripts/provision/redis.sh | tail -n 1)"
export NODEWARDEN_PROMETHEUS="$(bash scripts/provision/prometheus.sh | tail -n 1)"
export NODEWARDEN_KAFKA_LIBS="$(bash scripts/provision/kafka.sh | tail -n 1)"
export NODEWARDEN_KUBE_BIN="$(bash scripts/provision/kube.sh | tail -n 1)"

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
