"""Regenerate tests/vectors/ledger/audit_evidence.json from the audit as it is now.

    .venv/bin/python -m tests.ledger.make_audit_vectors   (from the repository root)

Regenerating is a deliberate act reviewed like code: the vectors are what the audit reports
for each attack in ``audit_scenarios.SCENARIOS``, and a changed answer fails
test_audit_evidence.py until it is looked at."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .audit_scenarios import SCENARIOS, run
from .vectors import VECTORS


def main() -> None:
    out = {}
    for name in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = run(name, Path(tmp))
    path = VECTORS / "audit_evidence.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{path}: {len(out)} scenarios")


if __name__ == "__main__":
    main()
