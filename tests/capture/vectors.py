"""The one loader for the capture layer's test vectors (tests/vectors/capture/*.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "capture"


@cache
def load(name: str) -> list[dict[str, Any]]:
    """The cases of ``tests/vectors/capture/<name>.json``; ``hex`` decoded to ``data``."""
    raw = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return [{**case, "data": bytes.fromhex(case["hex"])} for case in raw["cases"]]
