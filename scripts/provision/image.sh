#!/usr/bin/env bash
# Build the nodewarden image from deploy/Dockerfile without a Docker daemon or
# a registry, into an OCI archive that containerd (`ctr images import`),
# podman, skopeo or `docker load` (via skopeo) can read.
#
#   1. Installs buildah and mmdebstrap (Debian packages) if missing.
#   2. Makes the base image the Dockerfile's FROM names,
#      docker.io/library/node:20-bookworm-slim, locally: a Debian bookworm
#      minbase rootfs from mmdebstrap plus this machine's Node 20 (the Debian
#      nodejs package's /usr/bin/node and /usr/lib/node_modules/npm), laid out
#      as in the official image (/usr/local/bin/node, npm, npx; user node 1000).
#   3. `buildah bud --pull=never --network host` of deploy/Dockerfile (host
#      network only for the `npm ci` step, which needs the npm registry).
#   4. `buildah push` to oci-archive:<file>:ghcr.io/nodewarden/nodewarden:<version>.
#
# Everything lives under ${NODEWARDEN_CACHE:-~/.cache/nodewarden}/image/
# (buildah's storage too, with the vfs driver), under a flock. The archive is
# keyed by a hash of the inputs (Dockerfile, .dockerignore, the files it lets
# into the context, this script, the base image): a rerun with unchanged
# sources prints the cached archive in about a second.
# Progress goes to stderr; stdout gets IMAGE_NAME=<ref> and, as its last line,
# the archive path.
#
# Usage: image.sh [build]    build (or reuse) the nodewarden image
#        image.sh --check    build nothing; print the archive path if the
#                            current sources' archive is cached, else exit 3
#        image.sh tiny NAME ROOTFS_DIR OUT [ENTRYPOINT_ARG...]
#                            a small image FROM scratch holding ROOTFS_DIR's
#                            files (e.g. static binaries), named NAME, pushed
#                            to the OCI archive OUT (printed last); for the
#                            test cluster's pause and kube-proxy images.
#
# Environment:
#   NODEWARDEN_CACHE        cache root (default $HOME/.cache/nodewarden)
#   NODEWARDEN_IMAGE_NAME   image reference (default ghcr.io/nodewarden/nodewarden:<package.json version>)
#   NODEWARDEN_DEBIAN_MIRROR  Debian mirror for mmdebstrap (default http://deb.debian.org)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SELF="$REPO/scripts/provision/image.sh"
CACHE="${NODEWARDEN_CACHE:-$HOME/.cache/nodewarden}"
DIR="$CACHE/image"
STORE="$DIR/storage"
RUNROOT="$DIR/runroot"
OUT="$DIR/out"
BASE_REF="docker.io/library/node:20-bookworm-slim"
SUITE=bookworm
MIRROR="${NODEWARDEN_DEBIAN_MIRROR:-http://deb.debian.org}"

log() { printf '[image.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

MODE=build
case "${1:-}" in
  ""|build) ;;
  --check) MODE=check ;;
  tiny) MODE=tiny ;;
  *) echo "usage: $0 [build|--check|tiny NAME ROOTFS_DIR OUT [ENTRYPOINT_ARG...]]" >&2; exit 2 ;;
esac

VERSION="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$REPO/package.json" | head -n 1)"
[ -n "$VERSION" ] || die "cannot read the version from package.json"
IMAGE_NAME="${NODEWARDEN_IMAGE_NAME:-ghcr.io/nodewarden/nodewarden:$VERSION}"

# --- cache key of the nodewarden image ------------------------------------
# The context paths are the ones .dockerignore re-includes ("!path").
context_paths() { sed -n 's/^!\(.*\)$/\1/p' "$REPO/.dockerignore"; }
node_key() {
  # the base image's inputs: this machine's node and npm, the rootfs recipe
  printf '%s\n' "$(sha256sum /usr/bin/node | cut -c1-64)" \
    "$(sed -n 's/^  "version": "\(.*\)",$/\1/p' /usr/lib/node_modules/npm/package.json | head -n 1)" \
    "$SUITE minbase rev1" | sha256sum | cut -c1-16
}
source_key() {
  (
    cd "$REPO"
    sha256sum deploy/Dockerfile .dockerignore "$SELF"
    # shellcheck disable=SC2046
    find $(context_paths) -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    node_key
    echo "$IMAGE_NAME"
  ) | sha256sum | cut -c1-16
}

[ -x /usr/bin/node ] && [ -d /usr/lib/node_modules/npm ] \
  || die "need Node 20 at /usr/bin/node and npm at /usr/lib/node_modules/npm (Debian nodejs 20.x)"
case "$(/usr/bin/node --version)" in v20.*) ;; *) die "/usr/bin/node is $(/usr/bin/node --version), need v20.x" ;; esac

