#!/usr/bin/env bash
# Set up (with test tools and Chromium) and run the whole test suite, e2e included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest -q "$@"
