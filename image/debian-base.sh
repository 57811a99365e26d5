#!/usr/bin/env bash
# image/debian-base.sh TOOL TAG: the Dockerfile's base (Debian bookworm with Python 3.11) built
# from Debian's packages with debootstrap, for machines that reach Debian's archive but not an
# image registry. TOOL is buildah, podman or docker; the result is kept in its image store under
# TAG and rebuilt only when this script changes (the label kdns.base.recipe holds its digest).
set -euo pipefail
tool=$1
tag=$2
recipe=$(sha256sum "$0" | cut -c1-16)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

label() {
  case $tool in
    buildah) buildah inspect --type image --format '{{index .OCIv1.Config.Labels "kdns.base.recipe"}}' "$tag" 2>/dev/null ;;
    *) "$tool" image inspect --format '{{index .Config.Labels "kdns.base.recipe"}}' "$tag" 2>/dev/null ;;
  esac
}

# Two builds at once (two test runs) must not both bootstrap: the second waits, then reuses.
exec 9>/tmp/kdns-debian-base.lock
flock 9
if [ "$(label || true)" = "$recipe" ]; then exit 0; fi

if ! command -v debootstrap >/dev/null 2>&1; then
  [ -n "${KDNS_IMAGE_NO_INSTALL:-}" ] && { echo "debootstrap is not installed" >&2; exit 1; }
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "debian-base: debootstrap bookworm from $mirror" >&2
# What python:3.11-slim-bookworm gives the Dockerfile: python3, its venv module, CA certificates.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
  "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/*
env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
case $tool in
  buildah)
    c=$(buildah from scratch)
    buildah copy --quiet "$c" "$work/rootfs" / >/dev/null
    buildah config --env "${env[0]}" --env "${env[1]}" --cmd python3 --label "kdns.base.recipe=$recipe" "$c"
    buildah commit --quiet --rm "$c" "$tag" >/dev/null
    ;;
  *)
    tar -C "$work/rootfs" -c . | "$tool" import \
      --change "ENV ${env[0]}" --change "ENV ${env[1]}" --change 'CMD ["python3"]' \
      --change "LABEL kdns.base.recipe=$recipe" - "$tag" >/dev/null
    ;;
esac
echo "debian-base: built $tag" >&2
