"""The RFC 9162 Merkle tree: CT vectors, naive-reference vectors, properties, mutations."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.ledger import (
    EMPTY_ROOT,
    ConsistencyProof,
    ConsistencyProofError,
    InclusionProof,
    InclusionProofError,
    LedgerDecodeError,
    LedgerVerificationError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from iomt.ledger.merkle import (
    Frontier,
    NodeKey,
    consistency_ranges,
    hashes_for,
    inclusion_ranges,
    range_nodes,
    root_of,
)

from . import reference
from .vectors import load, unhex, unhex_all

CT = load("rfc6962_ct")
NAIVE = load("rfc9162_naive")


class Tree:
    """The library's tree: a frontier plus every complete node it produced (as a store)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.frontier = Frontier()
        self.nodes: dict[NodeKey, bytes] = {}
        self.roots = [EMPTY_ROOT]
        self.append_paths: list[tuple[bytes, ...]] = []
        for leaf in leaves:
            self.append_paths.append(self.frontier.next_inclusion_path())
            for level, index, h in self.frontier.append(leaf):
                self.nodes[level, index] = h
            self.roots.append(self.frontier.root())

    def inclusion(self, index: int, size: int) -> InclusionProof:
        return InclusionProof(index, size, hashes_for(inclusion_ranges(index, size), self.nodes))

    def consistency(self, m: int, n: int) -> ConsistencyProof:
        return ConsistencyProof(m, n, hashes_for(consistency_ranges(m, n), self.nodes))


# -- Certificate Transparency vectors (transparency-dev/merkle) --------------------------------


def test_ct_roots_and_nodes() -> None:
    entries = unhex_all(CT["leaves"])
    tree = Tree([leaf_hash(e) for e in entries])
    assert [r.hex() for r in tree.roots] == CT["roots"]
    for level, row in enumerate(CT["nodes"]):
        for index, h in enumerate(row):
            assert tree.nodes[level, index].hex() == h


@pytest.mark.parametrize("case", CT["inclusion"], ids=lambda c: c["desc"])
def test_ct_inclusion_vectors(case: dict) -> None:
    proof = InclusionProof(case["leaf_index"], case["tree_size"], unhex_all(case["proof"]))
    leaf, root = unhex(case["leaf_hash"]), unhex(case["root"])
    if case["valid"]:
        verify_inclusion(leaf, proof, root)
    else:
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaf, proof, root)


@pytest.mark.parametrize("case", CT["consistency"], ids=lambda c: c["desc"])
def test_ct_consistency_vectors(case: dict) -> None:
    proof = ConsistencyProof(case["first_size"], case["second_size"], unhex_all(case["proof"]))
    r1, r2 = unhex(case["first_root"]), unhex(case["second_root"])
    if case["valid"]:
        verify_consistency(proof, r1, r2)
    else:
        with pytest.raises(ConsistencyProofError):
            verify_consistency(proof, r1, r2)


def test_ct_proofs_are_generated_exactly() -> None:
    tree = Tree([leaf_hash(e) for e in unhex_all(CT["leaves"])])
    for case in CT["inclusion"]:
        if case["valid"] and case["desc"].startswith("ct"):
            got = tree.inclusion(case["leaf_index"], case["tree_size"])
            assert [h.hex() for h in got.path] == case["proof"], case["desc"]
    for case in CT["consistency"]:
        if case["valid"] and case["desc"].startswith("ct"):
            got = tree.consistency(case["first_size"], case["second_size"])
            assert [h.hex() for h in got.path] == case["proof"], case["desc"]


# -- vectors from the naive recursive reference ------------------------------------------------


