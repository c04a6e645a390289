"""Attacks on a stored ledger, and the evidence the audit gives for each (shared by
test_audit_evidence.py and make_audit_vectors.py).

Everything is deterministic (fixed key, fake clock, fixed bodies), so each attack's error
-- its type, message, transaction or block, and the values that disagreed -- is a known
answer: ``tests/vectors/ledger/audit_evidence.json``."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    ForkDetectedError,
    Ledger,
    LedgerKey,
    LedgerVerificationError,
    PrivacyHeader,
    SqliteStorage,
    Transaction,
    TxType,
    audit,
)
from iomt.ledger.checkpoints import SignedTreeHead

from .conftest import START, FakeClock
from .test_sqlite_tamper import _build, _copy_row, _flip_byte, _row, _tamper

SIGNER = LedgerKey(Ed25519Signer.from_private_bytes(bytes([7]) * 32))
OTHER = LedgerKey(Ed25519Signer.from_private_bytes(bytes([9]) * 32))


def policy() -> PrivacyHeader:
    """The ledger tests' policy (tests/ledger/conftest.py)."""
    return PrivacyHeader(
        facility_id="facility-test",
        version=1,
        authorized_devices=frozenset({"dev-hr-1", "dev-bp-2"}),
        rules=(
            AccessRule("physician", TxType.ACCESS, all_devices=True),
            AccessRule(
                "physician", TxType.OBSERVE, frozenset({"dev-hr-1"}), observe_interval=10**9
            ),
            AccessRule("insurer", TxType.ACCESS, frozenset({"dev-bp-2"})),
        ),
    )


def checkpoint_at(path: Path, n: int, tmp: Path) -> SignedTreeHead:
    """A witnessed checkpoint of the same history after ``n`` transactions; with a negative
    ``n``, of another history of ``-n`` transactions that diverges at the last one."""
    other = tmp / f"witness-{n}.db"
    if n < 0:
        _other_history(other, -n, differ_from=-n - 1)
        with SqliteStorage(other) as store:
            return Ledger.open(store, SIGNER, clock=FakeClock(START - n)).checkpoint()
    _build(other, SIGNER, policy(), n=n)
    with SqliteStorage(other) as store:
        return Ledger.open(store, SIGNER, clock=FakeClock(START + n)).checkpoint()


def _sql(*statements: tuple[str, tuple]) -> Callable[[Path, Path], None]:
    def attack(db: Path, _tmp: Path) -> None:
        _tamper(db, *statements)

    return attack


def _flip(table: str, column: str, where: str, at: int = 0) -> Callable[[Path, Path], None]:
    def attack(db: Path, _tmp: Path) -> None:
        (value,) = _row(db, f"SELECT {column} FROM {table} WHERE {where}")
        _tamper(db, (f"UPDATE {table} SET {column} = ? WHERE {where}", (_flip_byte(value, at),)))

    return attack


def _insert_copy(db: Path, _tmp: Path) -> None:
    _tamper(db, _copy_row(db, 3, 10))


def _older_state(n: int) -> Callable[[Path, Path], None]:
    """Replace the store by a validly signed earlier state of the same history."""

    def attack(db: Path, _tmp: Path) -> None:
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
        _build(db, SIGNER, policy(), n=n)

    return attack


def _other_history(path: Path, n: int, differ_from: int) -> None:
    """A ledger under the same key whose transactions from ``differ_from`` on differ."""
    with SqliteStorage(path) as store:
        led = Ledger.open(
            store, SIGNER, privacy_header=policy(), clock=FakeClock(), max_block_transactions=4
        )
        for i in range(n):
            kinds = [TxType.ORIGIN, TxType.STORE, TxType.ACCESS, TxType.OBSERVE, TxType.REMOVE]
            body = hashlib.sha256(b"body %d" % i).digest() * 2  # as test_sqlite_tamper._build
            if i >= differ_from:
                body = b"another body %d" % i
            led.append(
                kinds[i % 5], f"dev-{i % 3}", body, time=1000 + i, signature=b"gen-sig-%d" % i
            )


def _consistent_rewrite(seq: int) -> Callable[[Path, Path], None]:
    """Rewrite a transaction's body and its leaf node together (no key needed)."""

    def attack(db: Path, _tmp: Path) -> None:
        row = _row(
            db,
            "SELECT seq, tx_type, generator_id, time_ns, signature FROM transactions WHERE seq = ?",
            (seq,),
        )
        forged = Transaction(seq, TxType(row[1]), row[2], row[3], b"rewritten", row[4])
        _tamper(
            db,
            ("UPDATE transactions SET body = ? WHERE seq = ?", (forged.body, seq)),
            ("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = ?", (forged.leaf_hash(), seq)),
        )

    return attack


