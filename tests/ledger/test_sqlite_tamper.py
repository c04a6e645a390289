"""Attacks on the SQLite file itself, made with plain ``sqlite3``: the audit names each one.

The ledger is closed, the file edited as an attacker with disk access would (without the
bolster's key), and :func:`audit` must raise the specific error for what was changed, at the
right transaction or block. Layout used throughout (``max_block_transactions=4``): genesis
block 0, block 1 = seq 0..3, block 2 = seq 4..7, seq 8..9 pending.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    BlockMerkleRootError,
    BlockSequenceError,
    BlockSignatureError,
    ChainLinkError,
    CheckpointSignatureError,
    ForkDetectedError,
    Ledger,
    LedgerIntegrityError,
    LedgerKey,
    LedgerStorageError,
    LedgerVerificationError,
    MerkleNodeError,
    PrivacyHeader,
    PrivacyHeaderError,
    SqliteStorage,
    Transaction,
    TransactionSequenceError,
    TransactionTamperedError,
    TreeHeadMismatchError,
    TxType,
    UncoveredTransactionError,
    audit,
)
from iomt.ledger.merkle import Frontier, leaf_hash

from .conftest import FakeClock


def _build(path: Path, signer: LedgerKey, policy: PrivacyHeader, n: int = 10) -> None:
    with SqliteStorage(path) as store:
        led = Ledger.open(
            store, signer, privacy_header=policy, clock=FakeClock(), max_block_transactions=4
        )
        for i in range(n):
            led.append(
                [TxType.ORIGIN, TxType.STORE, TxType.ACCESS, TxType.OBSERVE, TxType.REMOVE][i % 5],
                f"dev-{i % 3}",
                hashlib.sha256(b"body %d" % i).digest() * 2,
                time=1000 + i,
                signature=b"gen-sig-%d" % i,
            )


@pytest.fixture
def db(tmp_path: Path, signer: LedgerKey, policy: PrivacyHeader) -> Path:
    path = tmp_path / "bolster.db"
    _build(path, signer, policy)
    with SqliteStorage(path) as store:
        audit(store, signer.public_key_bytes)  # the untouched file is clean
    return path


def _tamper(path: Path, *statements: tuple[str, tuple]) -> None:
    con = sqlite3.connect(path)
    with con:
        for sql, params in statements:
            assert con.execute(sql, params).rowcount != 0, sql
    con.close()


def _audit_error(path: Path, signer: LedgerKey) -> LedgerVerificationError:
    with SqliteStorage(path) as store, pytest.raises(LedgerVerificationError) as info:
        audit(store, signer.public_key_bytes)
    return info.value


def _flip_byte(blob: bytes, at: int = 0) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


def _row(path: Path, sql: str, params: tuple = ()) -> tuple:
    con = sqlite3.connect(path)
    row = con.execute(sql, params).fetchone()
    con.close()
    return tuple(row)


def _set_body(path: Path, seq: int, change: Callable[[bytes], bytes]) -> None:
    (body,) = _row(path, "SELECT body FROM transactions WHERE seq = ?", (seq,))
    _tamper(path, ("UPDATE transactions SET body = ? WHERE seq = ?", (change(body), seq)))


@pytest.mark.parametrize("seq", [2, 9], ids=["sealed", "pending"])
def test_modified_body_byte(db: Path, signer, seq: int) -> None:
    _set_body(db, seq, lambda b: _flip_byte(b, 5))
    err = _audit_error(db, signer)
    assert type(err) is TransactionTamperedError and err.seq == seq


@pytest.mark.parametrize(
    ("column", "value"),
    [("tx_type", 4), ("generator_id", "dev-evil"), ("time_ns", 1), ("signature", b"forged")],
)
def test_modified_metadata(db: Path, signer, column: str, value: object) -> None:
    _tamper(db, (f"UPDATE transactions SET {column} = ? WHERE seq = 6", (value,)))
    err = _audit_error(db, signer)
    assert type(err) is TransactionTamperedError and err.seq == 6


def test_malformed_row(db: Path, signer) -> None:
    _tamper(db, ("UPDATE transactions SET tx_type = 42 WHERE seq = 3", ()))
    err = _audit_error(db, signer)
    assert type(err) is TransactionTamperedError and err.seq == 3


@pytest.mark.parametrize("seq", [0, 5, 9], ids=["first", "middle", "last"])
def test_dropped_transaction_row(db: Path, signer, seq: int) -> None:
    _tamper(db, ("DELETE FROM transactions WHERE seq = ?", (seq,)))
    err = _audit_error(db, signer)
    assert type(err) is TransactionSequenceError and err.seq == seq


def _copy_row(db: Path, seq: int, new_seq: int) -> tuple[str, tuple]:
    row = _row(db, "SELECT * FROM transactions WHERE seq = ?", (seq,))
    return ("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)", (new_seq, *row[1:]))


def test_inserted_row_at_the_end(db: Path, signer) -> None:
    _tamper(db, _copy_row(db, 3, 10))
    err = _audit_error(db, signer)
    assert type(err) is UncoveredTransactionError and err.seq == 10


def test_inserted_row_with_its_leaf_too(db: Path, signer) -> None:
    # The attacker also adds the matching leaf node: still not covered by a signature.
    forged = Transaction(10, TxType.STORE, "dev-0", 5, b"forged reading")
    _tamper(
        db,
        (
            "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)",
            (10, 2, "dev-0", 5, forged.body, b""),
        ),
        ("INSERT INTO nodes VALUES (0, 10, ?)", (forged.leaf_hash(),)),
    )
    assert type(_audit_error(db, signer)) is UncoveredTransactionError


def test_inserted_row_in_the_middle(db: Path, signer) -> None:
    # Shift seq 5.. up by one and slip a forged row in at 5.
    con = sqlite3.connect(db)
    with con:
        for seq in range(9, 4, -1):
            con.execute("UPDATE transactions SET seq = ? WHERE seq = ?", (seq + 1, seq))
        con.execute(
            "INSERT INTO transactions VALUES (5, 2, 'dev-0', 5, x'00', x'')",
        )
    con.close()
    err = _audit_error(db, signer)
    assert type(err) is TransactionTamperedError and err.seq == 5


def test_reordered_rows(db: Path, signer) -> None:
    a = _row(db, "SELECT * FROM transactions WHERE seq = 1")
    b = _row(db, "SELECT * FROM transactions WHERE seq = 2")
    update = (
        "UPDATE transactions SET tx_type = ?, generator_id = ?, time_ns = ?, body = ?, "
        "signature = ? WHERE seq = ?"
    )
    _tamper(db, (update, (*b[1:], 1)), (update, (*a[1:], 2)))
    err = _audit_error(db, signer)
    assert type(err) is TransactionTamperedError and err.seq == 1


def test_consistent_rewrite_of_a_sealed_transaction(db: Path, signer) -> None:
    # Content and its leaf hash rewritten together: the signed block root catches it.
    forged = Transaction(2, TxType.ACCESS, "dev-2", 1002, b"rewritten", b"gen-sig-2")
    _tamper(
        db,
        ("UPDATE transactions SET body = ? WHERE seq = 2", (forged.body,)),
        ("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = 2", (forged.leaf_hash(),)),
    )
    err = _audit_error(db, signer)
    assert type(err) is BlockMerkleRootError and err.block_index == 1


def test_consistent_rewrite_of_a_pending_transaction(db: Path, signer) -> None:
    # Pending (unsealed) transactions are covered by the signed tree head.
    forged = Transaction(9, TxType.REMOVE, "dev-0", 1009, b"rewritten", b"gen-sig-9")
    _tamper(
        db,
        ("UPDATE transactions SET body = ? WHERE seq = 9", (forged.body,)),
        ("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = 9", (forged.leaf_hash(),)),
    )
    err = _audit_error(db, signer)
    assert type(err) is TreeHeadMismatchError


def test_modified_prev_hash(db: Path, signer) -> None:
    (prev,) = _row(db, "SELECT prev_hash FROM blocks WHERE idx = 2")
    _tamper(db, ("UPDATE blocks SET prev_hash = ? WHERE idx = 2", (_flip_byte(prev),)))
    err = _audit_error(db, signer)
    assert type(err) is ChainLinkError and err.block_index == 2
    assert err.computed == _flip_byte(prev) and err.expected == prev


@pytest.mark.parametrize("column", ["tx_root", "tree_root", "privacy_hash", "log_id", "signature"])
def test_modified_signed_block_header_field(db: Path, signer, column: str) -> None:
    (value,) = _row(db, f"SELECT {column} FROM blocks WHERE idx = 1")
    _tamper(db, (f"UPDATE blocks SET {column} = ? WHERE idx = 1", (_flip_byte(value, 3),)))
    err = _audit_error(db, signer)
    assert isinstance(err, BlockSignatureError | LedgerIntegrityError)
    assert err.block_index == 1  # type: ignore[attr-defined]
    if column != "log_id":
        assert type(err) is BlockSignatureError


@pytest.mark.parametrize("column", ["time_ns", "tx_count", "first_seq"])
def test_modified_block_numbers(db: Path, signer, column: str) -> None:
    _tamper(db, (f"UPDATE blocks SET {column} = {column} + 1 WHERE idx = 2", ()))
    err = _audit_error(db, signer)
    assert type(err) is BlockSignatureError and err.block_index == 2


def test_modified_privacy_header(db: Path, signer) -> None:
    (raw,) = _row(db, "SELECT privacy_header FROM blocks WHERE idx = 1")
    widened = PrivacyHeader.from_bytes(raw).with_device("dev-attacker")
    _tamper(db, ("UPDATE blocks SET privacy_header = ? WHERE idx = 1", (widened.to_bytes(),)))
    err = _audit_error(db, signer)
    assert type(err) is PrivacyHeaderError and err.block_index == 1


def test_garbled_privacy_header(db: Path, signer) -> None:
    (raw,) = _row(db, "SELECT privacy_header FROM blocks WHERE idx = 0")
    _tamper(db, ("UPDATE blocks SET privacy_header = ? WHERE idx = 0", (raw[:-2],)))
    err = _audit_error(db, signer)
    assert type(err) is PrivacyHeaderError and err.block_index == 0


@pytest.mark.parametrize("index", [1, 2], ids=["middle", "latest"])
def test_dropped_block(db: Path, signer, index: int) -> None:
    _tamper(db, ("DELETE FROM blocks WHERE idx = ?", (index,)))
    err = _audit_error(db, signer)
    assert type(err) is BlockSequenceError and err.block_index == index


def test_inserted_block(db: Path, signer) -> None:
    row = _row(db, "SELECT * FROM blocks WHERE idx = 2")
    _tamper(db, ("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (3, *row[1:])))
    err = _audit_error(db, signer)
    assert isinstance(err, BlockSignatureError | ChainLinkError) and err.block_index == 3


def test_reordered_blocks(db: Path, signer) -> None:
    cols = (
        "log_id, prev_hash, first_seq, tx_count, tx_root, tree_size, tree_root, time_ns, "
        "privacy_hash, signature, privacy_header"
    )
    one = _row(db, f"SELECT {cols} FROM blocks WHERE idx = 1")
    two = _row(db, f"SELECT {cols} FROM blocks WHERE idx = 2")
    assign = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    update = f"UPDATE blocks SET {assign} WHERE idx = ?"
    _tamper(db, (update, (*two, 1)), (update, (*one, 2)))
    err = _audit_error(db, signer)
    assert type(err) is ChainLinkError and err.block_index == 1


def test_tampered_signed_head(db: Path, signer) -> None:
    (raw,) = _row(db, "SELECT value FROM meta WHERE key = 'head'")
    _tamper(db, ("UPDATE meta SET value = ? WHERE key = 'head'", (_flip_byte(raw, len(raw) - 1),)))
    assert type(_audit_error(db, signer)) is CheckpointSignatureError


@pytest.mark.parametrize(
    "statement",
    [
        ("DELETE FROM nodes WHERE level = 1 AND idx = 1", ()),
        ("UPDATE nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0", ()),
        ("INSERT INTO nodes VALUES (5, 0, zeroblob(32))", ()),
    ],
    ids=["dropped", "modified", "extra"],
)
def test_tampered_tree_nodes(db: Path, signer, statement: tuple[str, tuple]) -> None:
    _tamper(db, statement)
    assert type(_audit_error(db, signer)) is MerkleNodeError


def test_rollback_is_caught_by_a_witnessed_checkpoint(
    tmp_path: Path, db: Path, signer, policy
) -> None:
    old = tmp_path / "old.db"
    _build(old, signer, policy, n=6)
    with SqliteStorage(db) as store:
        witnessed = Ledger.open(store, signer).checkpoint()
    # Replace the ledger with an older, validly signed one (a rollback).
    shutil.copy(old, db)
    with SqliteStorage(db) as store:
        audit(store, signer.public_key_bytes)  # on its own it looks fine...
        with pytest.raises(ForkDetectedError):
            audit(store, signer, trusted_checkpoints=[witnessed])


def test_audit_with_a_witnessed_checkpoint_of_the_same_history(db: Path, signer) -> None:
    with SqliteStorage(db) as store:
        led = Ledger.open(store, signer)
        mid = led.checkpoint()
        report = audit(store, signer, trusted_checkpoints=[mid])
        assert report.tree_size == 10


def test_wrong_key(db: Path) -> None:
    other = LedgerKey(Ed25519Signer.from_private_bytes(b"\x09" * 32))
    err = _audit_error(db, other)
    assert isinstance(err, LedgerIntegrityError)


def test_frontier_matches_naive_recomputation_after_reopen(db: Path, signer) -> None:
    with SqliteStorage(db) as store:
        led = Ledger.open(store, signer)
        f = Frontier()
        for tx in led.transactions():
            f.append(leaf_hash(tx.leaf_data()))
        assert f.root() == led.root


def test_second_writer_is_refused(tmp_path: Path, signer, policy) -> None:
    path = tmp_path / "two.db"
    with SqliteStorage(path) as a, SqliteStorage(path) as b:
        first = Ledger.open(a, signer, privacy_header=policy)
        second = Ledger.open(b, signer)
        first.append(TxType.STORE, "dev-hr-1", b"a", time=1)
        with pytest.raises(LedgerStorageError):
            second.append(TxType.STORE, "dev-hr-1", b"b", time=2)
        assert second.size == 0
        first.verify_chain()


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "x.db") as store:
        con = store._con  # the settings are the durability contract
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with SqliteStorage(tmp_path / "y.db", synchronous="NORMAL") as store:
        assert store._con.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_unopenable_file_is_a_storage_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerStorageError):
        SqliteStorage(bad)
    with pytest.raises(LedgerStorageError):
        SqliteStorage(tmp_path / "missing-dir" / "x.db")
