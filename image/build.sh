#!/usr/bin/env bash
# `make image`: build the kdns image (TAG, default kdns:dev) with the container tool at hand.
#
# The tool: docker or podman when it can build here, else buildah, installed from Debian's
# packages when missing (as root or with sudo; KDNS_IMAGE_NO_INSTALL=1 forbids that). buildah
# builds with `--isolation chroot`, which needs no container runtime, cgroups or rlimits.
# The base: the Dockerfile's own (python:3.11-slim-bookworm) when it is present or can be pulled,
# else the same base built from Debian's packages by image/debian-base.sh (cached by the tool).
# BASE=IMAGE forces a base. KDNS_IMAGE_LAYERS=0 keeps no cached build layers (the image test
# builds that way, so repeated runs leave nothing behind but the cached base).
#
#   image/build.sh               build TAG
#   image/build.sh --print-tool  say which tool a build would use
# Exit status 3: no container tool can be had on this machine (the reason is on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${TAG:-kdns:dev}
OFFICIAL_BASE=python:3.11-slim-bookworm
DEBIAN_BASE=localhost/kdns-base:bookworm

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
  [ -n "${KDNS_IMAGE_NO_INSTALL:-}" ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "image/build.sh: installing $* from Debian's packages" >&2
  as_root apt-get update -qq >&2 &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pick_tool() {
  if [ -n "${KDNS_IMAGE_TOOL:-}" ]; then echo "$KDNS_IMAGE_TOOL"; return; fi
  # A docker client without a daemon (as on this project's machines) cannot build.
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then echo podman; return; fi
  if command -v buildah >/dev/null 2>&1 || apt_install buildah; then echo buildah; return; fi
  echo "no container tool: no docker daemon, no podman, and buildah cannot be installed" \
    "(needs apt-get and root or sudo)" >&2
  return 3
}

has_image() {
  case $1 in
    buildah) buildah inspect --type image "$2" >/dev/null 2>&1 ;;
    *) "$1" image inspect "$2" >/dev/null 2>&1 ;;
  esac
}

pick_base() {
  if [ -n "${BASE:-}" ]; then echo "$BASE"; return; fi
  if has_image "$1" "$OFFICIAL_BASE" || "$1" pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    echo "$OFFICIAL_BASE"
    return
  fi
  echo "image/build.sh: $OFFICIAL_BASE cannot be pulled; using $DEBIAN_BASE, built from Debian's packages" >&2
  image/debian-base.sh "$1" "$DEBIAN_BASE" >&2
  echo "$DEBIAN_BASE"
}

tool=$(pick_tool) || exit 3
if [ "${1:-}" = --print-tool ]; then echo "$tool"; exit 0; fi
base=$(pick_base "$tool")
args=(--build-arg "BASE=$base" -t "$TAG")
if [ "$tool" = docker ]; then
  docker build "${args[@]}" .
else
  # Builds behind a TLS-inspecting proxy need this machine's CA bundle for pip: mounted for the
  # build only, never stored in a layer.
  ca=/etc/ssl/certs/ca-certificates.crt
  if [ -r "$ca" ]; then args+=(--volume "$ca:/run/kdns-build/ca.crt:ro" --build-arg PIP_CERT=/run/kdns-build/ca.crt); fi
  layers=--layers
  [ "${KDNS_IMAGE_LAYERS:-1}" = 0 ] && layers=--layers=false
  if [ "$tool" = buildah ]; then
    buildah bud --isolation chroot "$layers" "${args[@]}" .
  else
    podman build --isolation chroot "$layers" "${args[@]}" .
  fi
fi
echo "image/build.sh: built $TAG with $tool from $base" >&2