if [ "$MODE" != tiny ]; then
  KEY="$(source_key)"
  ARCHIVE="$OUT/nodewarden-$VERSION-$KEY.oci.tar"
  if [ "$MODE" = check ]; then
    [ -s "$ARCHIVE" ] || { log "no cached image for the current sources ($ARCHIVE)"; exit 3; }
    echo "IMAGE_NAME=$IMAGE_NAME"; echo "$ARCHIVE"; exit 0
  fi
  if [ -s "$ARCHIVE" ]; then
    log "cached: $ARCHIVE"
    echo "IMAGE_NAME=$IMAGE_NAME"; echo "$ARCHIVE"; exit 0
  fi
fi

# --- tools ------------------------------------------------------------------
need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
# runc: buildah's RUN steps, and the image test (test/integration/image.test.ts)
[ -x /usr/sbin/runc ] || command -v runc >/dev/null 2>&1 || need+=(runc)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update >&2
  log "apt-get install ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}" >&2
fi
[ "$(id -u)" = 0 ] || die "buildah with the vfs driver runs as root here"

mkdir -p "$DIR" "$OUT" "$DIR/base"
exec 9>"$DIR/.lock"
if ! flock -n 9; then
  log "another image.sh holds $DIR/.lock; waiting"
  flock 9
fi

# buildah's own configuration, all inside the cache: storage (vfs) and short
# names resolving to docker.io, so `FROM node:20-bookworm-slim` finds the
# local base image. Nothing is ever pulled (--pull=never).
cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$STORE"
runroot = "$RUNROOT"
EOF
cat >"$DIR/registries.conf" <<'EOF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
cat >"$DIR/policy.json" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
export CONTAINERS_STORAGE_CONF="$DIR/storage.conf" CONTAINERS_REGISTRIES_CONF="$DIR/registries.conf"
export BUILDAH_ISOLATION=oci TMPDIR="$DIR/tmp"
bah() { buildah --root "$STORE" --runroot "$RUNROOT" --storage-driver vfs "$@"; }

# A previous run may have been killed half-way: drop its temporary files and
# working containers; if the storage itself no longer opens, start it afresh
# (the expensive parts, the rootfs tarball and the archives, live outside it).
# A RUN step's runc container killed with us stays in runc's state list.
if command -v runc >/dev/null 2>&1; then
  runc list 2>/dev/null | awk -v d="$DIR/tmp/" 'index($4, d) == 1 { print $1 }' | while read -r id; do
    log "removing the stale RUN container $id"; runc delete --force "$id" >&2 || true
  done
