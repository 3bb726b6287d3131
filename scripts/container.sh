#!/usr/bin/env bash
# Build the Space's image with podman from a local Debian 12 base, and run the container
# checks of tests/test_container.py against it (health, a harmonization in Chromium, a tiny
# training run started and stopped on the Train page).
#
#   bash scripts/container.sh            # base (once), image, checks
#   bash scripts/container.sh --build    # base (once) and image only
#
# Needs root, podman and debootstrap: apt-get install podman debootstrap runc slirp4netns (the
# checks publish the app's port through slirp4netns; runc is used where installed, see below).
# PYTHON names the interpreter that has the test requirements (default: .venv/bin/python).
# The base is made with debootstrap from Debian's own packages, so no registry of images is
# needed: Debian 12 ("bookworm", minbase) with python3 (3.11) and python3-venv, tagged
# localhost/debian-python:3.11. Trust anchors added to this machine
# (/usr/local/share/ca-certificates/*.crt, e.g. a proxy's) go into the base, with a pip.conf
# that makes pip use the system's bundle.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-localhost/debian-python:3.11}
IMAGE=${IMAGE:-localhost/bachgan:local}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if [ "$(id -u)" != 0 ]; then echo "error: run as root (podman, debootstrap)" >&2; exit 1; fi
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing: apt-get install $tool" >&2; exit 1; }
done

if ! podman image exists "$BASE"; then
  root=$(mktemp -d /tmp/debian-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$MIRROR"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$BASE"
  rm -rf "$root"
  trap - EXIT
fi

# runc, where installed: crun refuses a machine whose cgroups are v1 and v2 at once ("hybrid").
# Resource limits no higher than this shell's: podman's defaults (1048576 open files) need
# CAP_SYS_RESOURCE, which root may lack inside a sandbox. Both are harmless elsewhere.
podman=(podman)
command -v runc >/dev/null && podman+=(--runtime runc)
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
export BACHGAN_PODMAN="${podman[*]}"
export BACHGAN_PODMAN_LIMITS="--ulimit nofile=$nofile:$nofile --ulimit nproc=32768:32768"
# --format docker keeps the HEALTHCHECK (the OCI format has none); --network=host: the
# build's apt-get and pip use this machine's network as it is.
# shellcheck disable=SC2086
"${podman[@]}" build --format docker $BACHGAN_PODMAN_LIMITS --network=host --build-arg BASE="$BASE" -t "$IMAGE" .
[ "${1:-}" = "--build" ] && exit 0

BACHGAN_TEST_IMAGE="$IMAGE" exec "${PYTHON:-.venv/bin/python}" -m pytest -q tests/test_container.py
