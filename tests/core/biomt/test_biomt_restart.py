"""The bolster core on SQLite survives re-open: nothing acknowledged is lost.

The crash tests kill a real bolster process (``crash_bolster.py``) with SIGKILL — at the
exact point between an Origin or Remove commit and the block that completes it, or at a
random moment of a provision/store loop — and reopen its ledger in this process. That is
a process crash: the kernel keeps what was written. A power cut is what ``synchronous=FULL``
is for (docs/ledger.md); no test here can cut the power.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import (
    BodyUnreadableError,
    Bolster,
    BolsterIdentity,
    DeviceRemovedError,
    PairKeyStatus,
    ReplayError,
)
from iomt.ledger import SqliteStorage, TxType


def test_restart_keeps_devices_keys_counters_subscriptions_and_grants(tmp_path: Path) -> None:
    w = World(db=tmp_path / "b.db")
    a = w.device("iomt://facility-a/hr-1")
    b = w.device("iomt://facility-a/hr-2")
    gone = w.device("iomt://facility-a/hr-3")
    for _ in range(4):
        w.clock.advance(SECOND)
        w.store(a, 70)
    replayed = a.store_request(heart_rate(70, w.clock()))
    w.bolster.store(replayed)
    sub_req = w.physician.observe("bolster-a", [a.pseudonym], duration=3600 * SECOND)
    sub = w.bolster.observe(sub_req)
    observer = w.physician.open_subscription(sub_req, sub, bolster=w.bolster.verifier)
    grant = w.bolster.setup_communication(
        a.communication_request(b.pseudonym, lifetime=600 * SECOND)
    )
    w.bolster.remove(w.admin.remove("bolster-a", gone.pseudonym, reason="broken"))
    size, root = w.bolster.ledger.size, w.bolster.ledger.root

    bolster = w.restart()
    assert (bolster.ledger.size, bolster.ledger.root) == (size, root)
    assert bolster.devices() == sorted([a.pseudonym, b.pseudonym])
    # the counter survived: the old request is still a replay, the next one works
    with pytest.raises(ReplayError):
        bolster.store(replayed)
    w.clock.advance(3 * SECOND)
    result = bolster.store(a.store_request(heart_rate(71, w.clock())))
    a.check_store_receipt(result.receipt)
    # the subscription and its key survived
    (update,) = result.updates
    assert observer.open(update).value("bpm") == 71
    assert bolster.pair_key_status(grant.grant_id) is PairKeyStatus.VALID
    with pytest.raises(DeviceRemovedError):
        bolster.store(gone.store_request(heart_rate(70, w.clock())))
    # the data is all there
    req = w.physician.access("bolster-a", a.pseudonym)
    payload = w.physician.open_access(req, bolster.access(req), bolster=bolster.verifier)
    assert len(payload.records) == 6
    assert bolster.ledger.verify_chain().tree_size == bolster.ledger.size
    w.close()


# -- a bolster process killed mid-operation, its ledger reopened by another process ----------

CHILD = Path(__file__).with_name("crash_bolster.py")


def _killed(procs: Any, root: Path, op: str) -> list[str]:
    """Run ``crash_bolster.py ROOT OP`` until it SIGKILLs itself; its output lines."""
    proc = procs.start(str(CHILD), str(root), op)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}: {err[-2000:]}"
    lines = out.splitlines()
    assert lines[0] == "ready" and lines[-1] == "cut", lines
    return lines


def _tx_types(db: Path) -> tuple[list[TxType], int]:
    """What the killed process left on disk: transaction types, and how many of them the
    last sealed block covers (read without opening a bolster, which would repair)."""
    store = SqliteStorage(db)
    try:
        types = [store.get_transaction(i).tx_type for i in range(store.transaction_count())]
        last = store.get_block(store.block_count() - 1)
        return types, last.header.tree_size
    finally:
        store.close()


@pytest.mark.timeout(90)
def test_restart_completes_an_origin_whose_process_was_killed(tmp_path: Path, procs: Any) -> None:
    """SIGKILL after the Origin commit, before the block admitting the device is sealed."""
    _killed(procs, tmp_path, "origin")
    types, sealed = _tx_types(tmp_path / "b.db")
    assert types[-1] is TxType.ORIGIN and sealed < len(types)  # committed, not yet admitted
    w = World(db=tmp_path / "b.db", keystore=tmp_path / "keystore")  # another process's view
    (pseudonym,) = w.bolster.devices()
    assert w.bolster.privacy_header.is_authorized(pseudonym)
    assert w.bolster.ledger.verify_chain().tree_size == w.bolster.ledger.size
    w.close()


@pytest.mark.timeout(90)
def test_restart_completes_a_remove_whose_process_was_killed(tmp_path: Path, procs: Any) -> None:
    lines = _killed(procs, tmp_path, "remove")
    pseudonym = next(line.split()[1] for line in lines if line.startswith("stored "))
    types, sealed = _tx_types(tmp_path / "b.db")
    assert types[-1] is TxType.REMOVE and sealed < len(types)
    probe = SqliteStorage(tmp_path / "b.db")
    assert list(probe.iter_records(pseudonym))  # the records were not yet deleted
    probe.close()
    w = World(db=tmp_path / "b.db", keystore=tmp_path / "keystore")
    bolster = w.bolster
    assert bolster.is_removed(pseudonym)
    assert not bolster.privacy_header.is_authorized(pseudonym)
    assert bolster.local_storage.records(pseudonym) == []
    assert bolster.ledger.verify_chain().tree_size == bolster.ledger.size
    w.close()


def _read_until(procs: Any, proc: subprocess.Popen[str], acks: int, timeout_s: float) -> list[str]:
    """The first ``acks`` "stored" lines, read by bytes: what was read past them stays with
    the process for ``communicate`` (a text stream's read-ahead would lose it)."""
    deadline = time.monotonic() + timeout_s
    return [
        procs.wait_for_line(proc, "stored ", max(0.1, deadline - time.monotonic())).strip()
        for _ in range(acks)
    ]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("round_", range(3))
def test_a_bolster_killed_at_a_random_moment_loses_nothing_acknowledged(
    tmp_path: Path, procs: Any, round_: int
) -> None:
    """Provisioning and storing in a loop; SIGKILL from outside, anywhere in an operation."""
    rng = random.Random(20260 + round_)
    proc = procs.start(str(CHILD), str(tmp_path), "loop")
    lines = _read_until(procs, proc, rng.randint(4, 30), 60)
    time.sleep(rng.uniform(0, 0.02))  # land somewhere inside the next operation
    os.killpg(proc.pid, signal.SIGKILL)
    out, _err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # acknowledged before the kill, still in the pipe; a last line without its newline
    # was cut short by the kill and never acknowledged
    *complete, _cut = out.split("\n")
    lines += complete
    acked: dict[str, int] = {}
    for line in lines:
        if line.startswith("stored "):
            _, pseudonym, _n = line.split()
            acked[pseudonym] = acked.get(pseudonym, 0) + 1
    w = World(db=tmp_path / "b.db", keystore=tmp_path / "keystore")
    bolster = w.bolster
    assert bolster.ledger.verify_chain().tree_size == bolster.ledger.size
    for pseudonym, count in acked.items():
        assert pseudonym in bolster.devices()
        assert bolster.privacy_header.is_authorized(pseudonym)
        assert len(bolster.local_storage.records(pseudonym)) >= count
    w.close()


def test_a_wrong_storage_secret_cannot_read_the_ledger(tmp_path: Path) -> None:
    w = World(db=tmp_path / "b.db")
    w.device()
    wrong = BolsterIdentity(
        w.identity.bolster_id,
        w.identity.facility_id,
        w.identity.signer,
        w.identity.signing_certificate,
        w.identity.agreement_key,
        w.identity.agreement_certificate,
        bytes(32),
    )
    with pytest.raises(BodyUnreadableError):
        Bolster.open(wrong, w.storage, ca=w.ca, users=w.users, clock=w.clock, rng=w.rng)
    w.close()
