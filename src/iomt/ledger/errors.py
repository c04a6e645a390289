"""The ledger's failures, as specific branches of the one iomt error tree.

Everything a verifier can find wrong is a ``LedgerVerificationError`` (from ``iomt.errors``)
carrying ``expected`` and ``computed``; integrity errors found by :func:`~iomt.ledger.audit`
also name the transaction (``seq``) or block (``block_index``) where the check failed, so an
operator reading the report knows which row of which table to look at.

    LedgerVerificationError
    ├── LedgerDecodeError               bytes are not a canonical encoding
    ├── ProofError
    │   ├── InclusionProofError         an audit path does not lead to the root
    │   └── ConsistencyProofError       two tree heads are not proven append-only
    ├── SignatureError
    │   ├── BlockSignatureError         a block header is not signed by the bolster
    │   ├── CheckpointSignatureError    a signed tree head is not signed by the bolster
    │   └── CosignatureError            a witness (cluster head) cosignature is invalid
    ├── ForkDetectedError               two signed checkpoints of one bolster disagree
    └── LedgerIntegrityError            a stored ledger is not what the bolster signed
        ├── KeyMismatchError
        ├── TransactionSequenceError    dropped or inserted transaction rows
        ├── TransactionTamperedError    content no longer matches its leaf hash
        ├── UncoveredTransactionError   transactions no signed tree head covers
        ├── MerkleNodeError             a stored tree node is wrong or missing
        ├── TreeHeadMismatchError       recomputed root differs from the signed one
        ├── BlockSequenceError          dropped or inserted block rows
        ├── ChainLinkError              previous-block hash link broken
        ├── BlockCoverageError          blocks do not tile the transaction log
        ├── BlockMerkleRootError        a block's transactions changed
        ├── PrivacyHeaderError          a privacy header changed after signing
        └── LocalRecordError            local storage differs from what was committed
            ├── LocalRecordTamperedError    a record's content changed
            ├── LocalRecordMissingError     a record was deleted
            └── LocalRecordExtraError       a record nobody committed, or a bad head

Operational errors (not about integrity): ``LedgerStorageError`` (``StorageError``),
``LedgerLookupError`` / ``LedgerStateError`` (``LocalProtocolError``: the caller asked for
something that does not exist or is not allowed now), ``PolicyDeniedError``
(``AuthorizationError``: the privacy header in force does not permit a request).
"""

from __future__ import annotations

from iomt.errors import (
    AuthorizationError,
    LedgerVerificationError,
    LocalProtocolError,
    StorageError,
)

__all__ = [
    "BlockCoverageError",
    "BlockMerkleRootError",
    "BlockSequenceError",
    "BlockSignatureError",
    "ChainLinkError",
    "CheckpointSignatureError",
    "ConsistencyProofError",
    "CosignatureError",
    "ForkDetectedError",
    "InclusionProofError",
    "KeyMismatchError",
    "LedgerDecodeError",
    "LedgerIntegrityError",
    "LedgerLookupError",
    "LedgerStateError",
    "LedgerStorageError",
    "LedgerVerificationError",
    "LocalRecordError",
    "LocalRecordExtraError",
    "LocalRecordMissingError",
    "LocalRecordTamperedError",
    "MerkleNodeError",
    "PolicyDeniedError",
    "PrivacyHeaderError",
    "ProofError",
    "RecordNotFoundError",
    "SignatureError",
    "TransactionSequenceError",
    "TransactionTamperedError",
    "TreeHeadMismatchError",
    "UncoveredTransactionError",
]


class LedgerDecodeError(LedgerVerificationError):
    """Bytes that claim to be a ledger structure are not its canonical encoding."""


class ProofError(LedgerVerificationError):
    """A Merkle proof does not verify."""


class InclusionProofError(ProofError):
    """An inclusion proof (audit path) does not lead from the leaf to the root."""


class ConsistencyProofError(ProofError):
    """A consistency proof does not show the second tree extends the first."""


class SignatureError(LedgerVerificationError):
    """A signature over a ledger structure does not verify."""


