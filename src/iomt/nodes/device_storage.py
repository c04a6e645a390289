"""A device's own readings at rest: ``<storage_dir>/<name>.db`` (SQLite, WAL).

What is in the file, and what protects it:

* **Confidentiality.** A device that can encrypt seals every reading (AES-256-GCM, bound to
  the device and the reading's number) before it is written. A device that cannot encrypt
  (the paper's capability class "none") stores its readings as they are -- it has no
  cipher -- so the file itself is what protects them: created owner-only (0600, in a 0700
  run directory; the launcher and the containers run with umask 077).
* **Integrity.** Every record is MAC'd into a chain with an authenticated head
  (:class:`iomt.ledger.RecordChain`), in the same commit as the record: a changed byte, a
  deleted, inserted or reordered record, and the newest records cut off are all found by
  :func:`audit_device_storage` (``iomt audit RUN_DIR``). Every device can do this much:
  the capability classes are about confidentiality; an HMAC is what a device that cannot
  encrypt still computes (it signs its conversion orders, too).
* **Restarts.** Reading numbers never repeat: the next number is reserved on disk in blocks
  of :data:`SEQ_RESERVE` before it is used, so a device restarted after a crash continues
  above anything it ever sent (a central server or a requester deduplicating by number
  never mistakes a new reading for an old one), and appends to the same chain.

Keys: 64 bytes derived (HKDF-SHA256) from the device's identity key in the run's keystore
(:func:`storage_secret`) -- kept apart from the data, the same after a restart, and
available to an auditor who holds the keystore. Nothing else in the ward can compute them.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iomt.crypto.keystore import Identity
from iomt.crypto.primitives import AesGcm, hkdf_sha256
from iomt.errors import StorageError
from iomt.ledger import ChainHead, RecordChain, verify_records

__all__ = ["SEQ_RESERVE", "DeviceStorage", "StorageAudit", "audit_device_storage", "storage_secret"]

#: reading numbers reserved on disk at a time (one extra commit per this many readings)
SEQ_RESERVE = 256
_SALT = b"iomt/device-storage/v1"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readings (n INTEGER PRIMARY KEY, seq INTEGER NOT NULL, "
    "stamp_ns INTEGER NOT NULL, sealed INTEGER NOT NULL, data BLOB NOT NULL, mac BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
)


def storage_secret(identity: Identity) -> bytes:
    """The device's 64-byte storage secret: sealing key, then MAC key."""
    return hkdf_sha256(
        identity.signer.private_pem(), salt=_SALT, info=identity.uri.encode(), length=64
    )


def _content(seq: int, stamp_ns: int, sealed: int, data: bytes) -> bytes:
    return struct.pack(">qqB", seq, stamp_ns, sealed) + data


def _aad(store: str, seq: int) -> bytes:
    return store.encode() + b"|" + str(seq).encode()


