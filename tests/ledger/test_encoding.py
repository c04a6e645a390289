"""Canonical encodings: pinned known answers, round trips, and decoders fed any bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    AccessRule,
    Block,
    BlockHeader,
    ConsistencyProof,
    InclusionProof,
    LedgerDecodeError,
    LedgerKey,
    PrivacyHeader,
    SignedTreeHead,
    Transaction,
    TxType,
    ed25519_ledger_verifier,
    key_id,
    verify_checkpoint,
)
from iomt.ledger.checkpoints import Cosignature

from .vectors import load, unhex

FMT = load("ledger_format")


def test_known_key() -> None:
    signer = LedgerKey(Ed25519Signer.from_private_bytes(unhex(FMT["signer_seed"])))
    assert signer.public_key_bytes.hex() == FMT["public_key"]
    assert key_id(signer.public_key_bytes).hex() == FMT["log_id"]


@pytest.mark.parametrize("case", FMT["transactions"], ids=lambda c: str(c["seq"]))
def test_transaction_known_answers(case: dict) -> None:
    tx = Transaction(
        case["seq"],
        TxType(case["tx_type"]),
        case["generator_id"],
        case["time"],
        unhex(case["body"]),
        unhex(case["signature"]),
    )
    assert tx.leaf_data().hex() == case["leaf_data"]
    assert tx.leaf_hash().hex() == case["leaf_hash"]
    assert tx.to_bytes().hex() == case["wire"]
    assert Transaction.from_bytes(unhex(case["wire"])) == tx


def test_privacy_header_known_answer() -> None:
    header = PrivacyHeader.from_bytes(unhex(FMT["privacy_header"]["encoding"]))
    assert header.to_bytes().hex() == FMT["privacy_header"]["encoding"]
    assert header.digest().hex() == FMT["privacy_header"]["digest"]
    assert header.facility_id == "facility-a" and header.version == 3
    assert header.permits("physician", TxType.OBSERVE, "dev-hr-01")


def test_block_header_and_checkpoint_known_answers() -> None:
    verifier = ed25519_ledger_verifier(unhex(FMT["public_key"]))
    signed = unhex(FMT["block_header"]["signed_bytes"])
    verifier.verify(signed, unhex(FMT["block_header"]["signature"]))
    import hashlib

    assert hashlib.sha256(signed).hexdigest() == FMT["block_header"]["hash"]
    sth = SignedTreeHead.from_bytes(unhex(FMT["checkpoint"]["wire"]))
    assert sth.signed_bytes().hex() == FMT["checkpoint"]["signed_bytes"]
    assert sth.block_hash.hex() == FMT["block_header"]["hash"]
    verify_checkpoint(sth, verifier)
    assert sth.to_bytes().hex() == FMT["checkpoint"]["wire"]


def test_proof_known_answers() -> None:
    assert InclusionProof.from_bytes(unhex(FMT["inclusion_proof"])) == InclusionProof(
        3, 7, (bytes(32), b"\xff" * 32)
    )
    assert ConsistencyProof.from_bytes(unhex(FMT["consistency_proof"])) == ConsistencyProof(
        3, 7, (b"\x11" * 32,)
    )


_DECODERS = {
    "privacy_header": PrivacyHeader.from_bytes,
    "checkpoint": SignedTreeHead.from_bytes,
    "transaction": Transaction.from_bytes,
}


@pytest.mark.parametrize(
    ("kind", "desc"),
    [(k, d) for k, cases in FMT["malformed"].items() for d in cases],
)
def test_malformed_encodings_are_rejected(kind: str, desc: str) -> None:
    with pytest.raises(LedgerDecodeError):
        _DECODERS[kind](unhex(FMT["malformed"][kind][desc]))


# -- round trips -------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=12)
rules = st.builds(
    AccessRule,
    role=ids,
    action=st.sampled_from([TxType.ACCESS, TxType.OBSERVE]),
    devices=st.frozensets(ids, max_size=4),
    all_devices=st.booleans(),
)
headers = st.builds(
    PrivacyHeader,
    facility_id=ids,
    version=st.integers(0, 2**63 - 1),
    authorized_devices=st.frozensets(ids, max_size=6),
    rules=st.lists(rules, max_size=5, unique_by=lambda r: (r.role, r.action)).map(tuple),
)
transactions = st.builds(
    Transaction,
    seq=st.integers(0, 2**63 - 1),
    tx_type=st.sampled_from(list(TxType)),
    generator_id=ids,
    time=st.integers(0, 2**63 - 1),
    body=st.binary(max_size=64),
    signature=st.binary(max_size=64),
)


@given(headers)
def test_privacy_header_round_trip(header: PrivacyHeader) -> None:
    raw = header.to_bytes()
    assert PrivacyHeader.from_bytes(raw) == header
    assert PrivacyHeader.from_bytes(raw).digest() == header.digest()


@given(transactions)
def test_transaction_round_trip(tx: Transaction) -> None:
    assert Transaction.from_bytes(tx.to_bytes()) == tx


@given(headers, st.binary(min_size=64, max_size=64))
def test_block_round_trip(policy: PrivacyHeader, signature: bytes) -> None:
    header = BlockHeader(
        log_id=b"\x01" * 32,
        index=3,
        prev_hash=b"\x02" * 32,
        first_seq=5,
        tx_count=2,
        tx_root=b"\x03" * 32,
        tree_size=7,
        tree_root=b"\x04" * 32,
        time=9,
        privacy_header_hash=policy.digest(),
    )
    block = Block(header, signature, policy)
    assert Block.from_bytes(block.to_bytes()) == block


@given(st.binary(max_size=300))
def test_decoders_take_any_bytes(data: bytes) -> None:
    """Any input is either decoded or a LedgerDecodeError -- never anything else."""
    for decode in (
        PrivacyHeader.from_bytes,
        SignedTreeHead.from_bytes,
        Transaction.from_bytes,
        Block.from_bytes,
        Cosignature.from_bytes,
    ):
        with contextlib.suppress(LedgerDecodeError):
            decode(data)


@given(headers, st.integers(0, 400), st.integers(0, 255))
def test_corrupted_privacy_header_never_decodes_to_the_same_digest(
    header: PrivacyHeader, at: int, flip: int
) -> None:
    raw = bytearray(header.to_bytes())
    if flip == 0:
        return
    raw[at % len(raw)] ^= flip
    try:
        other = PrivacyHeader.from_bytes(bytes(raw))
    except LedgerDecodeError:
        return
    assert other.digest() != header.digest()


def test_non_canonical_sets_are_rejected() -> None:
    h = PrivacyHeader("f", 1, frozenset({"a", "b"}))
    raw = h.to_bytes()
    swapped = raw.replace(
        b"\x00\x00\x00\x01a\x00\x00\x00\x01b", b"\x00\x00\x00\x01b\x00\x00\x00\x01a"
    )
    assert swapped != raw
    with pytest.raises(LedgerDecodeError):
        PrivacyHeader.from_bytes(swapped)


def test_the_ledger_reads_with_the_one_reader_and_says_where_input_ends() -> None:
    from iomt.crypto import encoding as canonical
    from iomt.ledger.encoding import Reader

    assert issubclass(Reader, canonical.Reader)
    with pytest.raises(
        LedgerDecodeError, match=r"^x: truncated \(needed 5 bytes at offset 4\)$"
    ) as info:
        Reader(canonical.u32(5) + b"ab", "x").blob()
    assert (info.value.expected, info.value.computed) == (9, 6)
    r = Reader(canonical.lp32(b"ab") + b"!", "x")
    assert r.blob() == b"ab"
    with pytest.raises(LedgerDecodeError, match=r"^x: 1 trailing bytes$") as info:
        r.end()
    assert (info.value.expected, info.value.computed) == (6, 7)
