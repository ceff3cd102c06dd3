#!/usr/bin/env bash
# Generates the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule, ...)
# with controller-gen from the operator's published Go API types, so that
# `kubectl apply --dry-run=server` of deploy/ is checked against the real
# schemas. Cached under $NODEWARDEN_CACHE/crds/<version>; prints the dir.
set -euo pipefail
CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
PO_VERSION="${NODEWARDEN_PO_VERSION:-v0.80.1}"
CG_VERSION="${NODEWARDEN_CONTROLLER_GEN_VERSION:-v0.19.0}"
OUT="$CACHE/crds/$PO_VERSION"
if [ -f "$OUT/.done" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$OUT" "$CACHE/crds/src"
cd "$CACHE/crds/src"
export GOFLAGS=-mod=mod
[ -f go.mod ] || go mod init nodewarden.local/crds >&2
go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$PO_VERSION" >&2
GOBIN="$CACHE/crds/bin" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CG_VERSION" >&2
cat > tools.go <<'GO'
package crds

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
GO

"$CACHE/crds/bin/controller-gen" crd:crdVersions=v1,maxDescLen=0 \
  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
  output:crd:dir="$OUT" >&2
ls "$OUT"/*.yaml >/dev/null
touch "$OUT/.done"
echo "$OUT"
