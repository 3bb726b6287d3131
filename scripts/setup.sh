#!/usr/bin/env bash
# Set up a fresh machine: Debian packages (FluidSynth, soundfont; Chromium with --dev),
# a virtual environment in .venv and the pinned Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

# Install the Debian packages given that are missing; without root or sudo, warn with $2.
install_debs() {
  local missing="" p sudo
  for p in $1; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "warning: cannot install Debian packages ($missing) without root; $2" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends $missing
  fi
}

packages=$(grep -v '^#' packages.txt | xargs)
[ "$dev" = 1 ] && packages="$packages chromium"
install_debs "$packages" "audio falls back to sine waves"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "error: $python not found: install Python 3.10-3.12, or name it with PYTHON=python3.11 bash $0" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'; then
  echo "warning: BachGAN is tested with Python 3.10-3.12; $python is $("$python" -V 2>&1)." \
    "Choose another with PYTHON=python3.11 bash $0" >&2
fi
if [ ! -x .venv/bin/python ]; then
  # Debian and Ubuntu ship venv's pip bootstrap as a package of its own.
  if ! "$python" -c 'import ensurepip' 2>/dev/null; then
    install_debs "python3-venv $("$python" -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')" \
      "cannot make .venv"
  fi
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install -q -r requirements-dev.txt
else
  .venv/bin/python -m pip install -q -r requirements.txt
fi
