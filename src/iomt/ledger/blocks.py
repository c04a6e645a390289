"""Blocks of the local blockchain: a signed block header plus the privacy header.

BIoMT: "Each block consists of two headers: block header and privacy header. The block header
preserves the hash of the previous block to keep the block chain well established. The privacy
header enforces the facility-defined privacy policies and authorize IoMT devices."

A block groups the transactions appended since the previous block (``first_seq`` ..
``first_seq + tx_count - 1``). Its header commits to

* ``prev_hash`` -- the hash of the previous block header (zeros for the genesis block);
* ``tx_root`` -- the RFC 9162 Merkle root of this block's transactions;
* ``tree_size`` / ``tree_root`` -- the head of the ledger-wide Merkle tree after this block,
  tying the chain of blocks to the append-only log that inclusion and consistency proofs
  are about;
* ``time`` and ``privacy_header_hash`` (SHA-256 of the canonical privacy header);
* ``log_id`` -- which bolster's ledger this is (the SHA-256 of its public key).

The bolster signs the header's canonical encoding; the block hash (what the next block links
to) is the SHA-256 of the same bytes. Block 0 is the genesis block: no transactions, the
facility's initial policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .encoding import Reader, Writer, check_u64, tag
from .errors import LedgerDecodeError
from .merkle import HASH_SIZE
from .policy import PrivacyHeader

__all__ = ["GENESIS_PREV_HASH", "Block", "BlockHeader"]

#: ``prev_hash`` of block 0.
GENESIS_PREV_HASH = bytes(HASH_SIZE)

_HEADER_TAG = tag("iomt/ledger/block-header/v1")
_BLOCK_TAG = tag("iomt/ledger/block/v1")


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The signed part of a block."""

    log_id: bytes
    index: int
    prev_hash: bytes
    first_seq: int
    tx_count: int
    tx_root: bytes
    tree_size: int
    tree_root: bytes
    time: int
    privacy_header_hash: bytes

    def __post_init__(self) -> None:
        for name in ("index", "first_seq", "tx_count", "tree_size", "time"):
            check_u64(name, getattr(self, name))
        for name in ("log_id", "prev_hash", "tx_root", "tree_root", "privacy_header_hash"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise ValueError(f"{name} must be {HASH_SIZE} bytes")

    def signed_bytes(self) -> bytes:
        """The canonical encoding the bolster signs and the next block's ``prev_hash`` hashes."""
        return self._write(Writer(_HEADER_TAG)).getvalue()

    def hash(self) -> bytes:
        return hashlib.sha256(self.signed_bytes()).digest()

    def _write(self, w: Writer) -> Writer:
        return (
            w.fixed(self.log_id, HASH_SIZE)
            .u64(self.index)
            .fixed(self.prev_hash, HASH_SIZE)
            .u64(self.first_seq)
            .u64(self.tx_count)
            .fixed(self.tx_root, HASH_SIZE)
            .u64(self.tree_size)
            .fixed(self.tree_root, HASH_SIZE)
            .u64(self.time)
            .fixed(self.privacy_header_hash, HASH_SIZE)
        )

    @classmethod
    def _read(cls, r: Reader) -> BlockHeader:
        return cls(
            log_id=r.fixed(HASH_SIZE),
            index=r.u64(),
            prev_hash=r.fixed(HASH_SIZE),
            first_seq=r.u64(),
            tx_count=r.u64(),
            tx_root=r.fixed(HASH_SIZE),
            tree_size=r.u64(),
            tree_root=r.fixed(HASH_SIZE),
            time=r.u64(),
            privacy_header_hash=r.fixed(HASH_SIZE),
        )


@dataclass(frozen=True, slots=True)
class Block:
    """A sealed block: header, the bolster's signature over it, and the privacy header."""

    header: BlockHeader
    signature: bytes
    privacy_header: PrivacyHeader

    @property
    def index(self) -> int:
        return self.header.index

    def hash(self) -> bytes:
        return self.header.hash()

    def to_bytes(self) -> bytes:
        w = self.header._write(Writer(_BLOCK_TAG))
        return w.blob(self.signature).blob(self.privacy_header.to_bytes()).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        """Decode (not verify: see :func:`iomt.ledger.audit.verify_block`)."""
        r = Reader(data, "block")
        r.expect_tag(_BLOCK_TAG)
        try:
            header = BlockHeader._read(r)
        except ValueError as exc:
            raise LedgerDecodeError(f"block: {exc}") from exc
        signature, policy = r.blob(), PrivacyHeader.from_bytes(r.blob())
        r.end()
        return cls(header, signature, policy)
