"""BIoMT transactions (Seliem & Elgazzar, Table 1) as stored in a bolster's local ledger.

==========  ==  =====================================  ==================================
Name        ID  Generator                              Function
==========  ==  =====================================  ==================================
Origin      0   admin user                             add a new device
Remove      1   admin user                             remove a device
Store       2   IoMT device                            store data from a device
Access      3   service provider / authorized user     access the stored data
Observe     4   service provider / authorized user     monitor a device or group
==========  ==  =====================================  ==================================

The paper encrypts transactions with ECC before they reach the ledger; the ledger therefore
stores the *body* as opaque bytes (the caller encrypts), next to the cleartext metadata the
bolster needs to index and police it: type, generator identity (a pseudonymous id), time and
the generator's own signature if it sent one. Every transaction gets a global sequence number,
its leaf index in the ledger's Merkle tree.

The Merkle leaf commits to the metadata and to ``SHA-256(body)`` rather than to the body
itself, so an inclusion proof can be checked by a party that is not allowed to see the body
(a cluster head) and the leaf stays the same size whatever the payload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from .encoding import MAX_BYTES, Reader, Writer, check_u64, tag
from .errors import LedgerDecodeError
from .merkle import leaf_hash

__all__ = ["MAX_GENERATOR_ID", "MAX_SIGNATURE", "Transaction", "TxType"]

MAX_GENERATOR_ID = 1024
MAX_SIGNATURE = 1024


class TxType(IntEnum):
    """The five BIoMT transaction types, numbered as in the paper's Table 1."""

    ORIGIN = 0
    REMOVE = 1
    STORE = 2
    ACCESS = 3
    OBSERVE = 4


_LEAF_TAG = tag("iomt/ledger/tx/v1")
_WIRE_TAG = tag("iomt/ledger/tx-with-body/v1")


@dataclass(frozen=True, slots=True)
class Transaction:
    """One ledger entry. ``time`` is in nanoseconds since the Unix epoch (as ROS ``Time``)."""

    seq: int
    tx_type: TxType
    generator_id: str
    time: int
    body: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        check_u64("seq", self.seq)
        check_u64("time", self.time)
        object.__setattr__(self, "tx_type", TxType(self.tx_type))
        if not isinstance(self.generator_id, str):
            raise ValueError("generator_id must be a str")
        gid = len(self.generator_id.encode("utf-8"))
        if not 0 < gid <= MAX_GENERATOR_ID:
            raise ValueError(f"generator_id must be 1..{MAX_GENERATOR_ID} UTF-8 bytes")
        if not isinstance(self.body, bytes) or len(self.body) > MAX_BYTES:
            raise ValueError(f"body must be bytes of at most {MAX_BYTES} bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) > MAX_SIGNATURE:
            raise ValueError(f"signature must be bytes of at most {MAX_SIGNATURE} bytes")

    @property
    def body_hash(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    def leaf_data(self) -> bytes:
        """The canonical bytes the Merkle leaf hashes (metadata + body hash)."""
        return (
            Writer(_LEAF_TAG)
            .u64(self.seq)
            .u8(self.tx_type)
            .u64(self.time)
            .text(self.generator_id)
            .fixed(self.body_hash, 32)
            .blob(self.signature)
            .getvalue()
        )

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf_data())

    def to_bytes(self) -> bytes:
        """Full encoding including the (encrypted) body, for shipping a transaction."""
        return (
            Writer(_WIRE_TAG)
            .u64(self.seq)
            .u8(self.tx_type)
            .u64(self.time)
            .text(self.generator_id)
            .blob(self.body)
            .blob(self.signature)
            .getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        r = Reader(data, "transaction")
        r.expect_tag(_WIRE_TAG)
        seq, raw_type, time, generator_id = r.u64(), r.u8(), r.u64(), r.text()
        body, signature = r.blob(), r.blob()
        r.end()
        try:
            return cls(seq, TxType(raw_type), generator_id, time, body, signature)
        except ValueError as exc:
            raise LedgerDecodeError(f"transaction: {exc}") from exc
