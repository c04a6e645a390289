"""``iomt crypto``: the technique list and a smoke run of the benchmark (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from iomt.cli import main as cli_main
from iomt.crypto.benchmark import POLICY_SHAPES, POLICY_SIZES, RECORD_SIZES
from iomt.crypto.techniques import TECHNIQUE_NAMES


def test_techniques_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["crypto", "techniques", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(TECHNIQUE_NAMES)
    assert {r["name"]: r["weak"] for r in rows}["sym-3des"] is True
    assert cli_main(["crypto", "techniques"]) == 0
    assert "WEAK" in capsys.readouterr().out


def test_bench_quick_json_has_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["crypto", "bench", "--quick", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    seen = {(r["technique"], r["record_bytes"]) for r in doc["techniques"]}
    assert seen == {(t, s) for t in TECHNIQUE_NAMES for s in RECORD_SIZES}
    assert {(r["technique"], r["policy"], r["attributes"]) for r in doc["abe"]} == {
        ("cpabe", shape, n) for shape in POLICY_SHAPES for n in POLICY_SIZES
    } | {("ecc-attr", "and", n) for n in POLICY_SIZES}
    ops = {(o["group"], o["operation"]) for o in doc["ops"]}
    for needed in [
        ("token", "issue"),
        ("token", "verify (with proof of possession)"),
        ("session", "protect 64 B"),
        ("session", "unprotect 64 B"),
        ("signature", "ed25519 verify"),
    ]:
        assert needed in ops
    by_tech = {(r["technique"], r["record_bytes"]): r for r in doc["techniques"]}
    # overheads are facts of the formats, not timings
    assert by_tech[("none", 64)]["overhead_bytes"] == 2
    assert by_tech[("sym-aes", 64)]["overhead_bytes"] == 2 + 12 + 16
    assert by_tech[("ecc", 64)]["overhead_bytes"] == 2 + 1 + 33 + 16