fi
rm -rf "$DIR/tmp" "$DIR"/base/*.tmp "$OUT"/*.tmp
mkdir -p "$DIR/tmp"
if ! err="$( { bah images >/dev/null && bah rm --all >/dev/null; } 2>&1)"; then
  log "buildah storage in $STORE is unusable (${err##*$'\n'}); recreating it"
  rm -rf "$STORE" "$RUNROOT"
  bah images >/dev/null || die "buildah cannot open a fresh storage in $STORE"
fi

# push IMAGE to the OCI archive FILE (written to FILE.tmp, then moved)
push_archive() {
  local image="$1" file="$2"
  rm -f "$file.tmp"
  bah push --quiet --signature-policy "$DIR/policy.json" "$image" "oci-archive:$file.tmp:$image" >&2
  mv -f "$file.tmp" "$file"
}

# --- tiny images (pause, kube-proxy) ------------------------------------------
if [ "$MODE" = tiny ]; then
  [ "$#" -ge 4 ] || die "usage: $0 tiny NAME ROOTFS_DIR OUT [ENTRYPOINT_ARG...]"
  name="$2" rootfs="$3" file="$4"; shift 4
  [ -d "$rootfs" ] || die "no such rootfs dir: $rootfs"
  ctr="$(bah from --quiet scratch)"
  trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  bah copy --quiet "$ctr" "$rootfs/." / >&2
  if [ "$#" -gt 0 ]; then
    ep="$(node -e 'process.stdout.write(JSON.stringify(process.argv.slice(1)))' -- "$@")"
    bah config --entrypoint "$ep" "$ctr"
  fi
  bah commit --quiet --rm "$ctr" "$name" >/dev/null
  trap - EXIT
  mkdir -p "$(dirname "$file")"
  push_archive "$name" "$file"
  log "tiny image $name -> $file"
  echo "$file"
  exit 0
fi

# --- base image: Debian bookworm minbase + this machine's Node 20 ------------
ROOTFS_TAR="$DIR/base/rootfs-$SUITE-minbase.tar"
if [ ! -s "$ROOTFS_TAR" ]; then
  log "mmdebstrap $SUITE minbase (cached in $ROOTFS_TAR)"
  # As debian:bookworm-slim: no docs, man pages or locales.
  mmdebstrap --quiet --variant=minbase --format=tar \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" "$ROOTFS_TAR.tmp" \
    "deb $MIRROR/debian $SUITE main" \
    "deb $MIRROR/debian $SUITE-updates main" \
    "deb $MIRROR/debian-security $SUITE-security main" >&2
  mv -f "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
fi

NODE_KEY="$(node_key)"
have_base="$(bah inspect --type image --format '{{index .OCIv1.Config.Labels "io.nodewarden.base-key"}}' "$BASE_REF" 2>/dev/null || true)"
if [ "$have_base" != "$NODE_KEY" ]; then
  log "base image $BASE_REF from $ROOTFS_TAR + $(/usr/bin/node --version)"
  ctx="$DIR/base/ctx.tmp"
  rm -rf "$ctx"; mkdir -p "$ctx/node/usr/local/bin" "$ctx/node/usr/local/lib/node_modules" "$ctx/node/etc" "$ctx/node/home/node"
  cp -a /usr/bin/node "$ctx/node/usr/local/bin/node"
  cp -a /usr/lib/node_modules/npm "$ctx/node/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/node/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/node/usr/local/bin/npx"
  # the official image's user node (1000:1000)
  for f in passwd group shadow; do tar -xOf "$ROOTFS_TAR" "./etc/$f" >"$ctx/node/etc/$f"; done
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$ctx/node/etc/passwd"
  echo 'node:x:1000:' >>"$ctx/node/etc/group"
  echo 'node:*:19000:0:99999:7:::' >>"$ctx/node/etc/shadow"
  chmod 640 "$ctx/node/etc/shadow"; chown 0:42 "$ctx/node/etc/shadow" 2>/dev/null || true
  chown 1000:1000 "$ctx/node/home/node"
  tar -C "$ctx/node" -cf "$ctx/node.tar" .
  ln "$ROOTFS_TAR" "$ctx/rootfs.tar" 2>/dev/null || cp "$ROOTFS_TAR" "$ctx/rootfs.tar"
  cat >"$ctx/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
ADD node.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_VERSION=$(/usr/bin/node --version | tr -d v)
LABEL io.nodewarden.base-key=$NODE_KEY
CMD ["node"]
EOF
  bah bud --quiet --pull=never --layers=false -f "$ctx/Containerfile" -t "$BASE_REF" "$ctx" >&2
  rm -rf "$ctx"
  # fail here, not in the Dockerfile, if this node cannot run on the rootfs
  ctr="$(bah from --quiet --pull=never "$BASE_REF")"
  v="$(bah run "$ctr" -- node --version 2>&1)" || { bah rm "$ctr" >/dev/null; die "node does not run in $BASE_REF: $v"; }
  bah rm "$ctr" >/dev/null
  log "base image ready: node $v"
fi

# --- the nodewarden image -----------------------------------------------------
# Where the npm registry is reached through a TLS-intercepting proxy, the
# host trusts an extra CA (NODE_EXTRA_CA_CERTS or npm's cafile): RUN steps
# see it through a read-only bind mount and a global npmrc, which are not
# committed to any layer (docker users would pass a BuildKit secret).
run_mounts=()
ca="${NODE_EXTRA_CA_CERTS:-}"
[ -n "$ca" ] || ca="$(npm config get cafile 2>/dev/null || true)"
if [ -n "$ca" ] && [ "$ca" != null ] && [ "$ca" != undefined ] && [ -r "$ca" ]; then
  log "RUN steps trust the host's CA bundle $ca (bind mount, not in the image)"
  printf 'cafile=/usr/local/etc/nodewarden-build-ca.crt\n' >"$DIR/tmp/npmrc"
  run_mounts=(-v "$ca:/usr/local/etc/nodewarden-build-ca.crt:ro" -v "$DIR/tmp/npmrc:/usr/local/etc/npmrc:ro")
fi

log "buildah bud deploy/Dockerfile -> $IMAGE_NAME"
t0=$SECONDS
bah bud --pull=never --layers=false --network host "${run_mounts[@]}" \
  -f "$REPO/deploy/Dockerfile" -t "$IMAGE_NAME" "$REPO" >&2
push_archive "$IMAGE_NAME" "$ARCHIVE"
log "built in $((SECONDS - t0)) s"

# sizes: the archive (gzip-compressed layers) and the image unpacked
log "archive $(du -h "$ARCHIVE" | cut -f1) ($(stat -c %s "$ARCHIVE") bytes); unpacked $(bah images --noheading --format '{{.Size}}' "$IMAGE_NAME")"

# keep the cache bounded: older archives and images replaced by this one go
find "$OUT" -maxdepth 1 -name 'nodewarden-*.oci.tar' ! -name "$(basename "$ARCHIVE")" -delete
bah rmi --prune >/dev/null 2>&1 || true

echo "IMAGE_NAME=$IMAGE_NAME"
echo "$ARCHIVE"
