#!/usr/bin/env bash
# Install (scripts/bootstrap.sh), then run the main job: the paper's experiment on a
# 50-device ward — devices, wallets, providers and a bag recorder as real processes on
# DDS (loopback only) — and print the report (also in runs/<...>/report.md).
# Extra arguments go to `iomt launch`, e.g.: scripts/run.sh --mode centralized
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/iomt launch scale_50 --mode distributed "$@"
