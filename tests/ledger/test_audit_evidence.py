"""The audit's evidence for each attack on a stored ledger, as known answers.

test_sqlite_tamper.py shows that each attack is caught with the right error type at the
right row; these pin the whole report an operator reads: the message, the transaction or
block, and the expected and computed values (hashes, sizes, the two checkpoints of a fork).
Written against mutation testing (docs/testing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iomt.ledger import (
    AuditReport,
    BlockCoverageError,
    BlockSequenceError,
    KeyMismatchError,
    Ledger,
    MemoryStorage,
    SqliteStorage,
    Transaction,
    TxType,
    UncoveredTransactionError,
    audit,
    verify_block,
)

from .audit_scenarios import OTHER, SCENARIOS, SIGNER, policy, run
from .conftest import FakeClock
from .test_sqlite_tamper import _build
from .vectors import load

VECTORS = load("audit_evidence")


def test_every_scenario_has_a_known_answer() -> None:
    assert set(VECTORS) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_audit_reports_each_attack_with_its_evidence(name: str, tmp_path: Path) -> None:
    assert run(name, tmp_path) == VECTORS[name]


def test_a_clean_audit_reports_what_it_established(tmp_path: Path) -> None:
    db = tmp_path / "bolster.db"
    _build(db, SIGNER, policy())
    with SqliteStorage(db) as store:
        report = audit(store, SIGNER, trusted_checkpoints=[])
        head = store.latest_head()
    assert isinstance(report, AuditReport) and head is not None
    assert (report.log_id, report.root_hash, report.block_hash) == (
        head.log_id,
        head.root_hash,
        head.block_hash,
    )
    assert report.checkpoint == head
    assert (report.tree_size, report.block_height, report.pending) == (10, 3, 2)
    assert report.privacy_header_version == 1
    assert [report.count(t) for t in TxType] == [2, 2, 2, 2, 2]
    empty = AuditReport(
        report.log_id, 0, b"", 1, b"", 0, report.checkpoint, 1, ((TxType.STORE, 3),)
    )
    assert empty.count(TxType.STORE) == 3 and empty.count(TxType.REMOVE) == 0


def test_checkpoints_are_checked_in_size_order(tmp_path: Path) -> None:
    from .audit_scenarios import checkpoint_at

    db = tmp_path / "bolster.db"
    _build(db, SIGNER, policy())
    late, early = checkpoint_at(db, 9, tmp_path), checkpoint_at(db, 3, tmp_path)
    with SqliteStorage(db) as store:
        assert audit(store, SIGNER, trusted_checkpoints=[late, early]).tree_size == 10


def test_a_block_checked_on_its_own_names_what_is_wrong(tmp_path: Path) -> None:
    db = tmp_path / "bolster.db"
    _build(db, SIGNER, policy())
    with SqliteStorage(db) as store:
        blocks = list(store.iter_blocks())
    genesis, one, two = blocks
    verify_block(two, SIGNER, one)
    with pytest.raises(KeyMismatchError) as info:
        verify_block(one, OTHER, genesis)
    assert str(info.value) == "block 1 belongs to another ledger"
    assert info.value.block_index == 1
    with pytest.raises(BlockSequenceError) as seq:
        verify_block(two, SIGNER, genesis)
    assert str(seq.value) == "block 1 is missing (found block 2)"
    assert (seq.value.block_index, seq.value.expected, seq.value.computed) == (1, 1, 2)
    with pytest.raises(BlockCoverageError) as cov:
        verify_block(one, SIGNER, _with_tree_size(genesis, 3))
    assert str(cov.value) == "block 1 does not continue the log where block 0 ended"
    assert cov.value.block_index == 1
    assert (cov.value.expected, cov.value.computed) == ((3, 7), (0, 4))


def _with_tree_size(block, size):  # type: ignore[no-untyped-def]
    """A stand-in for a previous block that ended at ``size`` (only its index, hash and
    tree size are read)."""

    class Previous:
        index = block.index
        header = type("H", (), {"tree_size": size})()

        def hash(self) -> bytes:
            return block.hash()

    return Previous()


def test_a_ledger_longer_than_one_audit_batch_audits_clean() -> None:
    """The audit reads the log in batches of 2048 transactions: across a batch boundary
    every leaf and node is still checked, and counted once."""
    store = MemoryStorage()
    led = Ledger.open(
        store, SIGNER, privacy_header=policy(), clock=FakeClock(), max_block_transactions=512
    )
    for i in range(2050):
        led.append(TxType.STORE, "dev-0", b"%d" % i, time=i)
    report = audit(store, SIGNER)
    assert (report.tree_size, report.count(TxType.STORE)) == (2050, 2050)


def test_a_row_slipped_in_after_a_full_audit_batch_is_named_as_uncovered() -> None:
    store = MemoryStorage()
    led = Ledger.open(
        store, SIGNER, privacy_header=policy(), clock=FakeClock(), max_block_transactions=512
    )
    for i in range(2048):  # exactly one audit batch, all signed
        led.append(TxType.STORE, "dev-0", b"%d" % i, time=i)
    store._txs.append(Transaction(2048, TxType.STORE, "dev-0", 1, b"forged"))  # no key, no head
    with pytest.raises(UncoveredTransactionError) as info:
        audit(store, SIGNER)
    assert info.value.seq == 2048
