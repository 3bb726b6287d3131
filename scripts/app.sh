#!/usr/bin/env bash
# Set up and start the app with the shipped model on http://localhost:8501
#   bash scripts/app.sh --gpu   the same with TensorFlow's CUDA build (requirements-gpu.txt)
# Other arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
setup=()
if [ "${1:-}" = "--gpu" ]; then
  setup=(--gpu)
  shift
fi
bash scripts/setup.sh "${setup[@]}"
exec .venv/bin/python -m streamlit run streamlit_app.py "$@"
