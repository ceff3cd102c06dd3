#!/usr/bin/env bash
# Ensure a Debian package's binaries are installed, without leaving the
# distro's service running: tests start their own servers on free loopback
# ports, and nothing may be left listening on the default port.
#
# Usage: apt-package.sh PKG SERVICE SERVICE_USER BIN...
# Prints, on stdout, <BIN>_BIN=<path> per binary (so `eval "$(...)"` works).
# Logs to stderr.
set -euo pipefail

PKG="$1"; SERVICE="$2"; SERVICE_USER="$3"; shift 3; BINS=("$@")

log() { printf '[apt-package.sh %s] %s\n' "$PKG" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_all() {
  local b
  for b in "${BINS[@]}"; do command -v "$b" >/dev/null 2>&1 || return 1; done
}

# Stop (and disable) the distro service if the install started it. Only the
# daemon running as the package's service user is the distro one; test
# instances started by us are left alone.
stop_distro_service() {
  if ! pgrep -u "$SERVICE_USER" -x "$SERVICE" >/dev/null 2>&1; then return 0; fi
  log "stopping the distro $SERVICE service"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop "$SERVICE" || true
    systemctl disable "$SERVICE" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$SERVICE" ]; then
    "/etc/init.d/$SERVICE" stop >&2 || true
    command -v update-rc.d >/dev/null 2>&1 && update-rc.d "$SERVICE" disable >/dev/null 2>&1 || true
  fi
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pgrep -u "$SERVICE_USER" -x "$SERVICE" >/dev/null 2>&1 || return 0
    sleep 1
  done
  die "the distro $SERVICE service is still running (user $SERVICE_USER)"
}

if ! have_all; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $PKG"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache policy "$PKG" 2>/dev/null | grep -Eq 'Candidate: [^(]'; then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update >&2
  fi
  # Forbid service starts during the install (a policy-rc.d that exits 101),
  # unless one is already in place.
  POLICY=/usr/sbin/policy-rc.d
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from nodewarden scripts/provision\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    trap 'rm -f "$POLICY"' EXIT
  fi
  log "apt-get install $PKG"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$PKG" >&2
  have_all || die "$PKG installed but ${BINS[*]} not all on PATH"
fi

stop_distro_service

for b in "${BINS[@]}"; do
  printf '%s_BIN=%s\n' "$(echo "$b" | tr 'a-z-' 'A-Z_')" "$(command -v "$b")"
done
