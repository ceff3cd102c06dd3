#!/usr/bin/env bash
# Everything a real single-node Kubernetes test cluster needs besides the
# binaries of scripts/provision/kube.sh (test/harness/node-cluster.ts):
#
#   Debian packages   containerd, runc, containernetworking-plugins (CNI
#                     plugins in /usr/lib/cni), iptables, conntrack, buildah,
#                     mmdebstrap, gcc/libc6-dev (static pause);
#                     no distro service is started (a policy-rc.d forbids it;
#                     the harness runs containerd as a plain process);
#   pause image       a static C `pause()` loop, FROM scratch, built with
#                     buildah (vfs driver) into an OCI archive;
#   kube-proxy image  a Debian minbase rootfs (mmdebstrap) with iptables,
#                     conntrack and busybox-static, plus the kube-proxy binary
#                     of kube.sh. busybox also serves the harness's test web pod.
#
# Images land in ${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}/node/images as
# oci-archive files that `ctr -n k8s.io images import` loads; nothing is pulled.
# Idempotent: an image is rebuilt only when its inputs change.
#
# Usage: node.sh [--check]
#   --check  install and build nothing; exit 3 unless everything is there.
# stdout (for eval): NODEWARDEN_NODE_IMAGES=<dir>, PAUSE_IMAGE=<ref>,
#   PROXY_IMAGE=<ref>, NODEWARDEN_KUBE_BIN=<dir>.
# Needs root (apt-get, buildah, mmdebstrap).
set -euo pipefail

CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$CACHE/node/images"
KUBE_VERSION="${NODEWARDEN_KUBE_VERSION:-v1.33.13}"
PAUSE_REF="nodewarden.local/pause:3.10"
PROXY_REF="nodewarden.local/kube-proxy:$KUBE_VERSION"
SUITE="${NODEWARDEN_DEBIAN_SUITE:-bookworm}"
MIRROR="${NODEWARDEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# buildah's own storage for these builds (vfs: no overlay-on-overlay needs)
BUILDAH=(buildah --root "$CACHE/node/buildah/root" --runroot "$CACHE/node/buildah/run" --storage-driver vfs)

CHECK_ONLY=0
case "${1:-}" in
  --check) CHECK_ONLY=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

