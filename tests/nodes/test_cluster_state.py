"""A cluster member's election state on disk, without DDS: (0, None) without a file; what is
saved is loaded again; an unchanged state is not written again; an unreadable file is an
error, not a silent fresh start (which could vote twice in one term)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iomt.errors import IomtError
from iomt.nodes.cluster_state import ElectionState


def test_saved_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.cluster.json"
    state = ElectionState(path)
    assert state.load() == (0, None)
    state.save((3, "bolster-a"))
    assert ElectionState(path).load() == (3, "bolster-a")
    assert not path.with_suffix(".tmp").exists()


def test_an_unchanged_state_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "b.cluster.json"
    state = ElectionState(path)
    state.load()
    state.save((0, None))
    assert not path.exists()
    state.save((1, None))
    mtime = path.stat().st_mtime_ns
    path.write_text('{"term": 1, "voted_for": null}', encoding="utf-8")
    state.save((1, None))
    assert path.read_text(encoding="utf-8") == '{"term": 1, "voted_for": null}'
    assert path.stat().st_mtime_ns >= mtime


def test_an_unreadable_state_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "b.cluster.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(IomtError, match="unreadable cluster state"):
        ElectionState(path).load()