def test_naive_vectors_generate_and_verify() -> None:
    entries = [e.encode() for e in NAIVE["entries"]]
    tree = Tree([leaf_hash(e) for e in entries])
    roots = {int(k): unhex(v) for k, v in NAIVE["roots"].items()}
    for n, root in roots.items():
        assert tree.roots[n] == root
    for case in NAIVE["inclusion"]:
        i, n = case["leaf_index"], case["tree_size"]
        proof = tree.inclusion(i, n)
        assert [h.hex() for h in proof.path] == case["proof"]
        verify_inclusion(leaf_hash(entries[i]), proof, roots[n])
    for case in NAIVE["consistency"]:
        m, n = case["first_size"], case["second_size"]
        proof = tree.consistency(m, n)
        assert [h.hex() for h in proof.path] == case["proof"]
        verify_consistency(proof, tree.roots[m], roots[n])


# -- properties --------------------------------------------------------------------------------

entry_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@given(entries=entry_lists, data=st.data())
@settings(max_examples=60, deadline=None)
def test_every_proof_matches_the_reference_and_verifies(entries: list[bytes], data) -> None:
    tree = Tree([leaf_hash(e) for e in entries])
    n = len(entries)
    assert tree.roots[n] == reference.mth(entries)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = tree.inclusion(index, size)
    assert list(proof.path) == reference.path(index, entries[:size])
    verify_inclusion(leaf_hash(entries[index]), proof, reference.mth(entries[:size]))
    m = data.draw(st.integers(0, n), label="m")
    k = data.draw(st.integers(m, n), label="n")
    cproof = tree.consistency(m, k)
    assert list(cproof.path) == reference.proof(m, entries[:k])
    verify_consistency(cproof, reference.mth(entries[:m]), reference.mth(entries[:k]))


@given(entries=entry_lists)
@settings(max_examples=40, deadline=None)
def test_append_path_is_the_inclusion_proof_of_the_new_leaf(entries: list[bytes]) -> None:
    tree = Tree([leaf_hash(e) for e in entries])
    for i, path in enumerate(tree.append_paths):
        assert list(path) == reference.path(i, entries[: i + 1])


def _mutations(path: tuple[bytes, ...], draw) -> tuple[bytes, ...]:
    kind = draw(st.sampled_from(["flip", "drop", "extra", "swap", "replace"]))
    p = list(path)
    if kind == "flip" and p:
        i = draw(st.integers(0, len(p) - 1))
        bit = draw(st.integers(0, 255))
        raw = bytearray(p[i])
        raw[bit // 8] ^= 1 << (bit % 8)
        p[i] = bytes(raw)
    elif kind == "drop" and p:
        del p[draw(st.integers(0, len(p) - 1))]
    elif kind == "swap" and len(p) > 1 and p[0] != p[-1]:
        p[0], p[-1] = p[-1], p[0]
    elif kind == "replace" and p:
        p[draw(st.integers(0, len(p) - 1))] = draw(st.binary(min_size=32, max_size=32))
    else:
        p.insert(draw(st.integers(0, len(p))), draw(st.binary(min_size=32, max_size=32)))
    return tuple(p)


# Mutations of the proof itself, the leaf, the leaf index or a root must fail. (Changing only
# a claimed tree *size* is not detectable by the proof alone in every case -- e.g. a size-3 root
# presented as a size-4 root -- which is why sizes and roots travel together in signed
# checkpoints; the CT vectors above still check the size mutations upstream tests make.)
unique_entries = st.lists(st.binary(max_size=8), min_size=2, max_size=40, unique=True)


@given(entries=unique_entries, data=st.data())
@settings(max_examples=80, deadline=None)
def test_any_mutated_inclusion_proof_or_leaf_fails(entries: list[bytes], data) -> None:
    tree = Tree([leaf_hash(e) for e in entries])
    n = len(entries)
    size = data.draw(st.integers(2, n))
    index = data.draw(st.integers(0, size - 1))
    proof, root, leaf = tree.inclusion(index, size), tree.roots[size], leaf_hash(entries[index])
    target = data.draw(st.sampled_from(["path", "leaf", "index", "root"]))
    if target == "path":
        bad_path = _mutations(proof.path, data.draw)
        args = (leaf, InclusionProof(index, size, bad_path), root)
    elif target == "leaf":
        other = data.draw(st.binary(max_size=9).filter(lambda e: e != entries[index]))
        args = (leaf_hash(other), proof, root)
    elif target == "index":
        other_index = data.draw(st.integers(0, 2 * size).filter(lambda i: i != index))
        args = (leaf, InclusionProof(other_index, size, proof.path), root)
    else:
        args = (
            leaf,
            proof,
            data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != root)),
        )
    with pytest.raises(InclusionProofError):
        verify_inclusion(*args)


