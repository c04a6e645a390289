"""The ledger on both backends: appends of every type, proofs, blocks, policy, reopening."""

from __future__ import annotations

from itertools import pairwise

import pytest

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    EMPTY_ROOT,
    ConsistencyProofError,
    InclusionProofError,
    KeyMismatchError,
    Ledger,
    LedgerKey,
    LedgerLookupError,
    LedgerStateError,
    LedgerStorageError,
    LocalStorage,
    PrivacyHeader,
    Transaction,
    TxType,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
)

from . import reference
from .conftest import Backend, FakeClock


def _body(i: int) -> bytes:
    return f"ciphertext-{i}".encode() * 3


@pytest.mark.parametrize("tx_type", list(TxType))
def test_each_transaction_type_is_appended_and_proven(
    ledger: Ledger, signer: LedgerKey, tx_type: TxType
) -> None:
    ledger.append(TxType.ORIGIN, "admin", b"device key", time=1)
    receipt = ledger.append(tx_type, "dev-hr-1", b"\x00encrypted", time=2, signature=b"sig")
    tx = ledger.get_transaction(receipt.seq)
    assert tx == Transaction(1, tx_type, "dev-hr-1", 2, b"\x00encrypted", b"sig")
    assert receipt.seq == 1 and receipt.tree_size == 2 and receipt.root == ledger.root
    verify_receipt(receipt, signer, transaction=tx)
    verify_inclusion(tx.leaf_hash(), ledger.inclusion_proof(1), ledger.root)
    assert ledger.verify_chain().count(tx_type) == (2 if tx_type is TxType.ORIGIN else 1)


def test_every_receipt_and_every_later_proof_verifies(ledger: Ledger, signer) -> None:
    entries: list[bytes] = []
    receipts = []
    for i in range(37):
        r = ledger.append(i % 5, f"gen-{i % 4}", _body(i), time=100 + i)
        entries.append(ledger.get_transaction(i).leaf_data())
        receipts.append(r)
        assert r.root == reference.mth(entries)
        assert list(r.inclusion_proof.path) == reference.path(i, entries)
    for r in receipts:
        verify_receipt(r, signer, transaction=ledger.get_transaction(r.seq))
    for n in (1, 2, 5, 16, 17, 37):
        root = ledger.root_at(n)
        assert root == reference.mth(entries[:n])
        for seq in range(n):
            proof = ledger.inclusion_proof(seq, n)
            assert list(proof.path) == reference.path(seq, entries[:n])
            verify_inclusion(ledger.get_transaction(seq).leaf_hash(), proof, root)
    for n in (1, 5, 17, 37):
        seqs = [n - 1, 0, *range(0, n, 3), 0]  # unordered, with repeats
        assert ledger.inclusion_proofs(seqs, n) == tuple(
            ledger.inclusion_proof(seq, n) for seq in seqs
        )
    with pytest.raises(LedgerLookupError):
        ledger.inclusion_proofs([0, 37], 37)
    assert ledger.inclusion_proofs([]) == ()
    for m in range(0, 38, 3):
        for n in range(m, 38, 4):
            proof = ledger.consistency_proof(m, n)
            assert list(proof.path) == reference.proof(m, entries[:n])
            verify_consistency(proof, ledger.root_at(m), ledger.root_at(n))
    # A receipt's proof against its own tree head stays provable against later heads.
    old = receipts[10]
    verify_consistency(ledger.consistency_proof(old.tree_size), old.root, ledger.root)


def test_blocks_seal_by_count_and_chain(ledger: Ledger) -> None:
    # max_block_transactions=4 in the fixture; block 0 is the genesis block.
    receipts = [ledger.append(TxType.STORE, "dev-hr-1", _body(i), time=i) for i in range(10)]
    assert [r.block_index for r in receipts] == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert ledger.block_count == 3 and ledger.pending_count == 2
    blocks = list(ledger.blocks())
    assert [b.index for b in blocks] == [0, 1, 2]
    assert blocks[0].header.tx_count == 0 and blocks[0].header.tree_root == EMPTY_ROOT
    for prev, block in pairwise(blocks):
        assert block.header.prev_hash == prev.hash()
        assert block.header.first_seq == prev.header.tree_size
        assert block.header.tree_root == ledger.root_at(block.header.tree_size)
    sealed = ledger.seal_block()
    assert (sealed.index, sealed.header.first_seq, sealed.header.tx_count) == (3, 8, 2)
    assert ledger.pending_count == 0
    with pytest.raises(LedgerStateError):
        ledger.seal_block()  # nothing pending, no policy change
    report = ledger.verify_chain()
    assert report.block_height == 4 and report.pending == 0 and report.tree_size == 10


