"""Checkpoints, cluster-head cosignatures and fork/rewrite detection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    CheckpointSignatureError,
    ConsistencyProof,
    ConsistencyProofError,
    CosignatureError,
    ForkDetectedError,
    Ledger,
    LedgerKey,
    LedgerKeyVerifier,
    MemoryStorage,
    SignedTreeHead,
    TxType,
    cosign,
    detect_fork,
    verify_checkpoint,
    verify_cosignature,
)

from .conftest import FakeClock


def _grow(ledger: Ledger, n: int, tag: bytes = b"") -> None:
    for _ in range(n):
        ledger.append(TxType.STORE, "dev-hr-1", tag + b"%d" % ledger.size, time=ledger.size)


def test_checkpoint_signature_and_ledger_binding(ledger: Ledger, signer) -> None:
    _grow(ledger, 3)
    cp = ledger.checkpoint()
    verify_checkpoint(cp, signer)
    verify_checkpoint(cp, LedgerKeyVerifier(signer.verifier))
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(replace(cp, tree_size=cp.tree_size + 1), signer)
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(replace(cp, signature=bytes(64)), signer)
    other = LedgerKey(Ed25519Signer.from_private_bytes(b"\x03" * 32))
    with pytest.raises(CheckpointSignatureError) as info:
        verify_checkpoint(cp, other)
    assert info.value.computed == cp.log_id


def test_checkpoint_wire_round_trip(ledger: Ledger, signer) -> None:
    _grow(ledger, 2)
    cp = ledger.checkpoint()
    again = SignedTreeHead.from_bytes(cp.to_bytes())
    assert again == cp
    verify_checkpoint(again, signer)


def test_cluster_head_cosigns(ledger: Ledger, signer) -> None:
    _grow(ledger, 2)
    cp = ledger.checkpoint()
    head = LedgerKey(Ed25519Signer.from_private_bytes(b"\x04" * 32))  # a cluster head's key
    cosig = cosign(cp, head, time=123)
    verify_cosignature(cp, cosig, LedgerKeyVerifier(head.verifier))
    with pytest.raises(CosignatureError):
        verify_cosignature(replace(cp, time=cp.time + 1), cosig, LedgerKeyVerifier(head.verifier))
    with pytest.raises(CosignatureError):
        verify_cosignature(cp, replace(cosig, time=124), LedgerKeyVerifier(head.verifier))
    with pytest.raises(CosignatureError):
        verify_cosignature(cp, cosig, LedgerKeyVerifier(signer.verifier))  # not this witness
    from iomt.ledger.checkpoints import Cosignature

    assert Cosignature.from_bytes(cosig.to_bytes()) == cosig


def test_honest_growth_is_not_a_fork(ledger: Ledger, signer) -> None:
    _grow(ledger, 5)
    old = ledger.checkpoint()
    _grow(ledger, 6)
    ledger.seal_block()
    new = ledger.checkpoint()
    proof = ledger.consistency_proof(old.tree_size, new.tree_size)
    detect_fork(old, new, proof, signer)
    detect_fork(new, old, proof, signer)  # order does not matter
    same = ledger.checkpoint()
    detect_fork(new, same, ledger.consistency_proof(new.tree_size, new.tree_size), signer)


def _forked_pair(signer: LedgerKey, policy) -> tuple[Ledger, Ledger]:
    """The same bolster key keeping two different histories (a rewrite)."""
    a = Ledger.open(MemoryStorage(), signer, privacy_header=policy, clock=FakeClock())
    b = Ledger.open(MemoryStorage(), signer, privacy_header=policy, clock=FakeClock())
    _grow(a, 4)
    _grow(b, 4)
    a.append(TxType.ACCESS, "prov-1", b"the original access", time=99)
    b.append(TxType.ACCESS, "prov-1", b"a rewritten access", time=99)
    return a, b


def test_same_size_different_roots_is_a_fork(signer, policy) -> None:
    a, b = _forked_pair(signer, policy)
    ca, cb = a.checkpoint(), b.checkpoint()
    with pytest.raises(ForkDetectedError) as info:
        detect_fork(ca, cb, a.consistency_proof(5, 5), signer)
    assert {info.value.first, info.value.second} == {ca, cb}
    assert {info.value.expected, info.value.computed} == {ca.root_hash, cb.root_hash}


def test_rewritten_history_cannot_be_proven_consistent(signer, policy) -> None:
    a, b = _forked_pair(signer, policy)
    old = a.checkpoint()  # what a cluster head witnessed from history a
    _grow(b, 3)
    new = b.checkpoint()  # later, the bolster shows history b
    with pytest.raises(ForkDetectedError):
        detect_fork(old, new, b.consistency_proof(old.tree_size, new.tree_size), signer)
    honest_shape = b.consistency_proof(old.tree_size, new.tree_size)
    forged = ConsistencyProof(5, 8, tuple(bytes([i]) * 32 for i in range(len(honest_shape.path))))
    with pytest.raises(ForkDetectedError):
        detect_fork(old, new, forged, signer)


def test_fork_in_the_block_chain(signer, policy) -> None:
    a = Ledger.open(MemoryStorage(), signer, privacy_header=policy, clock=FakeClock())
    b = Ledger.open(MemoryStorage(), signer, privacy_header=policy, clock=FakeClock(step=7))
    _grow(a, 2)
    _grow(b, 2)
    a.seal_block()
    b.seal_block(policy.with_device("dev-sneaky"))  # same transactions, other policy
    ca, cb = a.checkpoint(), b.checkpoint()
    assert ca.root_hash == cb.root_hash and ca.block_hash != cb.block_hash
    with pytest.raises(ForkDetectedError):
        detect_fork(ca, cb, a.consistency_proof(2), signer)


def test_detector_requires_signed_checkpoints_and_matching_proof(ledger: Ledger, signer) -> None:
    _grow(ledger, 3)
    old = ledger.checkpoint()
    _grow(ledger, 3)
    new = ledger.checkpoint()
    proof = ledger.consistency_proof(3, 6)
    with pytest.raises(CheckpointSignatureError):
        detect_fork(replace(old, root_hash=bytes(32)), new, proof, signer)
    with pytest.raises(ConsistencyProofError):
        detect_fork(old, new, ConsistencyProof(2, 6, proof.path), signer)
