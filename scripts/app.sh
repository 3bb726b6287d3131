#!/usr/bin/env bash
# Set up and start the app with the shipped model on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run streamlit_app.py "$@"
