"""The one loader for the BIoMT core's test vectors (tests/vectors/biomt/*.json).

Each file is ``{"source": ..., "vectors": ...}``; bytes are hex (``{"hex": ...}`` inside
field dumps). Invalid cases name the error class (from iomt.core.biomt) they must raise.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from functools import cache
from pathlib import Path
from typing import Any

from iomt.core import biomt
from iomt.core.biomt import provisioning

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "biomt"


@cache
def load(name: str = "biomt") -> Any:
    doc = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    assert doc["source"], f"{name}.json must cite its source"
    return doc["vectors"]


def message_type(name: str) -> Any:
    return getattr(biomt, name, None) or getattr(provisioning, name)


def error(name: str) -> type[Exception]:
    cls = getattr(biomt, name)
    assert isinstance(cls, type) and issubclass(cls, Exception)
    return cls


def to_json(value: Any) -> Any:
    """The same field dump the vector generator writes."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value