def test_blocks_seal_by_age(backend: Backend, signer, policy) -> None:
    clock = FakeClock(step=0)
    led = Ledger.open(
        backend.open(), signer, privacy_header=policy, clock=clock, max_block_age=5_000
    )
    led.append(TxType.STORE, "dev-hr-1", b"a", time=1)
    clock.advance(4_999)
    assert led.seal_if_due() is None
    led.append(TxType.STORE, "dev-hr-1", b"b", time=2)
    assert led.block_count == 1 and led.pending_count == 2
    clock.advance(1)
    block = led.seal_if_due()
    assert block is not None and block.header.tx_count == 2
    assert led.seal_if_due() is None  # nothing pending
    led.append(TxType.STORE, "dev-hr-1", b"c", time=3)
    clock.advance(10_000)
    receipt = led.append(TxType.STORE, "dev-hr-1", b"d", time=4)  # seals in the same commit
    assert receipt.block_index == 2 and led.block_count == 3 and led.pending_count == 0
    assert receipt.checkpoint.block_height == 3
    led.verify_chain()


def test_policy_in_force_is_the_latest_blocks(ledger: Ledger, policy: PrivacyHeader) -> None:
    assert ledger.privacy_header == policy
    assert not ledger.privacy_header.permits("physician", TxType.ACCESS, "dev-new")
    ledger.append(TxType.ORIGIN, "admin", b"enc(dev-new key)", time=1)
    new = policy.with_device("dev-new")
    block = ledger.seal_block(new)
    assert block.privacy_header == new and ledger.privacy_header == new
    assert ledger.privacy_header.permits("physician", TxType.ACCESS, "dev-new")
    # A policy change alone seals an (empty) block.
    removed = new.without_device("dev-hr-1")
    empty = ledger.seal_block(removed)
    assert empty.header.tx_count == 0 and ledger.privacy_header == removed
    with pytest.raises(LedgerStateError):
        ledger.seal_block(PrivacyHeader("other-facility", 99))
    with pytest.raises(LedgerStateError):
        ledger.seal_block(PrivacyHeader(policy.facility_id, removed.version))  # no version bump
    assert ledger.privacy_header == removed
    assert ledger.verify_chain().privacy_header_version == removed.version


def test_reopen_restores_state_and_continues(backend: Backend, signer, policy) -> None:
    clock = FakeClock()
    led = Ledger.open(
        backend.open(), signer, privacy_header=policy, clock=clock, max_block_transactions=3
    )
    for i in range(7):
        led.append(TxType.OBSERVE, "prov-1", _body(i), time=i)
    root, size, blocks = led.root, led.size, led.block_count
    backend.close_all()

    again = Ledger.open(backend.open(), signer, clock=clock, max_block_transactions=3)
    assert (again.root, again.size, again.block_count) == (root, size, blocks)
    assert again.pending_count == 1 and again.privacy_header == policy
    r = again.append(TxType.ACCESS, "prov-1", b"x", time=8)
    assert r.seq == 7
    again.append(TxType.ACCESS, "prov-1", b"y", time=9)
    assert again.block_count == blocks + 1  # the reopened pending tx counted towards the block
    again.verify_chain()
    with pytest.raises(LedgerStateError):
        Ledger.open(backend.open(), signer, privacy_header=policy.with_device("zzz"))


def test_open_checks_key_and_needs_a_policy(backend: Backend, signer, policy) -> None:
    with pytest.raises(LedgerStateError):
        Ledger.open(backend.open(), signer)  # empty store, no initial policy
    Ledger.open(backend.open(), signer, privacy_header=policy)
    with pytest.raises(KeyMismatchError):
        Ledger.open(backend.open(), LedgerKey(Ed25519Signer.from_private_bytes(b"\x02" * 32)))
    with pytest.raises(ValueError):
        Ledger.open(backend.open(), signer, max_block_transactions=0)


