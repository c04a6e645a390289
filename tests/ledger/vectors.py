"""The one loader for the ledger's test vectors (tests/vectors/ledger/*.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ledger"


@cache
def load(name: str) -> Any:
    """Parsed JSON of ``tests/vectors/ledger/<name>.json``."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def unhex(value: str) -> bytes:
    return bytes.fromhex(value)


def unhex_all(values: list[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(v) for v in values)
