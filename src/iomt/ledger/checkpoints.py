"""Signed tree heads ("checkpoints"), witness cosignatures and fork detection.

A bolster's ledger is local to its facility, so nothing stops a compromised bolster from
rewriting history and re-signing it -- unless its signed statements about the ledger leave
the facility. A *checkpoint* is such a statement: the bolster's signature over the size and
root of its transaction tree (plus the height and hash of its block chain) at a time. BIoMT's
cluster heads, which already hold "a list of the public keys used by different facilities",
are the natural witnesses: they keep the checkpoints they saw and cosign them
(:func:`cosign`); given an older and a newer checkpoint and a consistency proof, anybody can
check the ledger only grew (:func:`detect_fork`). Two validly signed checkpoints that cannot
both be prefixes of one history are evidence of a fork or rewrite, attributable to the
bolster's key.

Checkpoints follow RFC 9162's signed tree head (size, root, timestamp, signature) with a
domain-separated canonical encoding; times are nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from iomt.errors import AuthenticationError

from .encoding import Reader, Writer, check_u64, tag
from .errors import (
    CheckpointSignatureError,
    ConsistencyProofError,
    CosignatureError,
    ForkDetectedError,
    LedgerDecodeError,
)
from .merkle import HASH_SIZE, ConsistencyProof, verify_consistency
from .signing import LedgerSigner, LedgerVerifier, key_id

__all__ = [
    "NO_BLOCK_HASH",
    "Cosignature",
    "SignedTreeHead",
    "cosign",
    "detect_fork",
    "sign_tree_head",
    "verify_checkpoint",
    "verify_cosignature",
]

#: ``block_hash`` of a checkpoint taken before any block exists.
NO_BLOCK_HASH = bytes(HASH_SIZE)

_STH_TAG = tag("iomt/ledger/checkpoint/v1")
_STH_WIRE_TAG = tag("iomt/ledger/signed-checkpoint/v1")
_COSIG_TAG = tag("iomt/ledger/cosignature/v1")
_COSIG_WIRE_TAG = tag("iomt/ledger/cosignature-wire/v1")


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A checkpoint: the bolster's signed statement of its ledger's state at ``time``."""

    log_id: bytes
    tree_size: int
    root_hash: bytes
    block_height: int
    block_hash: bytes
    time: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        for name in ("tree_size", "block_height", "time"):
            check_u64(name, getattr(self, name))
        for name in ("log_id", "root_hash", "block_hash"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise ValueError(f"{name} must be {HASH_SIZE} bytes")

    def signed_bytes(self) -> bytes:
        """What the bolster signs (everything but the signature)."""
        return self._write(Writer(_STH_TAG)).getvalue()

    def _write(self, w: Writer) -> Writer:
        return (
            w.fixed(self.log_id, HASH_SIZE)
            .u64(self.tree_size)
            .fixed(self.root_hash, HASH_SIZE)
            .u64(self.block_height)
            .fixed(self.block_hash, HASH_SIZE)
            .u64(self.time)
        )

    def to_bytes(self) -> bytes:
        return self._write(Writer(_STH_WIRE_TAG)).blob(self.signature).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedTreeHead:
        r = Reader(data, "signed tree head")
        r.expect_tag(_STH_WIRE_TAG)
        fields = (
            r.fixed(HASH_SIZE),
            r.u64(),
            r.fixed(HASH_SIZE),
            r.u64(),
            r.fixed(HASH_SIZE),
            r.u64(),
            r.blob(),
        )
        r.end()
        try:
            return cls(*fields)
        except ValueError as exc:
            raise LedgerDecodeError(f"signed tree head: {exc}") from exc


def sign_tree_head(
    signer: LedgerSigner,
    *,
    tree_size: int,
    root_hash: bytes,
    block_height: int,
    block_hash: bytes,
    time: int,
) -> SignedTreeHead:
    unsigned = SignedTreeHead(
        key_id(signer.public_key_bytes), tree_size, root_hash, block_height, block_hash, time
    )
    return SignedTreeHead(
        unsigned.log_id,
        tree_size,
        root_hash,
        block_height,
        block_hash,
        time,
        signer.sign(unsigned.signed_bytes()),
    )


def verify_checkpoint(sth: SignedTreeHead, verifier: LedgerVerifier) -> None:
    """Check that ``sth`` is signed by ``verifier``'s key and names that key's ledger."""
    want = key_id(verifier.public_key_bytes)
    if not hmac.compare_digest(sth.log_id, want):
        raise CheckpointSignatureError(
            "checkpoint is for another ledger", expected=want, computed=sth.log_id
        )
    try:
        verifier.verify(sth.signed_bytes(), sth.signature)
    except AuthenticationError as exc:
        raise CheckpointSignatureError(
            f"checkpoint at size {sth.tree_size} is not signed by the bolster"
        ) from exc


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness' (e.g. a cluster head's) signature over a bolster's checkpoint."""

    witness_id: bytes
    time: int
    signature: bytes

    def to_bytes(self) -> bytes:
        return (
            Writer(_COSIG_WIRE_TAG)
            .fixed(self.witness_id, HASH_SIZE)
            .u64(self.time)
            .blob(self.signature)
            .getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Cosignature:
        r = Reader(data, "cosignature")
        r.expect_tag(_COSIG_WIRE_TAG)
        cosig = cls(r.fixed(HASH_SIZE), r.u64(), r.blob())
        r.end()
        return cosig


def _cosigned_bytes(sth: SignedTreeHead, time: int) -> bytes:
    # The witness signs the whole signed checkpoint, so it vouches for the bolster's signature.
    return Writer(_COSIG_TAG).u64(time).blob(sth.to_bytes()).getvalue()


def cosign(sth: SignedTreeHead, witness: LedgerSigner, *, time: int) -> Cosignature:
    """Witness ``sth``. The witness must have verified it (signature, consistency) first."""
    check_u64("time", time)
    return Cosignature(
        key_id(witness.public_key_bytes), time, witness.sign(_cosigned_bytes(sth, time))
    )


def verify_cosignature(sth: SignedTreeHead, cosig: Cosignature, witness: LedgerVerifier) -> None:
    want = key_id(witness.public_key_bytes)
    if not hmac.compare_digest(cosig.witness_id, want):
        raise CosignatureError(
            "cosignature is from another witness", expected=want, computed=cosig.witness_id
        )
    try:
        witness.verify(_cosigned_bytes(sth, cosig.time), cosig.signature)
    except AuthenticationError as exc:
        raise CosignatureError("cosignature does not verify") from exc


def detect_fork(
    first: SignedTreeHead,
    second: SignedTreeHead,
    proof: ConsistencyProof,
    verifier: LedgerVerifier,
) -> None:
    """Raise :class:`ForkDetectedError` if two checkpoints of one bolster cannot both hold.

    Both checkpoints must carry the bolster's valid signature (else
    :class:`CheckpointSignatureError`: unsigned claims are not evidence). ``proof`` is the
    bolster's consistency proof between their sizes (in either order); it must be for exactly
    those sizes (else :class:`ConsistencyProofError`, a malformed request rather than a
    fork). Returns normally when the smaller tree is proven a prefix of the larger.

    A fork is reported when the same size has two roots, the same block height two block
    hashes, the chain of blocks got shorter while the tree grew, or the consistency proof
    fails -- an honest bolster can always prove consistency, so a checkpoint pair it cannot
    prove is treated as a rewrite.
    """
    verify_checkpoint(first, verifier)
    verify_checkpoint(second, verifier)
    older, newer = sorted((first, second), key=lambda s: (s.tree_size, s.block_height))
    if (proof.first_size, proof.second_size) != (older.tree_size, newer.tree_size):
        raise ConsistencyProofError(
            "consistency proof is for other tree sizes",
            expected=(older.tree_size, newer.tree_size),
            computed=(proof.first_size, proof.second_size),
        )

    def fork(message: str, expected: object, computed: object) -> ForkDetectedError:
        return ForkDetectedError(
            message, first=older, second=newer, expected=expected, computed=computed
        )

    if older.tree_size == newer.tree_size and older.root_hash != newer.root_hash:
        raise fork(
            f"two different roots signed for tree size {older.tree_size}",
            older.root_hash,
            newer.root_hash,
        )
    if older.block_height == newer.block_height and older.block_hash != newer.block_hash:
        raise fork(
            f"two different blocks signed at height {older.block_height}",
            older.block_hash,
            newer.block_hash,
        )
    if newer.block_height < older.block_height:
        raise fork(
            "block chain shrank while the transaction tree did not",
            older.block_height,
            newer.block_height,
        )
    try:
        verify_consistency(proof, older.root_hash, newer.root_hash)
    except ConsistencyProofError as exc:
        raise fork(
            f"tree of size {newer.tree_size} is not provably an extension of size "
            f"{older.tree_size}: fork or rewritten history",
            exc.expected,
            exc.computed,
        ) from exc