class DeviceStorage:
    """The readings of one device; a single writer (the device node)."""

    def __init__(
        self,
        path: str | Path | None,
        *,
        store: str,
        secret: bytes,
        seal: bool,
        synchronous: str = "NORMAL",
    ) -> None:
        if len(secret) != 64:
            raise ValueError("a device storage secret is 64 bytes")
        self.store = store
        self.path = None if path is None else Path(path)
        self._seal = AesGcm(secret[:32]) if seal else None
        self._chain = RecordChain(secret[32:], store)
        try:
            self._db = sqlite3.connect(
                ":memory:" if path is None else str(path), check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.commit()
            head = self._meta("head")
            reserved = self._meta("seq_reserved")
            top = self._db.execute("SELECT MAX(seq) FROM readings").fetchone()[0] or 0
        except sqlite3.Error as exc:
            raise StorageError(f"device storage {path}: {exc}") from exc
        self._head = (
            ChainHead.from_bytes(head) if head is not None else self._chain.head(0, bytes(32))
        )
        self._reserved = max(int.from_bytes(reserved, "big") if reserved else 0, top)
        # Continue above every number that may have been used (or reserved) before.
        self.last_seq = self._reserved

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    @property
    def count(self) -> int:
        return self._head.count

    def claim_seq(self) -> int:
        """The next reading number (reserving a block on disk first when needed)."""
        seq = self.last_seq + 1
        if seq > self._reserved:
            self._reserved = seq + SEQ_RESERVE - 1
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('seq_reserved', ?)",
                    (self._reserved.to_bytes(8, "big"),),
                )
                self._db.commit()
            except sqlite3.Error as exc:
                raise StorageError(f"device storage {self.path}: {exc}") from exc
        self.last_seq = seq
        return seq

    def append(self, seq: int, stamp_ns: int, cdr: bytes) -> None:
        """Store a reading (sealed if the device can), chained, in one commit."""
        if self._seal is not None:
            nonce = os.urandom(12)
            data, sealed = nonce + self._seal.encrypt(nonce, cdr, _aad(self.store, seq)), 1
        else:
            data, sealed = cdr, 0
        index = self._head.count
        mac = self._chain.mac(index, self._head.last, _content(seq, stamp_ns, sealed, data))
        head = self._chain.head(index + 1, mac)
        try:
            self._db.execute(
                "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)",
                (index, seq, stamp_ns, sealed, data, mac),
            )
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (head.to_bytes(),))
            self._db.commit()
        except sqlite3.Error as exc:
            self._db.rollback()
            raise StorageError(f"device storage {self.path}: {exc}") from exc
        self._head = head

    def open(self, seq: int, data: bytes) -> bytes:
        """A stored reading's CDR (for a sealed one, decrypted)."""
        if self._seal is None:
            return data
        return self._seal.decrypt(data[:12], data[12:], _aad(self.store, seq))

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True, slots=True)
class StorageAudit:
    store: str
    records: int
    sealed: int
    plaintext: int
    first_seq: int | None
    last_seq: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "records": self.records,
            "sealed": self.sealed,
            "plaintext": self.plaintext,
            "seq": [self.first_seq, self.last_seq],
        }


def _blob(value: object) -> bytes:
    # anything but a BLOB was not written by the device: its bytes will not match the MAC
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return repr(value).encode()


def _int(value: object) -> int:
    return value if isinstance(value, int) and 0 <= value < 2**63 else -1


def audit_device_storage(path: str | Path, *, store: str, secret: bytes) -> StorageAudit:
    """Check a device's storage file from scratch; raise the first problem
    (:class:`iomt.ledger.LocalRecordError`: changed, deleted, inserted records, a cut-off
    tail, a head that does not authenticate, reading numbers that repeat)."""
    from iomt.ledger import LocalRecordExtraError  # noqa: PLC0415

    chain = RecordChain(secret[32:], store)
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {exc}") from exc
    try:
        raw = db.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        head = None if raw is None else ChainHead.from_bytes(bytes(raw[0]))
        rows = db.execute(
            "SELECT n, seq, stamp_ns, sealed, data, mac FROM readings ORDER BY n"
        ).fetchall()
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {exc}") from exc
    finally:
        db.close()
    verify_records(
        chain,
        (
            (_int(n), _content(_int(seq), _int(stamp), _int(sealed) & 1, _blob(data)), _blob(mac))
            for n, seq, stamp, sealed, data, mac in rows
        ),
        head,
    )
    seqs = [_int(r[1]) for r in rows]
    for i in range(1, len(seqs)):
        if seqs[i] <= seqs[i - 1]:
            raise LocalRecordExtraError(
                f"reading number {seqs[i]} at record {i} does not follow {seqs[i - 1]}", seq=i
            )
    sealed = sum(1 for r in rows if int(r[3]))
    return StorageAudit(
        store,
        len(rows),
        sealed,
        len(rows) - sealed,
        seqs[0] if seqs else None,
        seqs[-1] if seqs else None,
    )
