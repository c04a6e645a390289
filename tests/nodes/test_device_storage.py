"""A device's readings at rest: sealed when the device can encrypt, MAC-chained always,
numbered on across restarts; the audit finds every kind of change to the file."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from iomt.ledger import (
    ChainHead,
    LocalRecordError,
    LocalRecordExtraError,
    LocalRecordMissingError,
    LocalRecordTamperedError,
    RecordChain,
    verify_records,
)
from iomt.nodes.device_storage import SEQ_RESERVE, DeviceStorage, audit_device_storage

STORE = "iomt://ward1/hr_3"
SECRET = bytes(range(64))


def _filled(path: Path, n: int = 10, *, seal: bool = False) -> DeviceStorage:
    db = DeviceStorage(path, store=STORE, secret=SECRET, seal=seal)
    for _ in range(n):
        seq = db.claim_seq()
        db.append(seq, 1_700_000_000_000_000_000 + seq, b"reading %d" % seq)
    return db


def _audit(path: Path) -> int:
    return audit_device_storage(path, store=STORE, secret=SECRET).records


def _sql(path: Path, *statements: str) -> None:
    con = sqlite3.connect(path)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def test_untouched_storage_audits_sealed_or_not(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        _filled(tmp_path / "plain.db").close()
        _filled(tmp_path / "sealed.db", seal=True).close()
    finally:
        os.umask(old)
    plain = audit_device_storage(tmp_path / "plain.db", store=STORE, secret=SECRET)
    sealed = audit_device_storage(tmp_path / "sealed.db", store=STORE, secret=SECRET)
    assert (plain.records, plain.plaintext, sealed.sealed) == (10, 10, 10)
    assert b"reading 3" in (tmp_path / "plain.db").read_bytes()
    assert b"reading 3" not in (tmp_path / "sealed.db").read_bytes()
    assert stat.S_IMODE((tmp_path / "plain.db").stat().st_mode) == 0o600


def test_reading_numbers_continue_after_a_restart(tmp_path: Path) -> None:
    db = _filled(tmp_path / "d.db", 3)
    db.close()  # what a crash leaves: the reservation is on disk, the counter was not
    again = DeviceStorage(tmp_path / "d.db", store=STORE, secret=SECRET, seal=False)
    seq = again.claim_seq()
    assert seq > 3 and seq == SEQ_RESERVE + 1
    again.append(seq, 0, b"after the restart")
    again.close()
    assert _audit(tmp_path / "d.db") == 4  # one chain across both runs


@pytest.mark.parametrize(
    ("statements", "error", "index"),
    [
        # a flipped bit in the oldest record and in the middle of the chain
        (["UPDATE readings SET data = X'00' || data WHERE n = 0"], LocalRecordTamperedError, 0),
        (["UPDATE readings SET stamp_ns = stamp_ns + 1 WHERE n = 5"], LocalRecordTamperedError, 5),
        # deletions: in the middle, and the newest records (a cut-off tail)
        (["DELETE FROM readings WHERE n BETWEEN 3 AND 4"], LocalRecordMissingError, 3),
        (["DELETE FROM readings WHERE n >= 7"], LocalRecordMissingError, 7),
        (["DELETE FROM readings"], LocalRecordMissingError, 0),
        # two records swapped (positions renumbered to hide it)
        (
            [
                "UPDATE readings SET n = -1 WHERE n = 2",
                "UPDATE readings SET n = 2 WHERE n = 3",
                "UPDATE readings SET n = 3 WHERE n = -1",
            ],
            LocalRecordTamperedError,
            2,
        ),
        # a record inserted at the end, with a MAC copied from elsewhere
        (
            [
                "INSERT INTO readings SELECT 10, 99, stamp_ns, sealed, data, mac FROM readings"
                " WHERE n = 9"
            ],
            LocalRecordTamperedError,
            10,
        ),
        # the head removed, or rewound to an earlier record's MAC (readable in the file)
        (["DELETE FROM meta WHERE key = 'head'"], LocalRecordExtraError, None),
    ],
)
def test_every_change_is_found(
    tmp_path: Path, statements: list[str], error: type[LocalRecordError], index: int | None
) -> None:
    path = tmp_path / "d.db"
    _filled(path).close()
    _sql(path, *statements)
    with pytest.raises(error) as err:
        _audit(path)
    if index is not None:
        assert err.value.seq == index


def test_a_head_rewound_to_hide_a_cut_tail_does_not_authenticate(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _filled(path).close()
    con = sqlite3.connect(path)
    mac = con.execute("SELECT mac FROM readings WHERE n = 6").fetchone()[0]
    forged = ChainHead(7, bytes(mac), bytes(32)).to_bytes()
    con.execute("DELETE FROM readings WHERE n >= 7")
    con.execute("UPDATE meta SET value = ? WHERE key = 'head'", (forged,))
    con.commit()
    con.close()
    with pytest.raises(LocalRecordExtraError, match="does not authenticate"):
        _audit(path)


def test_another_key_or_store_does_not_verify(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _filled(path).close()
    with pytest.raises(LocalRecordTamperedError):
        audit_device_storage(path, store=STORE, secret=bytes(64))
    with pytest.raises(LocalRecordTamperedError):
        audit_device_storage(path, store="iomt://ward1/bp_3", secret=SECRET)


def test_the_chain_on_its_own() -> None:
    chain = RecordChain(bytes(32), "s")
    rows, prev = [], bytes(32)
    for i in range(3):
        mac = chain.mac(i, prev, b"%d" % i)
        rows.append((i, b"%d" % i, mac))
        prev = mac
    assert verify_records(chain, rows, chain.head(3, prev)) == 3
    assert verify_records(chain, [], None) == 0
    with pytest.raises(LocalRecordExtraError):  # more records than the head counts
        verify_records(chain, rows, chain.head(2, rows[1][2]))
    with pytest.raises(LocalRecordExtraError):  # a record appears twice
        verify_records(chain, [rows[0], rows[0]], chain.head(2, rows[1][2]))
    with pytest.raises(ValueError):
        RecordChain(b"short", "s")