log() { printf '[node.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PKGS=(containerd runc containernetworking-plugins iptables conntrack buildah mmdebstrap gcc libc6-dev)
missing_pkgs() {
  local p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

kube_bin="$(bash "$HERE/kube.sh" --check --node 2>/dev/null | tail -n 1)" || kube_bin=""
[ -n "$kube_bin" ] || { log "kube-scheduler/kubelet/kube-proxy are not built: run bash scripts/provision/kube.sh"; [ "$CHECK_ONLY" = 1 ] && exit 3; }
proxy_sum="$( [ -n "$kube_bin" ] && sha256sum "$kube_bin/kube-proxy" | cut -c1-16 || echo none)"
PAUSE_TAR="$OUT/pause.oci.tar"
PROXY_TAR="$OUT/kube-proxy-$KUBE_VERSION-$proxy_sum.oci.tar"

if [ "$CHECK_ONLY" = 1 ]; then
  miss="$(missing_pkgs | tr '\n' ' ')"
  [ -f "$PAUSE_TAR" ] || miss="$miss pause-image"
  [ -f "$PROXY_TAR" ] || miss="$miss kube-proxy-image"
  if [ -n "${miss// /}" ]; then log "missing: $miss (run: bash $0)"; exit 3; fi
else
  [ "$(id -u)" = 0 ] || die "needs root (apt-get, buildah, mmdebstrap)"
  mkdir -p "$OUT"
  exec 9>"$CACHE/node/.lock"
  flock 9
  # one apt-package.sh call per package (no distro service is left running);
  # "-" as service: the harness's own containerd must never be taken for one
  for spec in containerd:containerd runc:runc containernetworking-plugins:bridge iptables:iptables \
    conntrack:conntrack buildah:buildah mmdebstrap:mmdebstrap gcc:gcc libc6-dev:gencat; do
    PATH="/usr/lib/cni:$PATH" bash "$HERE/apt-package.sh" "${spec%%:*}" - - "${spec#*:}" >/dev/null
  done
  # apt may have started the distro containerd where an init system runs:
  # the harness runs its own.
  if pgrep -x containerd >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop containerd >&2 || true
    systemctl disable containerd >/dev/null 2>&1 || true
  fi

  if [ ! -f "$PAUSE_TAR" ]; then
    start=$SECONDS
    work="$(mktemp -d)"
    cat >"$work/pause.c" <<'EOF'
/* nodewarden test pause: sleeps until a signal ends it (SIGTERM/SIGINT exit 0). */
#include <signal.h>
#include <unistd.h>
static void bye(int s) { (void)s; _exit(0); }
int main(void) {
  signal(SIGTERM, bye);
  signal(SIGINT, bye);
  for (;;) pause();
}
EOF
    gcc -static -Os -s -o "$work/pause" "$work/pause.c" >&2
    c="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" copy "$c" "$work/pause" /pause >&2
    "${BUILDAH[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c" >&2
    "${BUILDAH[@]}" commit --format oci --rm "$c" "oci-archive:$PAUSE_TAR.tmp:$PAUSE_REF" >&2
    mv -f "$PAUSE_TAR.tmp" "$PAUSE_TAR"
    rm -rf "$work"
    log "pause image built in $((SECONDS - start))s: $PAUSE_TAR"
  fi

  rootfs="$CACHE/node/rootfs-$SUITE-proxy.tar"
  if [ ! -f "$PROXY_TAR" ] && [ ! -f "$rootfs" ]; then
    start=$SECONDS
    log "mmdebstrap $SUITE minbase + iptables conntrack busybox-static"
    mmdebstrap --variant=minbase --include=iptables,conntrack,busybox-static \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      "$SUITE" "$rootfs.tmp" "deb $MIRROR $SUITE main" >&2
    mv -f "$rootfs.tmp" "$rootfs"
    log "rootfs built in $((SECONDS - start))s: $rootfs ($(du -m "$rootfs" | cut -f1) MiB)"
  fi
  if [ ! -f "$PROXY_TAR" ]; then
    [ -n "$kube_bin" ] || die "kube-proxy is not built: run bash scripts/provision/kube.sh first"
    start=$SECONDS
    c="$("${BUILDAH[@]}" from scratch)"
    "${BUILDAH[@]}" add "$c" "$rootfs" / >&2
    "${BUILDAH[@]}" copy --chmod 0755 "$c" "$kube_bin/kube-proxy" /usr/local/bin/kube-proxy >&2
    "${BUILDAH[@]}" config --entrypoint '["/usr/local/bin/kube-proxy"]' "$c" >&2
    rm -f "$OUT"/kube-proxy-*.oci.tar
    "${BUILDAH[@]}" commit --format oci --rm "$c" "oci-archive:$PROXY_TAR.tmp:$PROXY_REF" >&2
    mv -f "$PROXY_TAR.tmp" "$PROXY_TAR"
    log "kube-proxy image built in $((SECONDS - start))s: $PROXY_TAR ($(du -m "$PROXY_TAR" | cut -f1) MiB)"
  fi
  # vfs layers of finished builds are not needed again
  "${BUILDAH[@]}" rmi --all >/dev/null 2>&1 || true
fi

echo "PAUSE_IMAGE=$PAUSE_REF"
echo "PAUSE_IMAGE_ARCHIVE=$PAUSE_TAR"
echo "PROXY_IMAGE=$PROXY_REF"
echo "PROXY_IMAGE_ARCHIVE=$PROXY_TAR"
echo "NODEWARDEN_NODE_IMAGES=$OUT"
echo "NODEWARDEN_KUBE_BIN=$kube_bin"