def _widened_policy(db: Path, _tmp: Path) -> None:
    (raw,) = _row(db, "SELECT privacy_header FROM blocks WHERE idx = 1")
    widened = PrivacyHeader.from_bytes(raw).with_device("dev-attacker")
    _tamper(db, ("UPDATE blocks SET privacy_header = ? WHERE idx = 1", (widened.to_bytes(),)))


def _head_of_another_history(db: Path, tmp: Path) -> None:
    other = tmp / "other-history.db"
    _other_history(other, 10, differ_from=5)
    (head,) = _row(other, "SELECT value FROM meta WHERE key = 'head'")
    _tamper(db, ("UPDATE meta SET value = ? WHERE key = 'head'", (head,)))


def _empty(db: Path, _tmp: Path) -> None:
    con = sqlite3.connect(db)
    with con:
        for table in ("transactions", "nodes", "blocks", "meta", "records"):
            con.execute(f"DELETE FROM {table}")
    con.close()


#: name -> (attack on the file, trusted checkpoint sizes, key the auditor holds)
SCENARIOS: dict[str, tuple[Callable[[Path, Path], None], tuple[int, ...], LedgerKey]] = {
    "body byte, sealed": (_flip("transactions", "body", "seq = 2", 5), (), SIGNER),
    "body byte, pending": (_flip("transactions", "body", "seq = 9", 5), (), SIGNER),
    "dropped row": (_sql(("DELETE FROM transactions WHERE seq = 5", ())), (), SIGNER),
    "dropped last rows": (_sql(("DELETE FROM transactions WHERE seq >= 8", ())), (), SIGNER),
    "row added at the end": (_insert_copy, (), SIGNER),
    "prev hash": (_flip("blocks", "prev_hash", "idx = 2"), (), SIGNER),
    "log id": (_flip("blocks", "log_id", "idx = 1", 3), (), SIGNER),
    "block signature": (_flip("blocks", "signature", "idx = 1", 3), (), SIGNER),
    "dropped block": (_sql(("DELETE FROM blocks WHERE idx = 1", ())), (), SIGNER),
    "dropped latest block": (_sql(("DELETE FROM blocks WHERE idx = 2", ())), (), SIGNER),
    "no blocks": (_sql(("DELETE FROM blocks", ())), (), SIGNER),
    "no head": (_sql(("DELETE FROM meta WHERE key = 'head'", ())), (), SIGNER),
    "empty store": (_empty, (), SIGNER),
    "another key": (lambda db, tmp: None, (), OTHER),
    "dropped node": (_sql(("DELETE FROM nodes WHERE level = 1 AND idx = 1", ())), (), SIGNER),
    "zeroed node": (
        _sql(("UPDATE nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0", ())),
        (),
        SIGNER,
    ),
    "extra node": (_sql(("INSERT INTO nodes VALUES (5, 0, zeroblob(32))", ())), (), SIGNER),
    "rolled back below a checkpoint": (_older_state(9), (10,), SIGNER),
    "rolled back below a checkpoint's block": (_older_state(6), (3, 9), SIGNER),
    "checkpoint beyond the chain": (lambda db, tmp: None, (14,), SIGNER),
    "privacy header widened": (_widened_policy, (), SIGNER),
    "consistent rewrite, sealed": (_consistent_rewrite(2), (), SIGNER),
    "consistent rewrite, pending": (_consistent_rewrite(9), (), SIGNER),
    "head of another history": (_head_of_another_history, (), SIGNER),
    "checkpoint of another history, in a block": (lambda db, tmp: None, (-8,), SIGNER),
    "checkpoint of another history, pending": (lambda db, tmp: None, (-9,), SIGNER),
}


def evidence(error: LedgerVerificationError) -> dict[str, Any]:
    """What an operator reads off an audit failure, as JSON."""
    out: dict[str, Any] = {
        "type": type(error).__name__,
        "message": str(error),
        "expected": _json(error.expected),
        "computed": _json(error.computed),
    }
    out["seq"] = getattr(error, "seq", None)
    out["block_index"] = getattr(error, "block_index", None)
    if isinstance(error, ForkDetectedError):
        out["first"] = _json(error.first)
        out["second"] = _json(error.second)
    return out


def _json(value: object) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if hasattr(value, "to_bytes") and not isinstance(value, int):
        return value.to_bytes().hex()  # type: ignore[attr-defined]
    return value


def run(name: str, tmp: Path) -> dict[str, Any]:
    """Build the ledger, attack it, audit it; the audit's evidence."""
    attack, trusted_sizes, key = SCENARIOS[name]
    db = tmp / "bolster.db"
    _build(db, SIGNER, policy())
    trusted = [checkpoint_at(db, n, tmp) for n in trusted_sizes]
    attack(db, tmp)
    with SqliteStorage(db) as store:
        try:
            audit(store, key.public_key_bytes, trusted_checkpoints=trusted)
        except LedgerVerificationError as exc:
            return evidence(exc)
    raise AssertionError(f"{name}: the audit found nothing")
