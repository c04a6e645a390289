"""The one loader for the FHIR export's test vectors (tests/vectors/fhir/*.json).

Each file is ``{"source": "...", "vectors": [...]}``; a vector has a ``name``, a
``resource`` (FHIR JSON), ``valid`` and ``rules``: exactly the rule ids
``iomt.core.fhir`` must report for it (empty when valid). ``json_only`` marks vectors
invalid only as JSON text: fhir.resources coerces them when parsing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "fhir"


@cache
def load(name: str) -> list[dict[str, Any]]:
    doc = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    assert doc["source"], f"{name}.json must cite its source"
    vectors: list[dict[str, Any]] = doc["vectors"]
    for v in vectors:
        assert v["valid"] is (not v["rules"]), v["name"]
    return vectors


def params(name: str, *, valid: bool | None = None, parsed: bool = False) -> list[Any]:
    """pytest parameters; ``parsed`` leaves out the ``json_only`` vectors."""
    vectors = load(name)
    if parsed:
        vectors = [v for v in vectors if not v.get("json_only")]
    if valid is not None:
        vectors = [v for v in vectors if v["valid"] is valid]
    return [pytest.param(v, id=v["name"][:60]) for v in vectors]
