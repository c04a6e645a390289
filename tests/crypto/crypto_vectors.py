"""The one loader for the security layer's test vectors (tests/vectors/crypto/*.json).

Each file is ``{"source": "...", "vectors": ...}``; binary fields are lowercase hex.
Invalid cases name the error class they must raise (looked up in iomt.crypto.errors), so
a vector file states both the bytes and the expected refusal.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from iomt.crypto import errors as crypto_errors

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "crypto"


@cache
def load(name: str) -> Any:
    doc = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    assert doc["source"], f"{name}.json must cite its source"
    return doc["vectors"]


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def error(name: str) -> type[Exception]:
    cls = getattr(crypto_errors, name)
    assert isinstance(cls, type) and issubclass(cls, Exception)
    return cls


def params(name: str, *, key: str | None = None, valid: bool | None = None) -> list[Any]:
    """pytest parameters for a list of vectors (optionally a sub-list and a validity filter)."""
    vectors = load(name) if key is None else load(name)[key]
    if valid is not None:
        vectors = [v for v in vectors if v.get("valid", True) is valid]
    return [pytest.param(v, id=v.get("name", v.get("policy", "?"))[:60]) for v in vectors]
