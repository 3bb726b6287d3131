#!/usr/bin/env bash
# Set up a fresh machine: Debian packages (FluidSynth, soundfont; Chromium with --dev),
# a virtual environment in .venv and the pinned Python packages. Safe to run again.
#   --dev   also the test tools (requirements-dev.txt)
#   --gpu   TensorFlow's CUDA build (requirements-gpu.txt) in place of the CPU-only one
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
gpu=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --gpu) gpu=1 ;;
    *) echo "usage: bash $0 [--dev] [--gpu]" >&2; exit 2 ;;
  esac
done

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
# tensorflow-cpu and tensorflow install the same files: switching builds removes the other.
if [ "$gpu" = 1 ]; then
  runtime=requirements-gpu.txt other=tensorflow-cpu
else
  runtime=requirements.txt other=tensorflow
fi
if .venv/bin/python -m pip show -q "$other" >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y "$other"
fi
.venv/bin/python -m pip install -q -r "$runtime"
if [ "$dev" = 1 ]; then
  # requirements-dev.txt's tools, without its `-r requirements.txt` (the runtime is in)
  grep -v '^-r ' requirements-dev.txt >.venv/dev-tools.txt
  .venv/bin/python -m pip install -q -r .venv/dev-tools.txt
fi
