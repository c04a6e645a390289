"""Audit a stored ledger against its bolster's public key, from scratch.

The audit trusts nothing in the store but the signatures: it recomputes every leaf hash from
the transaction rows, rebuilds the Merkle tree, and checks each block (contiguous index,
previous-hash link, signature, privacy header, the transactions it covers and their Merkle
root, the tree head it names) and finally the latest signed tree head, which covers even the
transactions not yet sealed into a block. It raises the first problem as a specific
:class:`~iomt.ledger.errors.LedgerIntegrityError` (or signature error) naming the failing
transaction or block; it returns an :class:`AuditReport` only for a ledger that is exactly
what the bolster signed.

What a local audit cannot see: a bolster (or an attacker holding its key and its disk) that
rolls the whole store back to an earlier *signed* state. Checkpoints held elsewhere close that
gap -- pass the ones cluster heads witnessed as ``trusted_checkpoints`` and the audit checks
the stored ledger still extends each of them (else :class:`ForkDetectedError`).

Cost is linear in the ledger size (one SHA-256 per leaf and node, one signature check per
block) with memory bounded by the block size; see ``bench/bench_ledger.py``.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from iomt.errors import AuthenticationError

from .blocks import GENESIS_PREV_HASH, Block
from .checkpoints import SignedTreeHead, verify_checkpoint
from .errors import (
    BlockCoverageError,
    BlockMerkleRootError,
    BlockSequenceError,
    BlockSignatureError,
    ChainLinkError,
    ForkDetectedError,
    KeyMismatchError,
    MerkleNodeError,
    PrivacyHeaderError,
    TransactionSequenceError,
    TransactionTamperedError,
    TreeHeadMismatchError,
    UncoveredTransactionError,
)
from .merkle import Frontier, NodeKey
from .signing import LedgerVerifier, ed25519_ledger_verifier, key_id
from .storage import FORMAT, LedgerStorage
from .transactions import Transaction, TxType

__all__ = ["AuditReport", "audit", "verify_block"]

#: Transactions checked per batch of node lookups.
_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What a successful audit established."""

    log_id: bytes
    tree_size: int
    root_hash: bytes
    block_height: int
    block_hash: bytes
    pending: int
    checkpoint: SignedTreeHead
    privacy_header_version: int
    counts: tuple[tuple[TxType, int], ...]

    def count(self, tx_type: TxType) -> int:
        return dict(self.counts).get(tx_type, 0)


def verify_block(block: Block, verifier: LedgerVerifier, previous: Block | None) -> None:
    """Check one block on its own and its link to ``previous`` (``None`` for genesis).

    Does not check the transactions it covers (that needs the log: see :func:`audit`).
    """
    h = block.header
    want_log = key_id(verifier.public_key_bytes)
    if not hmac.compare_digest(h.log_id, want_log):
        raise KeyMismatchError(
            f"block {h.index} belongs to another ledger",
            block_index=h.index,
            expected=want_log,
            computed=h.log_id,
        )
    expected_index = 0 if previous is None else previous.index + 1
    if h.index != expected_index:
        raise BlockSequenceError(
            f"block {expected_index} is missing (found block {h.index})",
            block_index=expected_index,
            expected=expected_index,
            computed=h.index,
        )
    prev_hash = GENESIS_PREV_HASH if previous is None else previous.hash()
    if not hmac.compare_digest(h.prev_hash, prev_hash):
        raise ChainLinkError(
            f"block {h.index}'s previous-block hash does not match block {h.index - 1}",
            block_index=h.index,
            expected=prev_hash,
            computed=h.prev_hash,
        )
    try:
        verifier.verify(h.signed_bytes(), block.signature)
    except AuthenticationError as exc:
        raise BlockSignatureError(
            f"block {h.index}'s header is not signed by the bolster", block_index=h.index
        ) from exc
    digest = block.privacy_header.digest()
    if not hmac.compare_digest(digest, h.privacy_header_hash):
        raise PrivacyHeaderError(
            f"block {h.index}'s privacy header was modified after signing",
            block_index=h.index,
            expected=h.privacy_header_hash,
            computed=digest,
        )
    first_seq = 0 if previous is None else previous.header.tree_size
    if h.first_seq != first_seq or h.tree_size != h.first_seq + h.tx_count:
        raise BlockCoverageError(
            f"block {h.index} does not continue the log where block {h.index - 1} ended",
            block_index=h.index,
            expected=(first_seq, first_seq + h.tx_count),
            computed=(h.first_seq, h.tree_size),
        )


def _as_verifier(public_key: bytes | LedgerVerifier) -> LedgerVerifier:
    if isinstance(public_key, bytes | bytearray):
        return ed25519_ledger_verifier(bytes(public_key))
    return public_key


