"""FAME — Agrawal & Chase, "FAME: Fast Attribute-based Message Encryption", CCS 2017, §3.

The ciphertext-policy scheme under the decisional linear assumption (k = 2) on the Type-III
pairing BLS12-381, via ``pymcl``. Used here as a KEM: encryption returns a fresh
``K = T1^s1 * T2^s2`` in GT (the paper's ``ct'`` without the message factor); callers feed
its bytes to HKDF and encrypt the payload with AES-GCM (see :mod:`iomt.crypto.techniques`).

Notation follows the paper (indices l in 1..3, t in 1..2; ``ell`` and 0-based in code)::

    Setup:   a1, a2, b1, b2 <- Z_r*, d1, d2, d3 <- Z_r, random generators g (G1), h (G2)
             pk  = (h, H1 = h^a1, H2 = h^a2, T1 = e(g,h)^(d1 a1 + d3), T2 = e(g,h)^(d2 a2 + d3))
             msk = (g, h, a1, a2, b1, b2, g^d1, g^d2, g^d3)
    KeyGen:  r1, r2 <- Z_r;  Br = (b1 r1, b2 r2, r1 + r2);  sk0 = h^Br
             sk_{y,t} = prod_l H(y,l,t)^(Br_l / a_t) * g^(sigma_y / a_t),  sk_{y,3} = g^-sigma_y
             sk'_t    = g^d_t * prod_l H(col 1,l,t)^(Br_l / a_t) * g^(sigma' / a_t)
             sk'_3    = g^d3 * g^-sigma'
    Encrypt: s1, s2 <- Z_r;  ct0 = (H1^s1, H2^s2, h^(s1+s2))
             ct_{i,l} = prod_t [ H(rho(i),l,t) * prod_j H(col j,l,t)^M_ij ]^s_t
    Decrypt: gamma with sum_i gamma_i M_i = e1;
             K = prod_l e(sk'_l * prod_i sk_{rho(i),l}^gamma_i, ct0_l)
                 / prod_l e(prod_i ct_{i,l}^gamma_i, sk0_l)          (6 pairings)

Departures from the reference implementation (Charm's ``ac17.py``), all deliberate:

* Hash-to-G1 inputs are domain-separated and length-prefixed —
  ``DST || 0x01 || len(attr) || attr || occurrence || l || t`` for attributes and
  ``DST || 0x02 || j || l || t`` for matrix columns, where Charm hashes the string
  ``attr + str(l) + str(t)`` for attributes and ``"0" + str(j) + str(l) + str(t)`` for
  columns: attribute ``"01"`` then collides with column 1 (the key's ``sk'`` hashes) and
  ``"A1"`` (l=0) with ``"A"`` at a two-digit index, i.e. hashes meant to be independent
  random-oracle outputs coincide.
* Repeated attributes get distinct occurrence labels (see :mod:`.policy`).
* AND-joined leaves travel as one aggregated row. Every satisfying attribute set uses the
  leaves joined by AND gates all-or-nothing and with one common coefficient (the Lewko-
  Waters AND rows sum to the parent's vector), so the ciphertext carries, for each such
  group g, ``ct_{g,l} = prod_{i in g} ct_{i,l}`` instead of the individual rows, and
  decryption uses it exactly where FAME would use ``prod_{i in g} ct_{i,l}^gamma``. The
  aggregate is a public function of the FAME ciphertext, so any attack on this form is
  an attack on FAME itself; it costs 6 scalar multiplications per group to encrypt and
  one subgroup-checked 3-point decode per group to decrypt, instead of per attribute.
  (``role:cardiologist AND facility:F1`` is one row, not two.)
* Hash results are cached per input, and each policy's per-row hash combinations (which
  do not depend on the encryption randomness) are cached per policy.
* Decryption decodes only the ciphertext rows it needs; each point goes through mcl's
  subgroup check. Keys carry the authority's parameter id so a key from another
  authority fails loudly instead of producing garbage.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pymcl import G1, G2, GT, Fr, pairing
from pymcl import g1 as _G1_GEN
from pymcl import g2 as _G2_GEN

from iomt.crypto.abe.policy import CURVE_ORDER, Label, Policy, validate_attribute
from iomt.crypto.encoding import Reader, lp16, u8, u16, u32
from iomt.crypto.errors import (
    DecryptionError,
    KeyFormatError,
    MalformedCiphertextError,
    PolicyNotSatisfiedError,
    PolicySyntaxError,
)
from iomt.crypto.primitives import sha256

__all__ = [
    "G1_SIZE",
    "G2_SIZE",
    "GT_SIZE",
    "AttributeAuthority",
    "FameCiphertext",
    "FamePublicParams",
    "FameUserKey",
    "decapsulate",
    "encapsulate",
]

G1_SIZE = 48
G2_SIZE = 96
GT_SIZE = 576
FR_SIZE = 32
PARAMS_ID_SIZE = 16
ROW_SIZE = 3 * G1_SIZE

_DST = b"iomt/fame/bls12-381/hash-to-G1/v1:"
_PK_MAGIC = b"IFP\x01"
_MSK_MAGIC = b"IFM\x01"
_USK_MAGIC = b"IFU\x01"
_DEFAULT_MAX_REUSE = 2
_MAX_REUSE_LIMIT = 8


# --- field and group helpers ---------------------------------------------------------


def _fr(value: int) -> Fr:
    return Fr(str(value % CURVE_ORDER))


def _random_fr(nonzero: bool = False) -> Fr:
    # 64 random bytes reduced mod r: statistically uniform (bias < 2^-256).
    while True:
        value = int.from_bytes(os.urandom(64), "big") % CURVE_ORDER
        if value or not nonzero:
            return _fr(value)


_MINUS_ONE = CURVE_ORDER - 1


def _scaled(point: G1, coeff: int) -> G1:
    """coeff * point, with the common LSSS coefficients +-1 as additions."""
    if coeff == 1:
        return point
    if coeff == _MINUS_ONE:
        return -point
    return point * _fr(coeff)


@functools.lru_cache(maxsize=1 << 14)
def _hash_g1(message: bytes) -> G1:
    return G1.hash(_DST + message)


def _attr_hash(label: Label, ell: int, t: int) -> G1:
    name, occurrence = label
    return _hash_g1(b"\x01" + lp16(name.encode()) + u16(occurrence) + u8(ell) + u8(t))


def _col_hash(j: int, ell: int, t: int) -> G1:
    return _hash_g1(b"\x02" + u32(j) + u8(ell) + u8(t))


def _g1(data: bytes, error: type[Exception]) -> G1:
    try:
        return G1.deserialize(data)
    except ValueError:
        raise error("not a point of the BLS12-381 G1 subgroup") from None


def _g2(data: bytes, error: type[Exception]) -> G2:
    try:
        return G2.deserialize(data)
    except ValueError:
        raise error("not a point of the BLS12-381 G2 subgroup") from None


def _gt(data: bytes, error: type[Exception]) -> GT:
    try:
        return GT.deserialize(data)
    except ValueError:
        raise error("not an element of GT") from None


def _frd(data: bytes, error: type[Exception]) -> Fr:
    try:
        return Fr.deserialize(data)
    except ValueError:
        raise error("not a scalar mod r") from None


# --- keys ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FamePublicParams:
    """The authority's public key; anyone holding it can encrypt under any policy."""

    h: G2
    h1: G2
    h2: G2
    t1: GT
    t2: GT
    max_reuse: int
    params_id: bytes

    @classmethod
    def _make(cls, hs: tuple[G2, G2, G2], ts: tuple[GT, GT], max_reuse: int) -> FamePublicParams:
        body = _encode_pk(hs, ts, max_reuse)
        return cls(*hs, *ts, max_reuse, sha256(body)[:PARAMS_ID_SIZE])

    def to_bytes(self) -> bytes:
        return _encode_pk((self.h, self.h1, self.h2), (self.t1, self.t2), self.max_reuse)

    @classmethod
    def from_bytes(cls, data: bytes) -> FamePublicParams:
        r = Reader(data, KeyFormatError)
        if r.take(4) != _PK_MAGIC:
            raise KeyFormatError("not FAME public parameters")
        max_reuse = r.u8()
        if not 1 <= max_reuse <= _MAX_REUSE_LIMIT:
            raise KeyFormatError(f"max_reuse {max_reuse} out of range")
        h, h1, h2 = (_g2(r.take(G2_SIZE), KeyFormatError) for _ in range(3))
        t1, t2 = (_gt(r.take(GT_SIZE), KeyFormatError) for _ in range(2))
        r.end()
        if h.is_zero() or h1.is_zero() or h2.is_zero() or t1.is_one() or t2.is_one():
            raise KeyFormatError("degenerate FAME public parameters")
        return cls._make((h, h1, h2), (t1, t2), max_reuse)

    def __repr__(self) -> str:
        return f"FamePublicParams(id={self.params_id.hex()}, max_reuse={self.max_reuse})"


