"""Policies: grammar, canonical form, and that the LSSS matrix is exactly the formula."""

from __future__ import annotations

import pytest
from crypto_vectors import error, params
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.crypto.abe.policy import CURVE_ORDER, Attribute, Gate, Policy
from iomt.crypto.errors import PolicySyntaxError

UNIVERSE = ["a", "b", "c", "d", "e", "role:doctor"]


def _gate(children: list) -> st.SearchStrategy:
    return st.integers(1, len(children)).map(lambda k: Gate(k, tuple(children)))


nodes = st.recursive(
    st.sampled_from(UNIVERSE).map(Attribute),
    lambda inner: st.lists(inner, min_size=2, max_size=4).flatmap(_gate),
    max_leaves=10,
)


def _in_span(rows: list[dict[int, int]], columns: int) -> bool:
    """Is e1 in the span of ``rows`` over Z_r? (Gaussian elimination on the transpose.)"""
    # Solve sum_i x_i * rows[i] = e1: columns equations, len(rows) unknowns.
    n = len(rows)
    matrix = [
        [rows[i].get(col, 0) % CURVE_ORDER for i in range(n)] + [1 if col == 0 else 0]
        for col in range(columns)
    ]
    rank_row = 0
    for c in range(n):
        pivot = next((r for r in range(rank_row, len(matrix)) if matrix[r][c]), None)
        if pivot is None:
            continue
        matrix[rank_row], matrix[pivot] = matrix[pivot], matrix[rank_row]
        inv = pow(matrix[rank_row][c], -1, CURVE_ORDER)
        matrix[rank_row] = [v * inv % CURVE_ORDER for v in matrix[rank_row]]
        for r in range(len(matrix)):
            if r != rank_row and matrix[r][c]:
                f = matrix[r][c]
                matrix[r] = [
                    (v - f * p) % CURVE_ORDER
                    for v, p in zip(matrix[r], matrix[rank_row], strict=True)
                ]
        rank_row += 1
    # inconsistent iff a zero row has a non-zero right-hand side
    return all(any(row[:-1]) or row[-1] == 0 for row in matrix)


@pytest.mark.parametrize("v", params("policies", key="valid"))
def test_policy_vectors(v: dict) -> None:
    policy = Policy.parse(v["policy"])
    assert str(policy) == v["canonical"]
    assert Policy.parse(str(policy)) == policy
    for attrs in v["satisfied_by"]:
        assert policy.satisfied_by(attrs)
        assert policy.solve(lambda label, a=frozenset(attrs): label[0] in a) is not None
    for attrs in v["not_satisfied_by"]:
        assert not policy.satisfied_by(attrs)
        assert policy.solve(lambda label, a=frozenset(attrs): label[0] in a) is None


@pytest.mark.parametrize("v", params("policies", key="invalid"))
def test_invalid_policies(v: dict) -> None:
    with pytest.raises(error(v["error"])):
        Policy.parse(v["policy"])


@settings(deadline=None)
@given(nodes)
def test_canonical_form_round_trips(node: Attribute | Gate) -> None:
    policy = Policy.from_node(node)
    assert Policy.parse(str(policy)) == policy
    assert str(Policy.parse(str(policy))) == str(policy)


@settings(deadline=None)
@given(nodes, st.sets(st.sampled_from(UNIVERSE)))
def test_lsss_matrix_is_exactly_the_formula(node: Attribute | Gate, attrs: set[str]) -> None:
    policy = Policy.from_node(node)
    msp = policy.msp()
    satisfied = policy.satisfied_by(attrs)
    owned = [msp.rows[i] for i, (name, _) in enumerate(msp.labels) if name in attrs]
    # the span condition is the formula: authorized sets reach e1, others cannot
    assert _in_span(owned, msp.columns) == satisfied
    solution = policy.solve(lambda label: label[0] in attrs)
    assert (solution is not None) == satisfied
    if solution is not None:
        assert all(msp.labels[i][0] in attrs for i in solution)
        combined = [
            sum(c * msp.rows[i].get(col, 0) for i, c in solution.items()) % CURVE_ORDER
            for col in range(msp.columns)
        ]
        assert combined == [1] + [0] * (msp.columns - 1)
        # AND-groups (one aggregated FAME row each) are used all-or-nothing, one coefficient
        for group in msp.groups:
            used = {solution.get(i) for i in group}
            assert len(used) == 1


@settings(deadline=None)
@given(nodes)
def test_and_groups_partition_the_rows(node: Attribute | Gate) -> None:
    msp = Policy.from_node(node).msp()
    flat = [i for g in msp.groups for i in g]
    assert sorted(flat) == list(range(len(msp.rows)))
    for group in msp.groups:  # a group's summed row has no fresh-column residue but its own
        assert group == tuple(sorted(group))


def test_and_groups_examples() -> None:
    assert Policy.parse("a AND b AND c").groups == ((0, 1, 2),)
    assert Policy.parse("a OR b").groups == ((0,), (1,))
    assert Policy.parse("(a AND b) OR (c AND d)").groups == ((0, 1), (2, 3))
    assert Policy.parse("a AND (b OR c) AND d").groups == ((0, 3), (1,), (2,))
    assert Policy.parse("2 of (a AND d, b, c)").groups == ((0, 1), (2,), (3,))


def test_repeated_attributes_get_distinct_labels() -> None:
    policy = Policy.parse("(a AND b) OR (c AND a) OR (a AND d)")
    assert policy.labels == (("a", 1), ("b", 1), ("c", 1), ("a", 2), ("a", 3), ("d", 1))
    assert policy.max_occurrence == 3


def test_keywords_are_not_attributes_and_gates_are_bounded() -> None:
    with pytest.raises(PolicySyntaxError):
        Policy.all_of(["and"])
    with pytest.raises(PolicySyntaxError):
        Policy.any_of([])
    with pytest.raises(PolicySyntaxError):
        Policy.any_of([f"x{i}" for i in range(65)])


@settings(deadline=None)
@given(st.text(max_size=80))
def test_any_string_parses_or_raises_policy_syntax_error(text: str) -> None:
    try:
        policy = Policy.parse(text)
    except PolicySyntaxError:
        return
    assert Policy.parse(str(policy)) == policy
