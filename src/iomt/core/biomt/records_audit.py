"""Audit of a bolster's local storage against its own ledger.

The ledger audit (:func:`iomt.ledger.audit`) proves the transactions are what the bolster
signed; the local storage (the "backup drive" of device data) is deletable by design and so
not under those signatures. But every record was committed together with the Store
transaction that names it, and that transaction's (encrypted) body carries the record's
SHA-256 and size (:class:`~iomt.core.biomt.bodies.StoreBody`). So whoever holds the
bolster's storage secret can check, for every Store in the audited ledger:

* the record ``(device pseudonym, seq)`` is there and hashes to the digest its Store names
  -- else :class:`~iomt.ledger.LocalRecordTamperedError` (a flipped bit, a swapped record);
* if it is not there, something the ledger itself records accounts for it: the device's
  granted **Remove** (which deletes its records), or -- with retention
  ``evict-after-sync`` -- the eviction of its *whole block* after the cloud acknowledged
  it (eviction is per block: a block with only some of its records gone was not evicted)
  -- else :class:`~iomt.ledger.LocalRecordMissingError`;
* no record exists that no Store committed, or that outlived its device's Remove -- else
  :class:`~iomt.ledger.LocalRecordExtraError`.

Run it after :func:`iomt.ledger.audit` (which establishes the transactions); it reads
transaction bodies, so it needs the secret, not only the public key. Pure: the storage
backend is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from iomt.crypto.errors import DecryptionError
from iomt.ledger import (
    LedgerStorage,
    LocalRecordExtraError,
    LocalRecordMissingError,
    LocalRecordTamperedError,
    TxType,
)

from .bodies import RemoveBody, StoreBody, decode_body
from .bolster import Retention
from .errors import BodyUnreadableError
from .keys import StorageKeys, body_aad
from .messages import Outcome

__all__ = ["LocalStorageReport", "audit_local_storage"]


@dataclass(frozen=True, slots=True)
class LocalStorageReport:
    stores: int  # Store transactions in the ledger
    present: int  # their records, present and matching
    removed: int  # gone with their device's Remove
    evicted: int  # gone with their whole block, after a cloud sync (evict-after-sync)
    evicted_blocks: int


def audit_local_storage(
    storage: LedgerStorage, storage_secret: bytes, *, retention: Retention | str = Retention.KEEP
) -> LocalStorageReport:
    """Check every local record against the Store that committed it; raise the first
    problem (:class:`~iomt.ledger.LocalRecordError`), else report."""
    keys = StorageKeys(storage_secret)
    retention = Retention(retention)
    expected, removed_at = _committed_stores(storage, keys)
    block_of = _block_of(storage)
    present, seen = _check_present(storage, expected, removed_at)
    removed = 0
    gone_by_block: dict[int | None, list[int]] = {}
    for device, seq in sorted(expected, key=lambda k: k[1]):
        if (device, seq) in seen:
            continue
        if device in removed_at:
            removed += 1
            continue
        gone_by_block.setdefault(block_of.get(seq), []).append(seq)
    evicted, evicted_blocks = (
        _account_for_missing(gone_by_block, expected, removed_at, block_of, retention)
        if gone_by_block
        else (0, 0)
    )
    return LocalStorageReport(len(expected), present, removed, evicted, evicted_blocks)


def _committed_stores(
    storage: LedgerStorage, keys: StorageKeys
) -> tuple[dict[tuple[str, int], StoreBody], dict[str, int]]:
    """The Store bodies by (device, seq), and each removed device's first granted Remove."""
    expected: dict[tuple[str, int], StoreBody] = {}
    removed_at: dict[str, int] = {}
    for tx in storage.iter_transactions(0, None):
        if tx.tx_type not in (TxType.STORE, TxType.REMOVE):
            continue
        try:
            plain = keys.open_body(tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time))
        except DecryptionError:
            raise BodyUnreadableError(
                f"transaction {tx.seq} does not decrypt: not this bolster's storage secret"
            ) from None
        decoded = decode_body(plain)
        if isinstance(decoded, StoreBody):
            expected[(tx.generator_id, tx.seq)] = decoded
        elif isinstance(decoded, RemoveBody) and decoded.outcome is Outcome.GRANTED:
            removed_at.setdefault(decoded.device, tx.seq)
    return expected, removed_at


def _block_of(storage: LedgerStorage) -> dict[int, int]:
    """The block index of each transaction seq."""
    block_of: dict[int, int] = {}
    for block in storage.iter_blocks():
        h = block.header
        for seq in range(h.first_seq, h.first_seq + h.tx_count):
            block_of[seq] = h.index
    return block_of


def _check_present(
    storage: LedgerStorage,
    expected: dict[tuple[str, int], StoreBody],
    removed_at: dict[str, int],
) -> tuple[int, set[tuple[str, int]]]:
    """Every stored record against its Store; how many there are and which."""
    present = 0
    seen: set[tuple[str, int]] = set()
    for device in storage.record_devices():
        for record in storage.iter_records(device):
            key = (record.device_id, record.seq)
            store = expected.get(key)
            if store is None:
                raise LocalRecordExtraError(
                    f"record ({record.device_id}, {record.seq}) was committed by no Store",
                    seq=record.seq,
                )
            if record.device_id in removed_at:
                raise LocalRecordExtraError(
                    f"record ({record.device_id}, {record.seq}) outlived its device's Remove "
                    f"(transaction {removed_at[record.device_id]})",
                    seq=record.seq,
                )
            digest = hashlib.sha256(record.data).digest()
            if len(record.data) != store.record_size or not hmac.compare_digest(
                digest, store.record_digest
            ):
                raise LocalRecordTamperedError(
                    f"record ({record.device_id}, {record.seq}) does not match the digest "
                    f"its Store transaction {record.seq} names",
                    seq=record.seq,
                    expected=store.record_digest,
                    computed=digest,
                )
            seen.add(key)
            present += 1
    return present, seen


def _account_for_missing(
    gone_by_block: dict[int | None, list[int]],
    expected: dict[tuple[str, int], StoreBody],
    removed_at: dict[str, int],
    block_of: dict[int, int],
    retention: Retention,
) -> tuple[int, int]:
    """Records no Remove accounts for: evicted whole synced blocks (records, blocks) under
    evict-after-sync, else the first gap raised."""
    evicted = evicted_blocks = 0
    stores_by_block: dict[int | None, int] = {}
    for device, seq in expected:
        if device not in removed_at:
            index = block_of.get(seq)
            stores_by_block[index] = stores_by_block.get(index, 0) + 1
    for where, seqs in sorted(gone_by_block.items(), key=lambda kv: min(kv[1])):
        whole = where is not None and len(seqs) == stores_by_block.get(where, 0)
        if retention is Retention.EVICT_AFTER_SYNC and whole:
            evicted += len(seqs)
            evicted_blocks += 1
            continue
        first = min(seqs)
        raise LocalRecordMissingError(
            f"{len(seqs)} record(s) of block {where} are missing, from Store {first} "
            f"(no Remove accounts for them"
            + (
                "; retention keeps records)"
                if retention is Retention.KEEP
                else "; an eviction takes a whole synced block)"
            ),
            seq=first,
            computed=len(seqs),
        )
    return evicted, evicted_blocks
