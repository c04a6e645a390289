"""The layering of DESIGN.md, enforced: lower layers never import higher ones or DDS.

``iomt.msg`` holds the generated cyclonedds IdlStructs, so it may load ``cyclonedds``
(whose package import pulls in the C layer); the sans-IO layers may not load it at all:
they speak in frozen dataclasses and bytes, and nodes convert at the boundary.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HIGHER = (
    "iomt.runtime",
    "iomt.nodes",
    "iomt.cli",
    "iomt.experiments",
    "iomt.topology",
    "iomt.capture",
)

CASES = [
    # (layer, forbidden module prefixes)
    ("iomt.errors", ("cyclonedds", "iomt.msg", *HIGHER)),
    ("iomt.crypto", ("cyclonedds", "iomt.msg", *HIGHER)),
    ("iomt.core", ("cyclonedds", "iomt.msg", *HIGHER)),
    ("iomt.ledger", ("cyclonedds", "iomt.msg", *HIGHER)),
    ("iomt.msg", HIGHER),
]


@pytest.mark.parametrize(("module", "forbidden"), CASES)
def test_layer_imports_only_what_is_below(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"m = importlib.import_module({module!r})\n"
        "for info in pkgutil.walk_packages(getattr(m, '__path__', []), m.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        f"bad = sorted(n for n in sys.modules if n.startswith({forbidden!r}))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