@given(entries=unique_entries, data=st.data())
@settings(max_examples=80, deadline=None)
def test_any_mutated_consistency_proof_fails(entries: list[bytes], data) -> None:
    tree = Tree([leaf_hash(e) for e in entries])
    n = len(entries)
    second = data.draw(st.integers(2, n))
    first = data.draw(st.integers(1, second - 1))
    proof = tree.consistency(first, second)
    r1, r2 = tree.roots[first], tree.roots[second]
    other_hash = st.binary(min_size=32, max_size=32)
    target = data.draw(st.sampled_from(["path", "root1", "root2"]))
    if target == "path":
        bad = _mutations(proof.path, data.draw)
        args = (ConsistencyProof(first, second, bad), r1, r2)
    elif target == "root1":
        args = (proof, data.draw(other_hash.filter(lambda r: r != r1)), r2)
    else:
        args = (proof, r1, data.draw(other_hash.filter(lambda r: r != r2)))
    with pytest.raises(ConsistencyProofError) as info:
        verify_consistency(*args)
    assert isinstance(info.value, LedgerVerificationError)


def test_errors_carry_expected_and_computed_roots() -> None:
    entries = [b"a", b"b", b"c"]
    tree = Tree([leaf_hash(e) for e in entries])
    wrong = bytes(32)
    with pytest.raises(InclusionProofError) as info:
        verify_inclusion(leaf_hash(b"a"), tree.inclusion(0, 3), wrong)
    assert info.value.expected == wrong
    assert info.value.computed == tree.roots[3]
    with pytest.raises(ConsistencyProofError) as cinfo:
        verify_consistency(tree.consistency(1, 3), tree.roots[1], wrong)
    assert cinfo.value.expected == (tree.roots[1], wrong)
    assert cinfo.value.computed == (tree.roots[1], tree.roots[3])


def test_root_of_and_range_nodes() -> None:
    entries = [bytes([i]) for i in range(13)]
    leaves = [leaf_hash(e) for e in entries]
    assert root_of(leaves) == reference.mth(entries)
    assert root_of([]) == EMPTY_ROOT
    assert range_nodes(0, 13) == [(3, 0), (2, 2), (0, 12)]
    with pytest.raises(ValueError):
        range_nodes(1, 5)
    with pytest.raises(ValueError):
        inclusion_ranges(3, 3)
    with pytest.raises(ValueError):
        Frontier(3, [bytes(32)])


@given(
    index=st.integers(0, 2**63 - 1),
    size=st.integers(0, 2**63 - 1),
    path=st.lists(st.binary(min_size=32, max_size=32), max_size=5),
)
def test_proof_wire_round_trip(index: int, size: int, path: list[bytes]) -> None:
    p = InclusionProof(index, size, tuple(path))
    assert InclusionProof.from_bytes(p.to_bytes()) == p
    c = ConsistencyProof(index, size, tuple(path))
    assert ConsistencyProof.from_bytes(c.to_bytes()) == c


@given(st.binary(max_size=200))
def test_proof_decoders_take_any_bytes(data: bytes) -> None:
    for cls in (InclusionProof, ConsistencyProof):
        with contextlib.suppress(LedgerDecodeError):
            cls.from_bytes(data)