class BlockSignatureError(SignatureError):
    """A block header is not signed by the bolster's key."""

    def __init__(
        self,
        message: str,
        *,
        block_index: int | None = None,
        expected: object = None,
        computed: object = None,
    ) -> None:
        super().__init__(message, expected=expected, computed=computed)
        self.block_index = block_index


class CheckpointSignatureError(SignatureError):
    """A signed tree head (checkpoint) is not signed by the bolster's key."""


class CosignatureError(SignatureError):
    """A witness' (cluster head's) cosignature over a checkpoint does not verify."""


class ForkDetectedError(LedgerVerificationError):
    """Two validly signed checkpoints from one bolster cannot both be true.

    ``first`` and ``second`` are the two checkpoints (the evidence: both carry the bolster's
    signature, so a third party can check the claim without trusting the reporter).
    """

    def __init__(
        self,
        message: str,
        *,
        first: object,
        second: object,
        expected: object = None,
        computed: object = None,
    ) -> None:
        super().__init__(message, expected=expected, computed=computed)
        self.first = first
        self.second = second


class LedgerIntegrityError(LedgerVerificationError):
    """A stored ledger differs from what its bolster signed.

    ``seq`` / ``block_index`` name the transaction or block at which the check failed.
    """

    def __init__(
        self,
        message: str,
        *,
        seq: int | None = None,
        block_index: int | None = None,
        expected: object = None,
        computed: object = None,
    ) -> None:
        super().__init__(message, expected=expected, computed=computed)
        self.seq = seq
        self.block_index = block_index


class KeyMismatchError(LedgerIntegrityError):
    """The ledger was written under a different bolster key than the one given."""


class TransactionSequenceError(LedgerIntegrityError):
    """Transaction sequence numbers are not contiguous from 0 (a row dropped or inserted)."""


class TransactionTamperedError(LedgerIntegrityError):
    """A transaction's content no longer hashes to its stored leaf hash."""


class UncoveredTransactionError(LedgerIntegrityError):
    """Transactions exist beyond the latest signed tree head (inserted after signing)."""


class MerkleNodeError(LedgerIntegrityError):
    """A stored Merkle tree node is missing or differs from the recomputed one."""


class TreeHeadMismatchError(LedgerIntegrityError):
    """The root recomputed from the transactions differs from a signed root."""


class BlockSequenceError(LedgerIntegrityError):
    """Block indices are not contiguous, or blocks are missing/added after the signed head."""


class ChainLinkError(LedgerIntegrityError):
    """A block's previous-block hash does not match the hash of the block before it."""


class BlockCoverageError(LedgerIntegrityError):
    """Blocks do not cover the transaction log contiguously (first_seq / tree_size)."""


class BlockMerkleRootError(LedgerIntegrityError):
    """The Merkle root of a block's transactions differs from the signed one."""


class PrivacyHeaderError(LedgerIntegrityError):
    """A block's privacy header does not match the hash its signed header commits to."""


class LocalRecordError(LedgerIntegrityError):
    """Local storage (a bolster's records, a device's readings) differs from what its
    writer committed. ``seq`` names the record: the Store transaction's sequence number for
    a bolster's record, the chain position for a device's reading."""


class LocalRecordTamperedError(LocalRecordError):
    """A record's content no longer matches the digest or MAC it was committed with."""


class LocalRecordMissingError(LocalRecordError):
    """A committed record is gone, and no Remove or eviction accounts for it."""


class LocalRecordExtraError(LocalRecordError):
    """A record nobody committed (inserted), or a store head that does not authenticate."""


class LedgerStorageError(StorageError):
    """The ledger's storage backend failed (I/O, locking, a concurrent writer)."""


class LedgerLookupError(LocalProtocolError):
    """The requested transaction, block, record or tree size does not exist."""


class RecordNotFoundError(LedgerLookupError):
    """No local-storage record exists for this device and sequence number."""


class LedgerStateError(LocalProtocolError):
    """The operation is not allowed in the ledger's current state; nothing was changed."""


class PolicyDeniedError(AuthorizationError):
    """The privacy header in force does not permit this requester, action or device."""
