"""iomt.ledger -- the BIoMT bolster's local blockchain and local storage (pure Python).

Seliem & Elgazzar's bolster keeps a *local blockchain* of transactions Origin (0), Remove (1),
Store (2), Access (3) and Observe (4), in blocks with a block header (chained by the previous
block's hash) and a privacy header (the facility's policy), next to a *local storage* of
device data. This package is that ledger, made verifiable:

* :class:`Ledger` -- append (durable before it returns, with an inclusion proof and a signed
  tree head), blocks sealed by size/age or on a policy change, proofs and checkpoints;
* :mod:`~iomt.ledger.merkle` -- the RFC 9162 Merkle tree over all transactions: inclusion and
  consistency proofs and their verifiers;
* :mod:`~iomt.ledger.checkpoints` -- signed tree heads, cluster-head cosignatures, fork
  detection;
* :func:`audit` -- from-scratch verification of a stored ledger against the bolster's key;
* :class:`MemoryStorage`, :class:`SqliteStorage` -- backends; :class:`LocalStorage` -- the
  device-data records on the same backend;
* :class:`RecordChain` -- tamper evidence (an HMAC chain with an authenticated head) for
  records nobody signs, such as a device's own readings.

No DDS and no wall clock here: storage, signer and clock are injected; nodes wire it up.
"""

from __future__ import annotations

from .audit import AuditReport, audit, verify_block
from .blocks import GENESIS_PREV_HASH, Block, BlockHeader
from .checkpoints import (
    Cosignature,
    SignedTreeHead,
    cosign,
    detect_fork,
    sign_tree_head,
    verify_checkpoint,
    verify_cosignature,
)
from .errors import (
    BlockCoverageError,
    BlockMerkleRootError,
    BlockSequenceError,
    BlockSignatureError,
    ChainLinkError,
    CheckpointSignatureError,
    ConsistencyProofError,
    CosignatureError,
    ForkDetectedError,
    InclusionProofError,
    KeyMismatchError,
    LedgerDecodeError,
    LedgerIntegrityError,
    LedgerLookupError,
    LedgerStateError,
    LedgerStorageError,
    LedgerVerificationError,
    LocalRecordError,
    LocalRecordExtraError,
    LocalRecordMissingError,
    LocalRecordTamperedError,
    MerkleNodeError,
    PolicyDeniedError,
    PrivacyHeaderError,
    ProofError,
    RecordNotFoundError,
    SignatureError,
    TransactionSequenceError,
    TransactionTamperedError,
    TreeHeadMismatchError,
    UncoveredTransactionError,
)
from .ledger import DEFAULT_MAX_BLOCK_TRANSACTIONS, Ledger
from .local_storage import LocalStorage
from .merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from .policy import AccessRule, PrivacyHeader
from .receipts import Receipt, verify_receipt
from .record_chain import ChainHead, RecordChain, verify_records
from .signing import (
    LedgerKey,
    LedgerKeyVerifier,
    LedgerSigner,
    LedgerVerifier,
    ed25519_ledger_verifier,
    key_id,
)
from .sqlite import SqliteStorage
from .storage import LedgerStorage, MemoryStorage, StoredRecord
from .transactions import Transaction, TxType

__all__ = [
    "DEFAULT_MAX_BLOCK_TRANSACTIONS",
    "EMPTY_ROOT",
    "GENESIS_PREV_HASH",
    "AccessRule",
    "AuditReport",
    "Block",
    "BlockCoverageError",
    "BlockHeader",
    "BlockMerkleRootError",
    "BlockSequenceError",
    "BlockSignatureError",
    "ChainHead",
    "ChainLinkError",
    "CheckpointSignatureError",
    "ConsistencyProof",
    "ConsistencyProofError",
    "Cosignature",
    "CosignatureError",
    "ForkDetectedError",
    "InclusionProof",
    "InclusionProofError",
    "KeyMismatchError",
    "Ledger",
    "LedgerDecodeError",
    "LedgerIntegrityError",
    "LedgerKey",
    "LedgerKeyVerifier",
    "LedgerLookupError",
    "LedgerSigner",
    "LedgerStateError",
    "LedgerStorage",
    "LedgerStorageError",
    "LedgerVerificationError",
    "LedgerVerifier",
    "LocalRecordError",
    "LocalRecordExtraError",
    "LocalRecordMissingError",
    "LocalRecordTamperedError",
    "LocalStorage",
    "MemoryStorage",
    "MerkleNodeError",
    "PolicyDeniedError",
    "PrivacyHeader",
    "PrivacyHeaderError",
    "ProofError",
    "Receipt",
    "RecordChain",
    "RecordNotFoundError",
    "SignatureError",
    "SignedTreeHead",
    "SqliteStorage",
    "StoredRecord",
    "Transaction",
    "TransactionSequenceError",
    "TransactionTamperedError",
    "TreeHeadMismatchError",
    "TxType",
    "UncoveredTransactionError",
    "audit",
    "cosign",
    "detect_fork",
    "ed25519_ledger_verifier",
    "key_id",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "sign_tree_head",
    "verify_block",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_receipt",
    "verify_records",
]
