"""Every refusal of the Merkle proof verifiers, with its message and its evidence.

A cluster head that rejects a bolster's proof reports why, with the roots that disagreed
(``expected`` / ``computed``); these tests pin both for every check, and each bound on both
sides. Written against mutation testing (docs/testing.md)."""

from __future__ import annotations

import re

import pytest

from iomt.ledger import ConsistencyProofError, InclusionProofError, LedgerDecodeError
from iomt.ledger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    Frontier,
    InclusionProof,
    NodeKey,
    consistency_ranges,
    hashes_for,
    inclusion_ranges,
    leaf_hash,
    range_nodes,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

from . import reference

H = bytes(range(32))


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


class Tree:
    def __init__(self, n: int) -> None:
        self.entries = [b"leaf %d" % i for i in range(n)]
        self.frontier = Frontier()
        self.nodes: dict[NodeKey, bytes] = {}
        self.roots = [EMPTY_ROOT]
        for entry in self.entries:
            for level, index, h in self.frontier.append(leaf_hash(entry)):
                self.nodes[level, index] = h
            self.roots.append(self.frontier.root())

    def consistency(self, m: int, n: int) -> ConsistencyProof:
        return ConsistencyProof(m, n, hashes_for(consistency_ranges(m, n), self.nodes))

    def inclusion(self, i: int, n: int) -> InclusionProof:
        return InclusionProof(i, n, hashes_for(inclusion_ranges(i, n), self.nodes))


TREE = Tree(20)


def test_every_consistency_and_inclusion_proof_up_to_20_leaves_verifies() -> None:
    for n in range(1, 21):
        for m in range(0, n + 1):
            proof = TREE.consistency(m, n)
            assert list(proof.path) == reference.proof(m, TREE.entries[:n])
            verify_consistency(proof, TREE.roots[m], TREE.roots[n])
        for i in range(n):
            verify_inclusion(leaf_hash(TREE.entries[i]), TREE.inclusion(i, n), TREE.roots[n])


# -- consistency ----------------------------------------------------------------------------


def _refused(proof: ConsistencyProof, first: bytes, second: bytes) -> ConsistencyProofError:
    with pytest.raises(ConsistencyProofError) as info:
        verify_consistency(proof, first, second)
    return info.value


@pytest.mark.parametrize(("m", "n"), [(3, 2), (-1, 2), ("1", 2), (1, "2")])
def test_sizes_out_of_order_or_not_integers_are_refused(m: object, n: object) -> None:
    err = _refused(ConsistencyProof(m, n, ()), H, H)  # type: ignore[arg-type]
    assert str(err) == f"need 0 <= first size <= second size, got {m}, {n}"
    assert (err.expected, err.computed) == ("m <= n", m)


@pytest.mark.parametrize(("first", "second"), [(H[:31], H), (H, H[:31]), (H + b"x", H)])
def test_roots_must_be_hashes(first: bytes, second: bytes) -> None:
    assert str(_refused(TREE.consistency(2, 4), first, second)) == "roots must be 32 bytes"


def test_proof_hashes_must_be_hashes() -> None:
    proof = TREE.consistency(3, 7)
    bad = ConsistencyProof(3, 7, (*proof.path[:-1], proof.path[-1][:31]))
    err = _refused(bad, TREE.roots[3], TREE.roots[7])
    assert str(err) == "consistency proof hashes must be 32 bytes each"


def test_a_proof_from_the_empty_tree_or_to_itself_must_be_empty() -> None:
    err = _refused(ConsistencyProof(0, 5, (H,)), EMPTY_ROOT, TREE.roots[5])
    assert str(err) == "consistency proof from size 0 to 5 must be empty"
    assert (err.expected, err.computed) == (0, 1)
    err = _refused(ConsistencyProof(5, 5, (H, H)), TREE.roots[5], TREE.roots[5])
    assert str(err) == "consistency proof from size 5 to 5 must be empty"
    assert (err.expected, err.computed) == (0, 2)


def test_the_empty_tree_has_one_root() -> None:
    verify_consistency(ConsistencyProof(0, 5, ()), EMPTY_ROOT, TREE.roots[5])
    err = _refused(ConsistencyProof(0, 5, ()), H, TREE.roots[5])
    assert str(err) == "first root is not the empty tree's root"
    assert (err.expected, err.computed) == (H, EMPTY_ROOT)


def test_one_size_has_one_root() -> None:
    verify_consistency(ConsistencyProof(4, 4, ()), TREE.roots[4], TREE.roots[4])
    err = _refused(ConsistencyProof(4, 4, ()), TREE.roots[4], H)
    assert str(err) == "two different roots for tree size 4"
    assert (err.expected, err.computed) == (TREE.roots[4], H)


def test_an_empty_proof_between_different_sizes_is_refused() -> None:
    err = _refused(ConsistencyProof(3, 5, ()), TREE.roots[3], TREE.roots[5])
    assert str(err) == "empty consistency proof from size 3 to 5"
    assert (err.expected, err.computed) == (">= 1", 0)


def test_a_proof_too_long_or_too_short_says_so() -> None:
    proof = TREE.consistency(3, 7)
    err = _refused(ConsistencyProof(3, 7, (*proof.path, H)), TREE.roots[3], TREE.roots[7])
    assert str(err) == "consistency proof from size 3 to 7 is too long"
    assert (err.expected, err.computed) == (None, len(proof.path) + 1)
    err = _refused(ConsistencyProof(3, 7, proof.path[:-1]), TREE.roots[3], TREE.roots[7])
    assert str(err) == "consistency proof from size 3 to 7 is too short"
    assert (err.expected, err.computed) == (None, len(proof.path) - 1)


