#!/usr/bin/env bash
# Create ./.venv and install iomt into it with the pinned dependency set (constraints.txt).
# Idempotent; works on a fresh Debian 12 with python3 and the package registries only.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    # Debian ships venv/ensurepip separately from python3.
    rm -rf .venv
    echo "bootstrap: installing python3-venv (Debian splits it from python3)" >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi

.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
  -r tests/requirements-readers.txt

# Graphviz renders `iomt graph --png`; everything else works without it.
if ! command -v dot >/dev/null 2>&1; then
  (as_root apt-get install -y -qq graphviz >/dev/null 2>&1 ||
   { as_root apt-get update -qq && as_root apt-get install -y -qq graphviz >/dev/null 2>&1; }) ||
    echo "bootstrap: graphviz not installed; 'iomt graph --png' will say so" >&2
fi