def audit(
    storage: LedgerStorage,
    public_key: bytes | LedgerVerifier,
    *,
    trusted_checkpoints: Iterable[SignedTreeHead] = (),
) -> AuditReport:
    """Verify a whole stored ledger; raise on the first problem, else report.

    ``public_key`` is the bolster's raw Ed25519 public key or any
    :class:`~iomt.ledger.signing.LedgerVerifier`.
    """
    verifier = _as_verifier(public_key)
    meta = storage.read_meta()
    if meta is None:
        raise BlockSequenceError("store holds no ledger (no genesis block)", block_index=0)
    if meta.format != FORMAT or meta.public_key != verifier.public_key_bytes:
        raise KeyMismatchError(
            "ledger was written under another key (or format)",
            expected=(FORMAT, verifier.public_key_bytes),
            computed=(meta.format, meta.public_key),
        )
    head = storage.latest_head()
    if head is None:
        raise TreeHeadMismatchError("store holds no signed tree head")
    verify_checkpoint(head, verifier)
    trusted = sorted(trusted_checkpoints, key=lambda c: c.tree_size)
    for checkpoint in trusted:
        verify_checkpoint(checkpoint, verifier)

    # Blocks first: they are signed, and tell which leaf ranges to check against what.
    blocks: list[Block] = []
    previous: Block | None = None
    for block in storage.iter_blocks():
        verify_block(block, verifier, previous)
        blocks.append(block)
        previous = block
    if previous is None:
        raise BlockSequenceError("store holds no genesis block", block_index=0)
    if len(blocks) != head.block_height or not hmac.compare_digest(
        previous.hash(), head.block_hash
    ):
        raise BlockSequenceError(
            f"stored chain has {len(blocks)} blocks, the signed head names {head.block_height}",
            block_index=min(len(blocks), head.block_height),
            expected=(head.block_height, head.block_hash),
            computed=(len(blocks), previous.hash()),
        )

    for checkpoint in trusted:
        height = checkpoint.block_height
        if height > len(blocks) or (
            height and not hmac.compare_digest(blocks[height - 1].hash(), checkpoint.block_hash)
        ):
            raise ForkDetectedError(
                f"the stored chain does not contain the block a witnessed checkpoint names "
                f"at height {height}",
                first=checkpoint,
                second=head,
                expected=checkpoint.block_hash,
                computed=blocks[height - 1].hash() if height <= len(blocks) else None,
            )

    # Then the log, streaming, with the tree rebuilt next to it.
    walk = _LogWalk(storage, blocks, head, trusted)
    walk.run()
    policy = blocks[-1].privacy_header
    return AuditReport(
        log_id=head.log_id,
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        block_height=head.block_height,
        block_hash=head.block_hash,
        pending=head.tree_size - blocks[-1].header.tree_size,
        checkpoint=head,
        privacy_header_version=policy.version,
        counts=tuple(sorted(walk.counts.items())),
    )


