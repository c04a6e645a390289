#!/usr/bin/env bash
# Install (scripts/bootstrap.sh) and the real ROS 2 peers (scripts/ros2.sh: pinned ROS 2
# Kilted and Jazzy wheels, iomt_interfaces built with colcon, cached), then lint,
# type-check and run the whole test suite, interop with real rclpy included. Arguments go
# to a plain pytest run instead (e.g. scripts/test.sh tests/core -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The two peers install (Kilted builds iomt_interfaces with colcon: about a minute the first
# time) while the code is linted and type-checked; a failure anywhere stops the rest.
# Each runs in a process group of its own (set -m), so that stopping it also stops its pip
# and colcon children.
trap 'for job in $(jobs -p); do kill -- "-$job" 2>/dev/null || true; done' EXIT
set -m
scripts/ros2.sh kilted >/dev/null &
kilted=$!
scripts/ros2.sh jazzy >/dev/null &
jazzy=$!
set +m
.venv/bin/ruff check src tests bench launch examples
.venv/bin/ruff format --check src tests bench launch examples
.venv/bin/mypy
wait "$kilted"
wait "$jazzy"
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
# Two pytest-xdist workers, a test file each at a time (its module's ward starts once), on
# DDS domains they never share (tests/domains.py); then the real-ROS 2 tests alone, as their
# Fast DDS peers have always run (a stock robot once got no vitals in 120 s when they
# shared the two cores with a second worker).
.venv/bin/pytest -n 2 --dist loadfile --ignore=tests/ros2
.venv/bin/pytest tests/ros2
