"""Tamper evidence for a node's own local records: an HMAC chain with an authenticated head.

A device keeps its readings in a local store (``iomt.nodes.device_storage``). Unlike the
bolster's ledger, nobody signs them; what an auditor holding the store's key must still be
able to tell is whether any record was changed, removed, inserted or reordered since its
writer committed it. Each record ``i`` (0, 1, 2, ...) carries

    mac_i = HMAC-SHA256(key, "iomt/local-records/v1" | store | i | mac_{i-1} | content_i)

(``mac_{-1}`` = 32 zero bytes), and the store keeps one head, rewritten in the same commit
as each record:

    head = (count, mac_{count-1}, HMAC-SHA256(key, "iomt/local-records/head/v1" | store |
            count | mac_{count-1}))

So a changed byte breaks that record's MAC; a deleted or reordered record breaks the next
record's MAC (its position and its predecessor are bound); deleting the newest records
leaves the head counting more than there are, and a head cannot be rewritten to a smaller
count without the key (the per-record MACs are readable, the head's MAC is under another
label). ``store`` binds the chain to one store, so records cannot be moved between stores.

What it cannot see, as for any local log: someone holding an *older copy* of the whole store
(records and head) putting it back -- a rollback to a state the writer really committed.
The bolster's ledger closes that with checkpoints witnessed by cluster heads; a device in
BIoMT mode also stores every reading at its bolster.

Pure: no storage here, the node feeds rows in and out.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from iomt.crypto.encoding import lp32

from .errors import LocalRecordExtraError, LocalRecordMissingError, LocalRecordTamperedError

__all__ = ["GENESIS_MAC", "ChainHead", "RecordChain", "verify_records"]

GENESIS_MAC = bytes(32)
_RECORD = b"iomt/local-records/v1"
_HEAD = b"iomt/local-records/head/v1"


def _framed(*parts: bytes) -> bytes:
    return b"".join(lp32(p) for p in parts)


@dataclass(frozen=True, slots=True)
class ChainHead:
    count: int
    last: bytes
    mac: bytes

    def to_bytes(self) -> bytes:
        return struct.pack(">Q", self.count) + self.last + self.mac

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChainHead:
        if len(raw) != 72:
            raise LocalRecordExtraError("the store's head is not 72 bytes")
        (count,) = struct.unpack(">Q", raw[:8])
        return cls(count, raw[8:40], raw[40:])


class RecordChain:
    """The MACs of one store's records, under a 32-byte key."""

    __slots__ = ("_key", "_store")

    def __init__(self, key: bytes, store: str) -> None:
        if len(key) != 32:
            raise ValueError("a record chain key is 32 bytes")
        self._key = key
        self._store = store.encode()

    def mac(self, index: int, previous: bytes, content: bytes) -> bytes:
        msg = _framed(_RECORD, self._store, struct.pack(">Q", index), previous, content)
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def head(self, count: int, last: bytes) -> ChainHead:
        msg = _framed(_HEAD, self._store, struct.pack(">Q", count), last)
        return ChainHead(count, last, hmac.new(self._key, msg, hashlib.sha256).digest())


def verify_records(
    chain: RecordChain, rows: Iterable[tuple[int, bytes, bytes]], head: ChainHead | None
) -> int:
    """Check ``(index, content, mac)`` rows, in index order, against ``head``; return the
    number of records. Raises the first problem found, naming the record (``seq`` = index):
    :class:`LocalRecordTamperedError` (content changed), :class:`LocalRecordMissingError`
    (a record deleted: a gap, or fewer records than the head counts),
    :class:`LocalRecordExtraError` (a record inserted or reordered, more records than the head
    counts, or a head that does not authenticate)."""
    previous = GENESIS_MAC
    expected = 0
    for index, content, mac in rows:
        if index != expected:
            if index > expected:
                raise LocalRecordMissingError(
                    f"record {expected} is missing (the next stored one is {index})",
                    seq=expected,
                    expected=expected,
                    computed=index,
                )
            raise LocalRecordExtraError(
                f"record {index} appears twice or out of order", seq=index, expected=expected
            )
        want = chain.mac(index, previous, content)
        if not hmac.compare_digest(want, mac):
            # Either this record changed, or one before it was swapped: both are tampering
            # at or before this position, and the first failing MAC is where to look.
            raise LocalRecordTamperedError(
                f"record {index} does not match its MAC (changed, or moved from elsewhere)",
                seq=index,
                expected=mac,
                computed=want,
            )
        previous = mac
        expected += 1
    if head is None:
        if expected:
            raise LocalRecordExtraError(
                f"the store holds {expected} records but no head", computed=expected
            )
        return 0
    good = chain.head(head.count, head.last)
    if not hmac.compare_digest(good.mac, head.mac):
        raise LocalRecordExtraError("the store's head does not authenticate", seq=head.count)
    if head.count > expected:
        raise LocalRecordMissingError(
            f"records {expected}..{head.count - 1} are missing (the head counts {head.count})",
            seq=expected,
            expected=head.count,
            computed=expected,
        )
    if head.count < expected:
        raise LocalRecordExtraError(
            f"records {head.count}..{expected - 1} were added after the head",
            seq=head.count,
            expected=head.count,
            computed=expected,
        )
    if not hmac.compare_digest(head.last, previous):
        raise LocalRecordTamperedError(
            "the newest record is not the one the head names", seq=expected - 1
        )
    return expected
