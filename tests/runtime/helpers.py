"""Helpers for runtime tests: write container specs, run an in-test executor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_spec(path: Path, nodes: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"nodes": nodes}), encoding="utf-8")
    return path


def wait_for(predicate: Callable[[], bool], timeout_s: float, spin: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        spin()
    return predicate()