class _LogWalk:
    """Recompute leaves, nodes and roots over the stored log in one pass."""

    def __init__(
        self,
        storage: LedgerStorage,
        blocks: Sequence[Block],
        head: SignedTreeHead,
        trusted: Sequence[SignedTreeHead],
    ) -> None:
        self.storage = storage
        self.blocks = blocks
        self.head = head
        self.trusted = list(trusted)
        self.tree = Frontier()
        self.block_tree = Frontier()
        self.block_pos = 0
        self.counts: Counter[TxType] = Counter()
        self.bad_node: MerkleNodeError | None = None
        self.expected_nodes = 0

    def run(self) -> None:
        self._at_size()  # the genesis block (and any checkpoint) at size 0
        chunk: list[Transaction] = []
        for tx in self.storage.iter_transactions():
            chunk.append(tx)
            if len(chunk) == _CHUNK:
                self._check_chunk(chunk)
                chunk = []
        if chunk:
            self._check_chunk(chunk)
        size, head = self.tree.size, self.head
        if size < head.tree_size:
            raise TransactionSequenceError(
                f"transactions {size}..{head.tree_size - 1} are missing",
                seq=size,
                expected=head.tree_size,
                computed=size,
            )
        if self.block_pos < len(self.blocks):
            block = self.blocks[self.block_pos].header
            raise BlockCoverageError(
                f"block {block.index} covers transactions that are not stored",
                block_index=block.index,
                expected=block.tree_size,
                computed=size,
            )
        if self.trusted:
            checkpoint = self.trusted[0]
            raise ForkDetectedError(
                f"a witnessed checkpoint has {checkpoint.tree_size} transactions, "
                f"the stored ledger only {size}: rolled back",
                first=checkpoint,
                second=head,
                expected=checkpoint.tree_size,
                computed=size,
            )
        if self.bad_node is not None:
            raise self.bad_node
        stored = self.storage.node_count()
        if stored != self.expected_nodes:
            raise MerkleNodeError(
                "the store holds Merkle nodes that are not part of the tree",
                expected=self.expected_nodes,
                computed=stored,
            )

    def _check_chunk(self, chunk: Sequence[Transaction]) -> None:
        start = self.tree.size
        if chunk[-1].seq != start + len(chunk) - 1 or chunk[0].seq != start:
            for i, tx in enumerate(chunk):
                if tx.seq != start + i:
                    raise TransactionSequenceError(
                        f"transaction {start + i} is missing or out of place (found {tx.seq})",
                        seq=start + i,
                        expected=start + i,
                        computed=tx.seq,
                    )
        # Check what the signed head covers first, so a row slipped into the middle is named
        # where it was inserted rather than where the log overflows.
        covered = chunk[: max(0, self.head.tree_size - start)]
        if covered:
            self._check_covered(covered)
        if len(covered) < len(chunk):
            raise UncoveredTransactionError(
                f"transaction {self.head.tree_size} onwards are not covered by the latest "
                "signed tree head (inserted after signing)",
                seq=self.head.tree_size,
                expected=self.head.tree_size,
                computed=start + len(chunk),
            )

    def _check_covered(self, chunk: Sequence[Transaction]) -> None:
        leaves = [tx.leaf_hash() for tx in chunk]
        stored = self.storage.get_nodes((0, tx.seq) for tx in chunk)
        for tx, leaf in zip(chunk, leaves, strict=True):
            got = stored.get((0, tx.seq))
            if got is None or not hmac.compare_digest(got, leaf):
                raise TransactionTamperedError(
                    f"transaction {tx.seq} does not match its stored leaf hash "
                    "(content modified or rows swapped)",
                    seq=tx.seq,
                    expected=got,
                    computed=leaf,
                )
            self.counts[tx.tx_type] += 1
        new_nodes: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            new_nodes.extend(self.tree.append(leaf))
            self.block_tree.append(leaf)
            self._at_size()
        self.expected_nodes += len(new_nodes)
        if self.bad_node is None:
            self._compare_nodes([n for n in new_nodes if n[0] > 0])

    def _compare_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        keys: list[NodeKey] = [(level, index) for level, index, _ in nodes]
        stored = self.storage.get_nodes(keys)
        for level, index, h in nodes:
            got = stored.get((level, index))
            if got is None or not hmac.compare_digest(got, h):
                # Kept for the end: a signed structure failing says more than a cache node.
                self.bad_node = MerkleNodeError(
                    f"stored Merkle node (level {level}, index {index}) is "
                    f"{'missing' if got is None else 'wrong'}",
                    seq=index << level,
                    expected=h,
                    computed=got,
                )
                return

    def _at_size(self) -> None:
        """Check every block and checkpoint that ends at the current tree size."""
        size = self.tree.size
        while self.block_pos < len(self.blocks):
            block = self.blocks[self.block_pos].header
            if block.tree_size != size:
                break
            tx_root = self.block_tree.root()
            if not hmac.compare_digest(tx_root, block.tx_root):
                raise BlockMerkleRootError(
                    f"transactions {block.first_seq}..{block.tree_size - 1} of block "
                    f"{block.index} do not match its signed Merkle root",
                    block_index=block.index,
                    expected=block.tx_root,
                    computed=tx_root,
                )
            root = self.tree.root()
            if not hmac.compare_digest(root, block.tree_root):
                raise TreeHeadMismatchError(
                    f"log root after block {block.index} differs from the signed one",
                    block_index=block.index,
                    expected=block.tree_root,
                    computed=root,
                )
            self.block_tree = Frontier()
            self.block_pos += 1
        if size == self.head.tree_size:
            root = self.tree.root()
            if not hmac.compare_digest(root, self.head.root_hash):
                raise TreeHeadMismatchError(
                    f"log root at size {size} differs from the latest signed tree head",
                    seq=size - 1 if size else None,
                    expected=self.head.root_hash,
                    computed=root,
                )
        while self.trusted and self.trusted[0].tree_size == size:
            checkpoint = self.trusted.pop(0)
            root = self.tree.root()
            if not hmac.compare_digest(root, checkpoint.root_hash):
                raise ForkDetectedError(
                    f"stored ledger at size {size} differs from a witnessed checkpoint",
                    first=checkpoint,
                    second=self.head,
                    expected=checkpoint.root_hash,
                    computed=root,
                )