def _encode_pk(hs: tuple[G2, G2, G2], ts: tuple[GT, GT], max_reuse: int) -> bytes:
    return (
        _PK_MAGIC
        + u8(max_reuse)
        + b"".join(x.serialize() for x in hs)
        + b"".join(x.serialize() for x in ts)
    )


@dataclass(frozen=True, slots=True, eq=False)
class FameUserKey:
    """A user's attribute key: randomized per user, so keys of two users do not combine."""

    params_id: bytes
    attributes: frozenset[str]
    k0: tuple[G2, G2, G2]
    kp: tuple[G1, G1, G1]
    k: Mapping[Label, tuple[G1, G1, G1]]

    def to_bytes(self) -> bytes:
        attrs = sorted(self.attributes)
        reuse = max((occ for _, occ in self.k), default=1)
        out = [_USK_MAGIC, self.params_id, u8(reuse), u16(len(attrs))]
        out += [lp16(a.encode()) for a in attrs]
        out += [p.serialize() for p in self.k0]
        out += [p.serialize() for p in self.kp]
        for a in attrs:
            for occ in range(1, reuse + 1):
                out += [p.serialize() for p in self.k[(a, occ)]]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> FameUserKey:
        r = Reader(data, KeyFormatError)
        if r.take(4) != _USK_MAGIC:
            raise KeyFormatError("not a FAME user key")
        params_id = r.take(PARAMS_ID_SIZE)
        reuse = r.u8()
        if not 1 <= reuse <= _MAX_REUSE_LIMIT:
            raise KeyFormatError(f"max_reuse {reuse} out of range")
        try:
            attrs = [r.lp16().decode() for _ in range(r.u16())]
            for a in attrs:
                validate_attribute(a)
        except (UnicodeDecodeError, PolicySyntaxError) as exc:
            raise KeyFormatError(f"bad attribute in user key: {exc}") from None
        k0 = tuple(_g2(r.take(G2_SIZE), KeyFormatError) for _ in range(3))
        kp = tuple(_g1(r.take(G1_SIZE), KeyFormatError) for _ in range(3))
        k: dict[Label, tuple[G1, G1, G1]] = {}
        for a in attrs:
            for occ in range(1, reuse + 1):
                k[(a, occ)] = _triple(tuple(_g1(r.take(G1_SIZE), KeyFormatError) for _ in range(3)))
        r.end()
        return cls(params_id, frozenset(attrs), _triple(k0), _triple(kp), k)

    def __repr__(self) -> str:
        return f"FameUserKey(attributes={sorted(self.attributes)}, <redacted>)"


