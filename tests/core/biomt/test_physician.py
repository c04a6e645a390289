"""A physician's Access/Observe workload, without DDS: Access, Access, Observe, Observe, each
pair once on the real path and once on the base, which goes first alternating every cycle;
one random choice per operation (the same seed, the same operations); discovery starts with
enough devices, or any at the deadline, and gives up without any; the tally is the results
file's physician record."""

from __future__ import annotations

import random

from iomt.core.biomt.physician import Operation, PhysicianWorkload
from iomt.core.modes import Mode

DEVICES = {"bolster-a": ("d1", "d2"), "bolster-b": ("d3",)}


def _workload(total: int = 8, seed: int = 5) -> PhysicianWorkload:
    w = PhysicianWorkload(total, random.Random(seed))
    for b, ds in DEVICES.items():
        w.discovered(b, ds)
    return w


def test_operations_cycle_in_pairs_with_alternating_paths() -> None:
    w = _workload()
    ops = []
    while (o := w.next()) is not None:
        ops.append((o.op, o.path))
    B, X = Mode.BIOMT, Mode.BASE
    assert ops == [
        ("access", B), ("access", X), ("observe", B), ("observe", X),
        ("access", X), ("access", B), ("observe", X), ("observe", B),
    ]  # fmt: skip
    assert w.issued == 8 and w.next() is None


def test_the_same_seed_makes_the_same_operations() -> None:
    reference = random.Random(5)
    candidates = [(b, d) for b, ds in DEVICES.items() for d in ds]
    expected = [reference.choice(candidates) for _ in range(8)]
    w = _workload(seed=5)
    got = [(o.bolster, o.device) for o in iter(w.next, None)]
    assert got == expected
    assert isinstance(_workload().next(), Operation)


def test_discovery_waits_for_enough_devices_and_gives_up_without_any() -> None:
    w = PhysicianWorkload(4, random.Random(0), min_devices=3)
    assert w.discovery(past_deadline=False) == "wait"
    assert w.discovery(past_deadline=True) == "give-up"
    w.discovered("bolster-a", ("d1",))
    assert w.discovery(past_deadline=False) == "wait"
    assert w.discovery(past_deadline=True) == "start"
    w.discovered("bolster-b", ("d2", "d3"))
    assert w.discovery(past_deadline=False) == "start"


def test_the_tally_is_the_physician_record() -> None:
    w = _workload()
    w.succeeded("access", Mode.BIOMT, 120)
    w.failed("observe/biomt", denied=True)
    w.failed("cloud")
    w.delay("update", Mode.BASE, 7)
    w.counts["records"] += 3
    summary = w.summary("dr_0", sessions=True)
    assert summary["record"] == "physician" and summary["physician"] == "dr_0"
    assert summary["devices"] == {"bolster-a": 2, "bolster-b": 1}
    assert summary["delays_us"]["access"][Mode.BIOMT] == [120]
    assert summary["delays_us"]["update"][Mode.BASE] == [7]
    assert summary["counts"]["done"] == 1 and summary["counts"]["failed"] == 2
    assert summary["counts"]["denied"] == 1 and summary["counts"]["records"] == 3
    assert summary["errors"] == {"observe/biomt": 1, "cloud": 1}
    assert summary["sessions"] is True and summary["finished"] is False
    assert set(summary["counts"]) == {
        "done", "failed", "denied", "redirected", "records", "handshakes", "attested",
        "attest_failed", "receipts_settled",
    }  # fmt: skip