def test_a_proof_that_does_not_reproduce_both_roots_shows_both() -> None:
    proof = TREE.consistency(3, 7)
    err = _refused(proof, TREE.roots[3], H)
    assert str(err) == "consistency proof from size 3 to 7 does not reproduce both roots"
    assert err.expected == (TREE.roots[3], H)
    assert err.computed == (TREE.roots[3], TREE.roots[7])
    err = _refused(proof, H, TREE.roots[7])
    assert err.computed == (TREE.roots[3], TREE.roots[7])


# -- inclusion ----------------------------------------------------------------------------------


def _not_included(leaf: bytes, proof: InclusionProof, root: bytes) -> InclusionProofError:
    with pytest.raises(InclusionProofError) as info:
        verify_inclusion(leaf, proof, root)
    return info.value


@pytest.mark.parametrize(("i", "n"), [(5, 5), (-1, 5), (0, 0)])
def test_a_leaf_index_outside_the_tree_is_refused(i: int, n: int) -> None:
    err = _not_included(H, InclusionProof(i, n, ()), H)
    assert str(err) == f"leaf index {i} is not in a tree of size {n}"
    assert (err.expected, err.computed) == (f"< {n}", i)


def test_inclusion_indexes_must_be_integers() -> None:
    err = _not_included(H, InclusionProof("0", 5, ()), H)  # type: ignore[arg-type]
    assert str(err) == "leaf index and tree size must be integers"


def test_inclusion_hashes_and_root_must_be_hashes() -> None:
    proof = TREE.inclusion(2, 7)
    leaf = leaf_hash(TREE.entries[2])
    assert str(_not_included(leaf, proof, H[:31])) == "root must be 32 bytes"
    assert str(_not_included(leaf[:31], proof, TREE.roots[7])) == (
        "inclusion proof hashes must be 32 bytes each"
    )
    short = InclusionProof(2, 7, (*proof.path[:-1], proof.path[-1][:31]))
    assert str(_not_included(leaf, short, TREE.roots[7])) == (
        "inclusion proof hashes must be 32 bytes each"
    )


def test_an_inclusion_proof_too_long_or_too_short_says_so() -> None:
    proof = TREE.inclusion(2, 7)
    leaf = leaf_hash(TREE.entries[2])
    err = _not_included(leaf, InclusionProof(2, 7, (*proof.path, H)), TREE.roots[7])
    assert str(err) == "inclusion proof is longer than the tree is deep"
    assert (err.expected, err.computed) == (len(proof.path), len(proof.path) + 1)
    err = _not_included(leaf, InclusionProof(2, 7, proof.path[:-1]), TREE.roots[7])
    assert str(err) == "inclusion proof is shorter than the tree is deep"
    assert (err.expected, err.computed) == (
        f"more than {len(proof.path) - 1} hashes",
        len(proof.path) - 1,
    )


def test_an_inclusion_proof_to_another_root_shows_both() -> None:
    proof = TREE.inclusion(2, 7)
    err = _not_included(leaf_hash(TREE.entries[2]), proof, H)
    assert str(err) == "inclusion proof for leaf 2 in tree of size 7 does not lead to the root"
    assert (err.expected, err.computed) == (H, TREE.roots[7])
    assert (
        root_from_inclusion_proof(2, 7, leaf_hash(TREE.entries[2]), proof.path) == (TREE.roots[7])
    )


# -- planning and decoding ------------------------------------------------------------------------


def test_proof_plans_refuse_impossible_sizes() -> None:
    with raises(ValueError, "leaf index 5 not in a tree of size 5"):
        inclusion_ranges(5, 5)
    with raises(ValueError, "need 0 <= first <= second, got 6, 5"):
        consistency_ranges(6, 5)


def test_a_truncated_proof_names_its_kind() -> None:
    inclusion = TREE.inclusion(2, 7).to_bytes()
    consistency = TREE.consistency(3, 7).to_bytes()
    with pytest.raises(LedgerDecodeError, match=r"^inclusion proof: "):
        InclusionProof.from_bytes(inclusion[:-1])
    with pytest.raises(LedgerDecodeError, match=r"^consistency proof: "):
        ConsistencyProof.from_bytes(consistency[:-1])
    assert InclusionProof.from_bytes(inclusion) == TREE.inclusion(2, 7)
    assert ConsistencyProof.from_bytes(consistency) == TREE.consistency(3, 7)


def test_a_range_that_is_not_a_subtree_and_a_frontier_of_the_wrong_size_are_refused() -> None:
    with raises(ValueError, "range [1, 4) is not a subtree of the log"):
        range_nodes(1, 4)
    with raises(ValueError, "a frontier of size 3 has 2 subtrees"):
        Frontier(3, (H,))


def test_a_root_or_leaf_that_is_not_bytes_is_refused_even_at_the_right_length() -> None:
    proof = TREE.inclusion(2, 7)
    text_root = "r" * 32
    assert str(_not_included(leaf_hash(TREE.entries[2]), proof, text_root)) == (  # type: ignore[arg-type]
        "root must be 32 bytes"
    )