def test_invalid_appends_change_nothing(ledger: Ledger) -> None:
    ledger.append(TxType.STORE, "dev-hr-1", b"ok", time=1)
    size, root, head = ledger.size, ledger.root, ledger.latest_head
    bad_calls = [
        dict(tx_type=9, generator_id="dev", body=b""),
        dict(tx_type=TxType.STORE, generator_id="", body=b""),
        dict(tx_type=TxType.STORE, generator_id="dev", body="text"),
        dict(tx_type=TxType.STORE, generator_id="dev", body=b"", time=-1),
        dict(tx_type=TxType.ACCESS, generator_id="dev", body=b"", local_record=b"r"),
    ]
    for kwargs in bad_calls:
        kwargs.setdefault("time", 5)
        with pytest.raises(LedgerStateError):
            ledger.append(**kwargs)  # type: ignore[arg-type]
    assert (ledger.size, ledger.root, ledger.latest_head) == (size, root, head)
    assert ledger.append(TxType.STORE, "dev-hr-1", b"next", time=6).seq == 1


def test_lookups_of_what_does_not_exist(ledger: Ledger) -> None:
    ledger.append(TxType.STORE, "dev-hr-1", b"a", time=1)
    with pytest.raises(LedgerLookupError):
        ledger.get_transaction(1)
    with pytest.raises(LedgerLookupError):
        ledger.get_block(5)
    with pytest.raises(LedgerLookupError):
        ledger.inclusion_proof(1)
    with pytest.raises(LedgerLookupError):
        ledger.inclusion_proof(0, 2)
    with pytest.raises(LedgerLookupError):
        ledger.consistency_proof(2, 1)
    with pytest.raises(LedgerLookupError):
        ledger.root_at(2)


def test_transactions_filter_by_generator_and_type(ledger: Ledger) -> None:
    plan = [
        (TxType.ORIGIN, "admin"),
        (TxType.STORE, "dev-hr-1"),
        (TxType.STORE, "dev-bp-2"),
        (TxType.ACCESS, "prov-1"),
        (TxType.STORE, "dev-hr-1"),
        (TxType.OBSERVE, "prov-1"),
        (TxType.REMOVE, "admin"),
    ]
    for i, (t, g) in enumerate(plan):
        ledger.append(t, g, _body(i), time=i)
    assert [t.seq for t in ledger.transactions(generator_id="dev-hr-1")] == [1, 4]
    assert [t.seq for t in ledger.transactions(tx_type=TxType.STORE)] == [1, 2, 4]
    assert [t.seq for t in ledger.transactions(generator_id="prov-1", tx_type=TxType.OBSERVE)] == [
        5
    ]
    assert [t.seq for t in ledger.transactions(start=2, stop=5)] == [2, 3, 4]
    assert list(ledger.transactions(generator_id="nobody")) == []


def test_store_with_local_record_commits_both(ledger: Ledger, backend: Backend) -> None:
    r = ledger.append(TxType.STORE, "dev-hr-1", b"meta", time=1, local_record=b"vitals")
    local = LocalStorage(ledger.storage)
    assert local.get("dev-hr-1", r.seq).data == b"vitals"
    # A record already present makes the whole append fail, atomically.
    local.put("dev-hr-1", 1, b"squatter")
    with pytest.raises(LedgerStorageError):
        ledger.append(TxType.STORE, "dev-hr-1", b"meta2", time=2, local_record=b"v2")
    assert ledger.size == 1
    assert ledger.storage.transaction_count() == 1
    ledger.verify_chain()


def test_checkpoint_is_fresh_and_signed(ledger: Ledger, signer) -> None:
    ledger.append(TxType.STORE, "dev-hr-1", b"a", time=1)
    cp = ledger.checkpoint()
    verify_checkpoint(cp, signer)
    assert (cp.tree_size, cp.root_hash, cp.block_height) == (1, ledger.root, 1)
    assert cp.block_hash == ledger.latest_block.hash()
    assert cp.time > ledger.latest_head.time


def test_receipt_verification_rejects_mismatches(ledger: Ledger, signer) -> None:
    a = ledger.append(TxType.STORE, "dev-hr-1", b"a", time=1)
    b = ledger.append(TxType.STORE, "dev-hr-1", b"b", time=2)
    with pytest.raises(InclusionProofError):
        verify_receipt(a, signer, transaction=ledger.get_transaction(b.seq))
    from dataclasses import replace

    with pytest.raises(InclusionProofError):
        verify_receipt(replace(a, checkpoint=b.checkpoint), signer)
    with pytest.raises(InclusionProofError):
        verify_receipt(replace(a, inclusion_proof=b.inclusion_proof), signer)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(ledger.consistency_proof(1, 2), b.root, a.root)
