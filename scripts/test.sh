#!/usr/bin/env bash
# Install (scripts/bootstrap.sh), then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check src tests bench launch
.venv/bin/ruff format --check src tests bench launch
.venv/bin/mypy
.venv/bin/pytest "$@"
