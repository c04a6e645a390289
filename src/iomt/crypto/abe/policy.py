"""CP-ABE access policies: parse, canonicalize, convert to an LSSS matrix, reconstruct.

A policy is a monotone boolean formula over attribute strings::

    role:cardiologist AND facility:F1
    (role:doctor OR role:nurse) AND facility:F1
    2 of (role:doctor, dept:icu, shift:night) AND facility:F1

``AND`` binds tighter than ``OR``; keywords are case-insensitive; ``k of (p1, ..., pn)`` is
a threshold gate. Attributes are ``[A-Za-z0-9_:.@#/=+-]+`` and case-sensitive.

FAME needs the formula as a monotone span program (M, rho): one row per leaf, a secret
vector e1 = (1, 0, ..., 0) reachable exactly by the rows of satisfying attribute sets.
``Policy.msp()`` builds it by the Lewko-Waters construction generalized to n-ary gates:

* OR: every child inherits the parent's vector.
* AND of n: n - 1 fresh columns, telescoping — child 1 gets v + e_c1, child m gets
  -e_c(m-1) + e_cm, child n gets -e_c(n-1); the children sum to v (all coefficients 1).
* k of n: k - 1 fresh columns, child i (i = 1..n) gets v + sum_m i^m e_cm — Shamir's
  polynomial in matrix form; any k children reach v with Lagrange coefficients at 0,
  fewer cannot (a Vandermonde argument).

``Policy.solve`` picks the cheapest satisfying set of rows and their coefficients
(mostly 1, so FAME decryption needs group additions only, no exponentiations).

Repeated attributes are labelled by occurrence, ``(attribute, 1)``, ``(attribute, 2)``, so
every row carries a distinct label: FAME shares one encryption randomness across rows,
and two rows with the same hash would cancel in a quotient and leak a "free" row (the
classic attribute-reuse attack). User keys hold components for occurrences 1..max_reuse.

Inputs are bounded (length, leaves, depth, gate width) because policies arrive inside
ciphertexts from the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from iomt.crypto.errors import PolicySyntaxError

__all__ = [
    "MAX_DEPTH",
    "MAX_GATE_WIDTH",
    "MAX_LEAVES",
    "MAX_POLICY_CHARS",
    "Attribute",
    "Gate",
    "Label",
    "Msp",
    "Policy",
    "validate_attribute",
]

MAX_POLICY_CHARS = 4096
MAX_LEAVES = 256
MAX_DEPTH = 32
MAX_GATE_WIDTH = 64

# BLS12-381 group order: LSSS coefficients live in Z_r.
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

_ATTRIBUTE_RE = re.compile(r"[A-Za-z0-9_:.@#/=+\-]+")
_TOKEN_RE = re.compile(r"\s*(?:(?P<punct>[(),])|(?P<word>[A-Za-z0-9_:.@#/=+\-]+))")
_KEYWORDS = {"and", "or", "of"}

Label = tuple[str, int]
"""A row label: (attribute, occurrence number starting at 1)."""


def validate_attribute(name: str) -> str:
    """Return ``name`` if it is a legal attribute string, else raise PolicySyntaxError."""
    if not isinstance(name, str) or not _ATTRIBUTE_RE.fullmatch(name):
        raise PolicySyntaxError(f"invalid attribute {name!r}: use [A-Za-z0-9_:.@#/=+-]")
    if name.lower() in _KEYWORDS:
        raise PolicySyntaxError(f"{name!r} is a keyword, not an attribute")
    if len(name) > 255:
        raise PolicySyntaxError("attributes are at most 255 characters")
    return name


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Gate:
    """``threshold`` of ``children``: AND when threshold == len, OR when threshold == 1."""

    threshold: int
    children: tuple[Attribute | Gate, ...]

    @property
    def is_and(self) -> bool:
        return self.threshold == len(self.children)

    @property
    def is_or(self) -> bool:
        return self.threshold == 1

    def __str__(self) -> str:
        parts = [str(c) for c in self.children]
        if self.is_and:
            return "(" + " AND ".join(parts) + ")"
        if self.is_or:
            return "(" + " OR ".join(parts) + ")"
        return f"{self.threshold} of (" + ", ".join(parts) + ")"


Node = Attribute | Gate


@dataclass(frozen=True, slots=True)
class Msp:
    """A monotone span program: sparse integer rows over ``columns`` columns, labelled.

    ``groups`` partitions the rows into sets that any solution uses all-or-nothing with
    one common coefficient: the leaves joined by AND gates only. (FAME ciphertexts carry
    one aggregated row per group; see :mod:`.fame`.)
    """

    rows: tuple[dict[int, int], ...]
    labels: tuple[Label, ...]
    columns: int
    groups: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A parsed, canonical policy. Equal policies have equal ``str()``."""

    root: Node
    _text: str = field(repr=False)
    _msp: Msp = field(repr=False)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Policy:
        if not isinstance(text, str):
            raise PolicySyntaxError("policy must be a string")
        if len(text) > MAX_POLICY_CHARS:
            raise PolicySyntaxError(f"policy longer than {MAX_POLICY_CHARS} characters")
        root = _Parser(text).parse()
        return cls.from_node(root)

    @classmethod
    def from_node(cls, root: Node) -> Policy:
        root = _normalize(root)
        leaves = sum(1 for _ in _leaves(root))
        if leaves > MAX_LEAVES:
            raise PolicySyntaxError(f"policy has {leaves} attributes, limit is {MAX_LEAVES}")
        if _depth(root) > MAX_DEPTH:
            raise PolicySyntaxError(f"policy nests deeper than {MAX_DEPTH}")
        text = str(root)
        if isinstance(root, Gate) and (root.is_and or root.is_or):
            text = text[1:-1]  # no redundant outer parentheses
        return cls(root, text, _build_msp(root))

    @classmethod
    def all_of(cls, attributes: Iterable[str]) -> Policy:
        attrs = tuple(Attribute(validate_attribute(a)) for a in attributes)
        if not attrs:
            raise PolicySyntaxError("a policy needs at least one attribute")
        return cls.from_node(Gate(len(attrs), attrs) if len(attrs) > 1 else attrs[0])

    @classmethod
    def any_of(cls, attributes: Iterable[str]) -> Policy:
        attrs = tuple(Attribute(validate_attribute(a)) for a in attributes)
        if not attrs:
            raise PolicySyntaxError("a policy needs at least one attribute")
        return cls.from_node(Gate(1, attrs) if len(attrs) > 1 else attrs[0])

    # -- views ------------------------------------------------------------------------

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Policy({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    @property
    def attributes(self) -> frozenset[str]:
        return frozenset(a.name for a in _leaves(self.root))

    @property
    def labels(self) -> tuple[Label, ...]:
        """One label per leaf (= per MSP row), in left-to-right order."""
        return self._msp.labels

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """Row indices that are always used together (AND-joined leaves), in row order."""
        return self._msp.groups

    @property
    def max_occurrence(self) -> int:
        return max(occ for _, occ in self._msp.labels)

    def msp(self) -> Msp:
        return self._msp

    # -- evaluation -------------------------------------------------------------------

    def satisfied_by(self, attributes: Iterable[str]) -> bool:
        have = frozenset(attributes)
        return _satisfied(self.root, have)

    def solve(self, usable: Callable[[Label], bool]) -> dict[int, int] | None:
        """Rows and coefficients (mod r) with sum(coeff * row) = e1, or None.

        ``usable(label)`` says whether the opener holds a key component for that row.
        The selection minimizes the number of rows (each costs a point decode in FAME).
        """
        counter = iter(range(len(self._msp.labels)))
        return _solve(self.root, self._msp.labels, usable, counter)


# --- parsing -------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.depth = 0

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens: list[str] = []
        pos = 0
        stripped_end = len(text.rstrip())
        while pos < stripped_end:
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise PolicySyntaxError(f"unexpected character {text[pos]!r} at {pos}")
            tokens.append(m.group("punct") or m.group("word"))
            pos = m.end()
        if not tokens:
            raise PolicySyntaxError("empty policy")
        return tokens

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> str:
        tok = self.peek()
        if tok is None:
            raise PolicySyntaxError("policy ends early")
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise PolicySyntaxError(f"expected {tok!r}, found {got!r}")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise PolicySyntaxError(f"unexpected {self.peek()!r} after a complete policy")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise PolicySyntaxError(f"policy nests deeper than {MAX_DEPTH}")
        terms = [self.term()]
        while (tok := self.peek()) is not None and tok.lower() == "or":
            self.next()
            terms.append(self.term())
        self.depth -= 1
        return terms[0] if len(terms) == 1 else Gate(1, tuple(terms))

    def term(self) -> Node:
        factors = [self.factor()]
        while (tok := self.peek()) is not None and tok.lower() == "and":
            self.next()
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else Gate(len(factors), tuple(factors))

    def factor(self) -> Node:
        tok = self.next()
        if tok == "(":
            node = self.expr()
            self.expect(")")
            return node
        if tok in {")", ","}:
            raise PolicySyntaxError(f"unexpected {tok!r}")
        nxt = self.peek()
        if tok.isdigit() and nxt is not None and nxt.lower() == "of":
            self.next()
            return self.threshold(int(tok))
        if tok.lower() in _KEYWORDS:
            raise PolicySyntaxError(f"unexpected keyword {tok!r}")
        return Attribute(validate_attribute(tok))

    def threshold(self, k: int) -> Node:
        self.expect("(")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise PolicySyntaxError(f"policy nests deeper than {MAX_DEPTH}")
        children = [self.expr()]
        while self.peek() == ",":
            self.next()
            children.append(self.expr())
        self.expect(")")
        self.depth -= 1
        n = len(children)
        if not 1 <= k <= n:
            raise PolicySyntaxError(f"threshold {k} of {n} is impossible")
        return Gate(k, tuple(children))


def _normalize(node: Node) -> Node:
    """Flatten nested AND/AND and OR/OR, collapse single-child gates; bound widths."""
    if isinstance(node, Attribute):
        return Attribute(validate_attribute(node.name))
    children = tuple(_normalize(c) for c in node.children)
    if not children or not 1 <= node.threshold <= len(children):
        raise PolicySyntaxError(f"threshold {node.threshold} of {len(children)} is impossible")
    if len(children) == 1:
        return children[0]
    is_and = node.threshold == len(children)
    is_or = node.threshold == 1
    if is_and or is_or:
        flat: list[Node] = []
        for c in children:
            same = isinstance(c, Gate) and ((is_and and c.is_and) or (is_or and c.is_or))
            if same:
                assert isinstance(c, Gate)
                flat.extend(c.children)
            else:
                flat.append(c)
        children = tuple(flat)
        threshold = len(children) if is_and else 1
    else:
        threshold = node.threshold
    if len(children) > MAX_GATE_WIDTH:
        raise PolicySyntaxError(f"a gate has {len(children)} inputs, limit is {MAX_GATE_WIDTH}")
    return Gate(threshold, children)


def _leaves(node: Node) -> Iterator[Attribute]:
    if isinstance(node, Attribute):
        yield node
    else:
        for c in node.children:
            yield from _leaves(c)


def _depth(node: Node) -> int:
    if isinstance(node, Attribute):
        return 0
    return 1 + max(_depth(c) for c in node.children)


def _satisfied(node: Node, have: frozenset[str]) -> bool:
    if isinstance(node, Attribute):
        return node.name in have
    return sum(1 for c in node.children if _satisfied(c, have)) >= node.threshold


# --- LSSS ----------------------------------------------------------------------------


def _build_msp(root: Node) -> Msp:
    rows: list[dict[int, int]] = []
    labels: list[Label] = []
    seen: dict[str, int] = {}
    columns = 1  # column 0 carries the secret

    def visit(node: Node, vec: dict[int, int]) -> None:
        nonlocal columns
        if isinstance(node, Attribute):
            seen[node.name] = seen.get(node.name, 0) + 1
            rows.append(vec)
            labels.append((node.name, seen[node.name]))
            return
        n = len(node.children)
        if node.is_or:
            for c in node.children:
                visit(c, dict(vec))
            return
        if node.is_and:
            fresh = list(range(columns, columns + n - 1))
            columns += n - 1
            for m, c in enumerate(node.children):
                v: dict[int, int] = dict(vec) if m == 0 else {}
                if m > 0:
                    v[fresh[m - 1]] = -1
                if m < n - 1:
                    v[fresh[m]] = 1
                visit(c, v)
            return
        k = node.threshold
        fresh = list(range(columns, columns + k - 1))
        columns += k - 1
        for i, c in enumerate(node.children, start=1):
            v = dict(vec)
            for power, col in enumerate(fresh, start=1):
                v[col] = pow(i, power, CURVE_ORDER)
            visit(c, v)

    visit(root, {0: 1})
    return Msp(rows=tuple(rows), labels=tuple(labels), columns=columns, groups=_and_groups(root))


def _and_groups(root: Node) -> tuple[tuple[int, ...], ...]:
    """Leaves reachable from one AND gate through AND gates only form one group; a leaf
    under an OR or threshold gate (or alone at the root) is a group of its own."""
    groups: list[list[int]] = []
    counter = iter(range(MAX_LEAVES + 1))

    def assign(node: Node, group: list[int] | None) -> None:
        if isinstance(node, Attribute):
            row = next(counter)
            if group is None:
                groups.append([row])
            else:
                group.append(row)
            return
        if node.is_and:
            mine = group if group is not None else []
            if group is None:
                groups.append(mine)
            for child in node.children:
                assign(child, mine if isinstance(child, Attribute) or child.is_and else None)
            return
        for child in node.children:
            assign(child, None)

    assign(root, None)
    return tuple(sorted((tuple(g) for g in groups if g), key=lambda g: g[0]))


def _lagrange_at_zero(xs: list[int]) -> list[int]:
    out = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * xj % CURVE_ORDER
                den = den * (xj - xi) % CURVE_ORDER
        out.append(num * pow(den, -1, CURVE_ORDER) % CURVE_ORDER)
    return out


def _solve(
    node: Node,
    labels: tuple[Label, ...],
    usable: Callable[[Label], bool],
    counter: Iterator[int],
) -> dict[int, int] | None:
    """Consume this subtree's row indices from ``counter``; return a cheapest solution."""
    if isinstance(node, Attribute):
        row = next(counter)
        return {row: 1} if usable(labels[row]) else None
    solutions = [_solve(c, labels, usable, counter) for c in node.children]
    if node.is_and:
        if any(s is None for s in solutions):
            return None
        merged: dict[int, int] = {}
        for s in solutions:
            assert s is not None
            merged.update(s)
        return merged
    ok = sorted(
        ((len(s), pos, s) for pos, s in enumerate(solutions, start=1) if s is not None),
        key=lambda item: (item[0], item[1]),
    )
    if len(ok) < node.threshold:
        return None
    if node.is_or:
        return ok[0][2]
    chosen = ok[: node.threshold]
    lams = _lagrange_at_zero([pos for _, pos, _ in chosen])
    out: dict[int, int] = {}
    for lam, (_, _, s) in zip(lams, chosen, strict=True):
        for row, coeff in s.items():
            out[row] = coeff * lam % CURVE_ORDER
    return out