_T = TypeVar("_T")


def _triple(items: tuple[_T, ...]) -> tuple[_T, _T, _T]:
    a, b, c = items
    return (a, b, c)


class AttributeAuthority:
    """Holds the FAME master key; issues attribute keys. Lives in the keystore's authority/."""

    __slots__ = ("_a", "_b", "_g", "_gd", "public_params")

    def __init__(
        self,
        public_params: FamePublicParams,
        g: G1,
        a: tuple[Fr, Fr],
        b: tuple[Fr, Fr],
        gd: tuple[G1, G1, G1],
    ) -> None:
        self.public_params = public_params
        self._g = g
        self._a = a
        self._b = b
        self._gd = gd

    @classmethod
    def setup(cls, *, max_reuse: int = _DEFAULT_MAX_REUSE) -> AttributeAuthority:
        """FAME Setup. ``max_reuse`` bounds how often one attribute may appear in a policy."""
        if not 1 <= max_reuse <= _MAX_REUSE_LIMIT:
            raise KeyFormatError(f"max_reuse must be 1..{_MAX_REUSE_LIMIT}")
        a1, a2, b1, b2 = (_random_fr(nonzero=True) for _ in range(4))
        d1, d2, d3 = (_random_fr() for _ in range(3))
        g = _G1_GEN * _random_fr(nonzero=True)
        h = _G2_GEN * _random_fr(nonzero=True)
        e_gh = pairing(g, h)
        pk = FamePublicParams._make(
            (h, h * a1, h * a2), (e_gh ** (d1 * a1 + d3), e_gh ** (d2 * a2 + d3)), max_reuse
        )
        return cls(pk, g, (a1, a2), (b1, b2), (g * d1, g * d2, g * d3))

    def keygen(self, attributes: Iterable[str]) -> FameUserKey:
        """FAME KeyGen for an attribute set (components for occurrences 1..max_reuse)."""
        attrs = frozenset(validate_attribute(a) for a in attributes)
        if not attrs:
            raise PolicySyntaxError("an attribute key needs at least one attribute")
        g = self._g
        h = self.public_params.h
        a1, a2 = self._a
        b1, b2 = self._b
        r1, r2 = _random_fr(), _random_fr()
        br = (b1 * r1, b2 * r2, r1 + r2)
        k0 = _triple(tuple(h * x for x in br))
        inv_a = (~a1, ~a2)
        # exponents Br_l / a_t, shared by all attributes
        e = [[br[ell] * inv_a[t] for t in range(2)] for ell in range(3)]

        def component(hash_of: Callable[[int, int], G1], sigma: Fr) -> tuple[G1, G1, G1]:
            parts = []
            for t in range(2):
                acc = g * (sigma * inv_a[t])
                for ell in range(3):
                    acc = acc + hash_of(ell, t) * e[ell][t]
                parts.append(acc)
            return (parts[0], parts[1], g * (-sigma))

        k: dict[Label, tuple[G1, G1, G1]] = {}
        for attr in sorted(attrs):
            for occ in range(1, self.public_params.max_reuse + 1):
                k[(attr, occ)] = component(functools.partial(_attr_hash, (attr, occ)), _random_fr())
        base = component(functools.partial(_col_hash, 1), _random_fr())
        gd1, gd2, gd3 = self._gd
        kp = (gd1 + base[0], gd2 + base[1], gd3 + base[2])
        return FameUserKey(self.public_params.params_id, attrs, k0, kp, k)

    def to_bytes(self) -> bytes:
        """The master key (with its public params). Secret: the keystore writes it 0600."""
        return (
            _MSK_MAGIC
            + self.public_params.to_bytes()
            + self._g.serialize()
            + b"".join(x.serialize() for x in (*self._a, *self._b))
            + b"".join(p.serialize() for p in self._gd)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AttributeAuthority:
        r = Reader(data, KeyFormatError)
        if r.take(4) != _MSK_MAGIC:
            raise KeyFormatError("not a FAME master key")
        pk_len = 4 + 1 + 3 * G2_SIZE + 2 * GT_SIZE
        pk = FamePublicParams.from_bytes(r.take(pk_len))
        g = _g1(r.take(G1_SIZE), KeyFormatError)
        a1, a2, b1, b2 = (_frd(r.take(FR_SIZE), KeyFormatError) for _ in range(4))
        gd = _triple(tuple(_g1(r.take(G1_SIZE), KeyFormatError) for _ in range(3)))
        r.end()
        if any(x.is_zero() for x in (a1, a2, b1, b2)) or g.is_zero():
            raise KeyFormatError("degenerate FAME master key")
        return cls(pk, g, (a1, a2), (b1, b2), gd)

    def __repr__(self) -> str:
        return f"AttributeAuthority(params={self.public_params.params_id.hex()}, <redacted>)"


# --- ciphertext ----------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _parse_policy(text: str) -> Policy:
    # Policies are immutable and a device sees the same few again and again.
    return Policy.parse(text)


@dataclass(frozen=True, slots=True, eq=False)
class FameCiphertext:
    """A FAME KEM ciphertext header: policy, ct0 and one 3-point row per AND-group.

    Rows stay serialized until decryption needs them: a decryptor checks (and pays the
    subgroup check for) only the rows of the attribute set it uses.
    """

    params_id: bytes
    policy: Policy
    c0: tuple[G2, G2, G2]
    rows: bytes

    def to_bytes(self) -> bytes:
        return (
            self.params_id
            + lp16(str(self.policy).encode())
            + b"".join(p.serialize() for p in self.c0)
            + self.rows
        )

    @classmethod
    def read(cls, r: Reader) -> FameCiphertext:
        """Parse from a reader positioned at the header; errors are MalformedCiphertext."""
        params_id = r.take(PARAMS_ID_SIZE)
        try:
            policy = _parse_policy(r.lp16().decode())
        except (UnicodeDecodeError, PolicySyntaxError) as exc:
            raise MalformedCiphertextError(f"bad policy in ciphertext: {exc}") from None
        c0 = _triple(tuple(_g2(r.take(G2_SIZE), MalformedCiphertextError) for _ in range(3)))
        if any(p.is_zero() for p in c0):
            raise MalformedCiphertextError("degenerate FAME ciphertext")
        rows = r.take(ROW_SIZE * len(policy.groups))
        return cls(params_id, policy, c0, rows)

    def row(self, i: int) -> tuple[G1, G1, G1]:
        off = i * ROW_SIZE
        return _triple(
            tuple(
                _g1(self.rows[off + n * G1_SIZE : off + (n + 1) * G1_SIZE], DecryptionError)
                for n in range(3)
            )
        )


@functools.lru_cache(maxsize=128)
def _group_bases(policy_text: str) -> tuple[tuple[tuple[G1, G1], ...], ...]:
    """Per AND-group g and l, t: H(g's labels, l, t) * prod_j H(col j, l, t)^(sum_g M_ij).

    Independent of the encryption randomness, so computed once per policy: a device that
    encrypts every reading under the same policy pays 6 scalar multiplications per group.
    """
    msp = _parse_policy(policy_text).msp()
    out = []
    for group in msp.groups:
        # the group's summed matrix row (fresh AND columns cancel inside a group)
        columns: dict[int, int] = {}
        for i in group:
            for j, coeff in msp.rows[i].items():
                columns[j] = (columns.get(j, 0) + coeff) % CURVE_ORDER
        per_ell = []
        for ell in range(3):
            per_t = []
            for t in range(2):
                base = G1()
                for i in group:
                    base = base + _attr_hash(msp.labels[i], ell, t)
                for j, coeff in columns.items():
                    if coeff:
                        base = base + _scaled(_col_hash(j + 1, ell, t), coeff)
                per_t.append(base)
            per_ell.append((per_t[0], per_t[1]))
        out.append(tuple(per_ell))
    return tuple(out)


def encapsulate(params: FamePublicParams, policy: Policy) -> tuple[bytes, FameCiphertext]:
    """FAME Encrypt as a KEM: (serialized K in GT, ciphertext header)."""
    if policy.max_occurrence > params.max_reuse:
        raise PolicySyntaxError(
            f"an attribute appears {policy.max_occurrence} times; this authority allows "
            f"{params.max_reuse} (rewrite the policy or raise max_reuse at setup)"
        )
    s = (_random_fr(), _random_fr())
    c0 = (params.h1 * s[0], params.h2 * s[1], params.h * (s[0] + s[1]))
    rows = []
    for bases in _group_bases(str(policy)):
        for ell in range(3):
            rows.append((bases[ell][0] * s[0] + bases[ell][1] * s[1]).serialize())
    key = (params.t1 ** s[0]) * (params.t2 ** s[1])
    ct = FameCiphertext(params.params_id, policy, c0, b"".join(rows))
    return key.serialize(), ct


def decapsulate(ct: FameCiphertext, key: FameUserKey) -> bytes:
    """FAME Decrypt as a KEM: the serialized K, or PolicyNotSatisfied / DecryptionError."""
    if ct.params_id != key.params_id:
        raise DecryptionError("attribute key was issued by another authority")
    solution = ct.policy.solve(lambda label: label in key.k)
    if solution is None:
        raise PolicyNotSatisfiedError(
            f"attributes {sorted(key.attributes)} do not satisfy {ct.policy}"
        )
    labels = ct.policy.labels
    acc_ct = [G1(), G1(), G1()]
    acc_key = list(key.kp)
    for g, group in enumerate(ct.policy.groups):
        if group[0] not in solution:
            continue
        coeff = solution[group[0]]
        if any(solution.get(i) != coeff for i in group):  # cannot happen for AND groups
            raise DecryptionError("internal error: a group is not used all-or-nothing")
        ct_row = ct.row(g)
        for ell in range(3):
            key_sum = G1()
            for i in group:
                key_sum = key_sum + key.k[labels[i]][ell]
            acc_ct[ell] = acc_ct[ell] + _scaled(ct_row[ell], coeff)
            acc_key[ell] = acc_key[ell] + _scaled(key_sum, coeff)
    num = pairing(acc_ct[0], key.k0[0]) * pairing(acc_ct[1], key.k0[1])
    num = num * pairing(acc_ct[2], key.k0[2])
    den = pairing(acc_key[0], ct.c0[0]) * pairing(acc_key[1], ct.c0[1])
    den = den * pairing(acc_key[2], ct.c0[2])
    return (den / num).serialize()
