"""Finding 5: data at rest.

The outside test found incapable devices' ``storage/*.db`` holding plaintext readings at
mode 0644, as did the bag and the ledger, and the ledger audit blind to local storage: a
flipped bit and 840 deleted records both audited VALID. Against the BIoMT ward of the
crash attack (``attacked_biomt_run``: a real ``iomt launch``, its bolster and device group
SIGKILLed and restarted mid-run):

* while it ran and after, nothing under the run directory is readable by anyone but its
  owner: directories 0700, files 0600 (storage, ledgers and their WAL files, bag, keys,
  results, FHIR, logs, reports);
* ``iomt audit`` finds the run valid, and finds each of the outside test's changes, on a
  copy of the run directory: a flipped bit and deleted records in a device's storage, and
  in the bolster's local storage (840 records deleted, as in the finding).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from attack_wards import AttackedRun, exposed, launch_env

from iomt.experiments.at_rest import audit_storage

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def _iomt_audit(run_dir: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "iomt", "audit", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=launch_env(),
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _incapable_device(run_dir: Path) -> str:
    spec = json.loads((run_dir / "specs" / "devices_0.json").read_text())
    return next(n["name"] for n in spec["nodes"] if n["params"]["capability"] == "none")


@pytest.fixture
def copy(attacked_biomt_run: AttackedRun, tmp_path: Path) -> Path:
    assert attacked_biomt_run.returncode == 0, attacked_biomt_run.stderr[-2000:]
    target = tmp_path / "copy"
    shutil.copytree(attacked_biomt_run.run_dir, target, symlinks=True)
    return target


@pytest.mark.timeout(400)
def test_nothing_in_a_run_is_readable_by_others(attacked_biomt_run: AttackedRun) -> None:
    run = attacked_biomt_run
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.files_while_running > 50
    assert run.exposed_while_running == []
    assert exposed(run.run_dir) == []
    assert stat.S_IMODE(run.run_dir.stat().st_mode) == 0o700
    # the files of the finding, by name: an incapable device's storage, the ledger, the bag
    device = _incapable_device(run.run_dir)
    for rel in (
        f"storage/{device}.db",
        "storage/bolster_0.ledger.sqlite",
        "storage/bolster_0.secret",
        "keystore",
        "bag",
        "results/dr_0.jsonl",
        "report.json",
        "logs/bolster_0.log",
    ):
        path = run.run_dir / rel
        assert path.exists(), rel
        assert stat.S_IMODE(path.stat().st_mode) in (0o600, 0o700), rel
    assert list((run.run_dir / "bag").glob("*.mcap"))
    # the report says so too
    assert run.report["at_rest"]["exposed"] == []


@pytest.mark.timeout(400)
def test_the_audit_passes_a_run_that_was_not_touched(copy: Path) -> None:
    code, out = _iomt_audit(copy)
    assert code == 0, out
    assert "ledger bolster_0: valid" in out and "local storage valid" in out
    assert "device storage: 10/10 valid" in out and out.strip().endswith("VALID")


def _sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


@pytest.mark.timeout(400)
def test_a_flipped_bit_in_a_device_storage_is_found(copy: Path) -> None:
    device = _incapable_device(copy)
    db = copy / "storage" / f"{device}.db"
    con = sqlite3.connect(db)
    n, data = con.execute("SELECT n, data FROM readings ORDER BY n LIMIT 1 OFFSET 2").fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x04
    con.execute("UPDATE readings SET data = ? WHERE n = ?", (bytes(flipped), n))
    con.commit()
    con.close()
    result = audit_storage(copy)
    assert not result["valid"]
    assert f"record {n} does not match its MAC" in result["devices"]["invalid"][device]
    code, out = _iomt_audit(copy)
    assert code == 1 and out.strip().endswith("INVALID") and device in out


@pytest.mark.timeout(400)
@pytest.mark.parametrize("where", ["middle", "newest"])
def test_deleted_device_readings_are_found(copy: Path, where: str) -> None:
    device = _incapable_device(copy)
    db = copy / "storage" / f"{device}.db"
    count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    assert count > 6
    if where == "middle":
        _sql(db, "DELETE FROM readings WHERE n BETWEEN 2 AND 4")
    else:
        _sql(db, f"DELETE FROM readings WHERE n >= {count - 3}")
    result = audit_storage(copy)
    assert "missing" in result["devices"]["invalid"][device]


@pytest.mark.timeout(400)
def test_a_flipped_bit_in_the_bolster_local_storage_is_found(copy: Path) -> None:
    db = copy / "storage" / "bolster_0.ledger.sqlite"
    con = sqlite3.connect(db)
    device, seq, data = con.execute(
        "SELECT device_id, seq, data FROM records ORDER BY seq LIMIT 1 OFFSET 5"
    ).fetchone()
    flipped = bytearray(data)
    flipped[-1] ^= 0x80
    con.execute(
        "UPDATE records SET data = ? WHERE device_id = ? AND seq = ?", (bytes(flipped), device, seq)
    )
    con.commit()
    con.close()
    row = audit_storage(copy)["ledgers"]["bolster_0"]
    assert row["audit"] == "valid"  # the ledger itself is untouched ...
    assert row["local_storage"]["audit"].startswith("INVALID")  # ... its backup drive is not
    assert f"({device}, {seq})" in row["local_storage"]["audit"]
    code, out = _iomt_audit(copy)
    assert code == 1 and "local storage INVALID" in out


@pytest.mark.timeout(400)
def test_840_deleted_bolster_records_are_found(copy: Path) -> None:
    db = copy / "storage" / "bolster_0.ledger.sqlite"
    con = sqlite3.connect(db)
    total = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()
    gone = min(840, total - 1)  # the finding's 840, or all but one in a shorter run
    assert gone >= 20
    _sql(
        db,
        "DELETE FROM records WHERE (device_id, seq) IN "
        f"(SELECT device_id, seq FROM records ORDER BY seq LIMIT {gone})",
    )
    row = audit_storage(copy)["ledgers"]["bolster_0"]
    assert row["audit"] == "valid"
    assert "are missing" in row["local_storage"]["audit"]
    code, out = _iomt_audit(copy)
    assert code == 1 and "INVALID" in out
