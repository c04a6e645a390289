"""What a generator gets back when its transaction is appended: proof it is in the ledger.

A :class:`Receipt` is returned only after the transaction is durably committed. It carries
the transaction's sequence number, the block it belongs to, its leaf hash, and an inclusion
proof against the tree head the append produced -- signed by the bolster as a checkpoint. An
IoMT device or service provider that keeps its receipts can later show that the bolster
accepted its Store, Access or Observe transaction, and (with a consistency proof against a
newer checkpoint) that the bolster did not quietly drop it since.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .checkpoints import SignedTreeHead, verify_checkpoint
from .errors import InclusionProofError
from .merkle import InclusionProof, verify_inclusion
from .signing import LedgerVerifier
from .transactions import Transaction

__all__ = ["Receipt", "verify_receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of an acknowledged append."""

    seq: int
    block_index: int
    leaf_hash: bytes
    inclusion_proof: InclusionProof
    tree_size: int
    root: bytes
    checkpoint: SignedTreeHead


def verify_receipt(
    receipt: Receipt, verifier: LedgerVerifier, *, transaction: Transaction | None = None
) -> None:
    """Check a receipt end to end; raise a :class:`LedgerVerificationError` subclass if not.

    With ``transaction``, also check the receipt is for exactly that transaction.
    """
    if transaction is not None:
        computed = transaction.leaf_hash()
        if transaction.seq != receipt.seq or not hmac.compare_digest(computed, receipt.leaf_hash):
            raise InclusionProofError(
                f"receipt for seq {receipt.seq} is not for this transaction",
                expected=receipt.leaf_hash,
                computed=computed,
            )
    proof = receipt.inclusion_proof
    if (proof.leaf_index, proof.tree_size) != (receipt.seq, receipt.tree_size):
        raise InclusionProofError(
            "receipt's inclusion proof is for another leaf or tree size",
            expected=(receipt.seq, receipt.tree_size),
            computed=(proof.leaf_index, proof.tree_size),
        )
    verify_inclusion(receipt.leaf_hash, proof, receipt.root)
    verify_checkpoint(receipt.checkpoint, verifier)
    head = receipt.checkpoint
    if head.tree_size != receipt.tree_size or not hmac.compare_digest(head.root_hash, receipt.root):
        raise InclusionProofError(
            "receipt's checkpoint signs another tree head",
            expected=(receipt.tree_size, receipt.root),
            computed=(head.tree_size, head.root_hash),
        )
