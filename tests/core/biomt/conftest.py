"""Fixtures for the BIoMT core tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from biomt_world import World


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The same facility on both ledger backends."""
    w = World(db=tmp_path / "bolster.db" if request.param == "sqlite" else None)
    yield w
    w.close()
