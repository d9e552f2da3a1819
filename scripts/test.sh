#!/usr/bin/env bash
# Sets everything up, then runs lint, types, the layer contract and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
ruff check skiff tests bench setup.py
mypy
lint-imports
exec pytest -q -p no:cacheprovider "$@"
