"""One clock type per unit: ``iomt.clock.ClockS`` (float seconds) and ``ClockNs`` (int
nanoseconds). A clock of unknown unit is a bug waiting for the wrong argument, so the source
tree (parsed, not imported) defines no other clock type and spells no clock as a bare
``Callable[[], float]`` / ``Callable[[], int]``."""

from __future__ import annotations

import ast
from pathlib import Path

from iomt.clock import ClockNs, ClockS

SRC = Path(__file__).resolve().parents[1] / "src" / "iomt"
# Old names still imported by code being split; each with its reason.
ALLOWED_ALIASES: dict[tuple[str, str], str] = {}


def _clock_types(path: Path, root: Path = SRC) -> list[tuple[str, str, int]]:
    """Clock types defined at module level (a name ending in ``Clock``), and clocks
    spelled as a bare callable type."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and ast.unparse(node) in (
            "Callable[[], float]",
            "Callable[[], int]",
        ):
            found.append((rel, ast.unparse(node), node.lineno))
    for node in tree.body:
        targets = (
            [t for t in node.targets if isinstance(t, ast.Name)]
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            else []
        )
        for target in targets:
            if target.id.endswith("Clock"):
                found.append((rel, target.id, node.lineno))
    return found


def test_clocks_are_typed_with_their_unit() -> None:
    found = [f for p in sorted(SRC.rglob("*.py")) if p != SRC / "clock.py" for f in _clock_types(p)]
    bad = [f for f in found if (f[0], f[1]) not in ALLOWED_ALIASES]
    assert not bad, "use iomt.clock.ClockS / ClockNs:\n" + "\n".join(map(str, bad))
    stale = set(ALLOWED_ALIASES) - {(f[0], f[1]) for f in found}
    assert not stale, f"fixed, remove from ALLOWED_ALIASES: {stale}"


def test_the_scan_finds_a_clock_without_a_unit(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from collections.abc import Callable\n"
        "Clock = Callable[[], float]\n"
        "def f(clock: Callable[[], int]) -> None: ...\n"
    )
    assert [(n, line) for _, n, line in _clock_types(tmp_path / "m.py", tmp_path)] == [
        ("Callable[[], float]", 2),
        ("Callable[[], int]", 3),
        ("Clock", 2),
    ]


def test_the_units_are_the_types_of_the_standard_clocks() -> None:
    import time

    seconds: ClockS = time.monotonic
    nanoseconds: ClockNs = time.time_ns
    assert isinstance(seconds(), float) and isinstance(nanoseconds(), int)
