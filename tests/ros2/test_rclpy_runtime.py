"""The rclpy runtime converts between iomt's wire types and rclpy's messages exactly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHECK = Path(__file__).with_name("converters_check.py")


def test_every_type_converts_to_rclpy_and_back_byte_for_byte(ros2: Any) -> None:
    out = subprocess.run(
        [ros2.python, str(CHECK)],
        env=ros2.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["types"] == 13 + 2 * 7
    assert doc["checked"] == doc["types"] * 20
    assert doc["failures"] == []
