"""Measurements of the security layer, shared by ``iomt crypto bench`` and bench/bench_crypto.py.

What the paper's Table 3 argues qualitatively (ECC "small key size", CP-ABE "large"), this
measures on the machine at hand: per technique the seal/open time for a 64-byte vital
record and a 1 KiB record and the ciphertext overhead; for ``cpabe`` / ``ecc-attr`` the
key generation, encryption and decryption time against policy size for three policy
shapes (AND / OR / threshold of n attributes, see ``POLICY_SHAPES``); signatures; CWT
token issue/verify (verify includes the proof-of-possession check); and a session's
handshake and per-request protect/unprotect. Medians of repeated runs; no targets here —
the bench script compares against them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from iomt.crypto.abe.fame import AttributeAuthority
from iomt.crypto.abe.policy import Policy
from iomt.crypto.keys import EccCurve, EccPrivateKey, SymmetricKey
from iomt.crypto.sessions import (
    HandshakeIdentity,
    HandshakeInitiator,
    HandshakeResponder,
    PinnedCredentials,
    raw_credential,
)
from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer, HmacSha256Key, Signer
from iomt.crypto.techniques import (
    NO_KEY,
    TECHNIQUE_NAMES,
    AbePolicy,
    AssociatedData,
    Capability,
    EccAttrRecipient,
    EccAttrSecret,
    RecipientKey,
    RecipientSecret,
    get_technique,
)
from iomt.crypto.tokens import TokenIssuer, TokenVerifier, make_proof

__all__ = [
    "AbeRow",
    "BenchReport",
    "OpRow",
    "TechniqueRow",
    "run_benchmarks",
]

RECORD_SIZES = (64, 1024)
POLICY_SIZES = (1, 5, 10, 20)
POLICY_SHAPES = ("and", "or", "threshold")
"""AND of n: every attribute needed (one aggregated row). OR of n: n rows sent, one used.
Threshold: ceil(n/2) of n (Shamir rows; decryption scales rows by Lagrange coefficients)."""


@dataclass(frozen=True, slots=True)
class TechniqueRow:
    technique: str
    record_bytes: int
    seal_us: float
    open_us: float
    overhead_bytes: int
    weak: bool


@dataclass(frozen=True, slots=True)
class AbeRow:
    technique: str
    policy: str
    attributes: int
    keygen_ms: float
    encrypt_ms: float
    decrypt_ms: float
    ciphertext_bytes: int


@dataclass(frozen=True, slots=True)
class OpRow:
    group: str
    operation: str
    median_us: float
    size_bytes: int | None = None


@dataclass(slots=True)
class BenchReport:
    techniques: list[TechniqueRow] = field(default_factory=list)
    abe: list[AbeRow] = field(default_factory=list)
    ops: list[OpRow] = field(default_factory=list)

    def technique(self, name: str, record_bytes: int) -> TechniqueRow:
        return next(
            r for r in self.techniques if r.technique == name and r.record_bytes == record_bytes
        )

    def abe_row(self, name: str, policy: str, attributes: int) -> AbeRow:
        return next(
            r
            for r in self.abe
            if r.technique == name and r.policy == policy and r.attributes == attributes
        )

    def op(self, group: str, operation: str) -> OpRow:
        return next(r for r in self.ops if r.group == group and r.operation == operation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "techniques": [asdict(r) for r in self.techniques],
            "abe": [asdict(r) for r in self.abe],
            "ops": [asdict(r) for r in self.ops],
        }


def _median_us(fn: Callable[[], object], n: int) -> float:
    fn()  # warm caches (hash-to-curve, HKDF-derived keys)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def _median_each_us(fns: Iterator[Callable[[], object]], n: int) -> float:
    samples = []
    for _ in range(n):
        fn = next(fns)
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def _seal_open(
    name: str, recipient: RecipientKey, secret: RecipientSecret, aad: AssociatedData
) -> bytes:
    tech = get_technique(name)
    return tech.open(tech.seal(bytes(64), recipient, aad), secret, aad)


def _attrs(n: int) -> list[str]:
    return [f"attr:{i:02d}" for i in range(n)]


def _policy(shape: str, attrs: list[str]) -> Policy:
    if shape == "and" or len(attrs) == 1:
        return Policy.all_of(attrs)
    if shape == "or":
        return Policy.any_of(attrs)
    return Policy.parse(f"{(len(attrs) + 1) // 2} of ({', '.join(attrs)})")


def run_benchmarks(*, quick: bool = False) -> BenchReport:
    """Measure everything; ``quick`` cuts repetitions (for smoke runs)."""
    fast_n = 50 if quick else 400
    abe_n = 3 if quick else 11
    report = BenchReport()
    aad = AssociatedData("provider:dr-bob", "provider:dr-bob", "iomt://F1/dev-001", 1)

    authority = AttributeAuthority.setup()
    clinic_policy = AbePolicy.parse(authority.public_params, "role:cardiologist AND facility:F1")
    clinic_key = authority.keygen(["role:cardiologist", "facility:F1"])
    ecc = EccPrivateKey.generate()
    sym = SymmetricKey.generate()
    keys: dict[str, tuple[RecipientKey, RecipientSecret]] = {
        "none": (NO_KEY, NO_KEY),
        "sym-3des": (sym, sym),
        "sym-aes": (sym, sym),
        "ecc": (ecc.public_key(), ecc),
        "cpabe": (clinic_policy, clinic_key),
        "ecc-attr": (
            EccAttrRecipient(ecc.public_key(), clinic_policy),
            EccAttrSecret(ecc, clinic_key),
        ),
    }

    # -- techniques: seal/open and overhead ------------------------------------------
    for name in TECHNIQUE_NAMES:
        tech = get_technique(name)
        recipient, secret = keys[name]
        n = abe_n if tech.capability is Capability.ABE else fast_n
        for size in RECORD_SIZES:
            plaintext = os.urandom(size)
            seal_us = _median_us(partial(tech.seal, plaintext, recipient, aad), n)
            cts = [tech.seal(plaintext, recipient, aad) for _ in range(n)]
            opens = iter([partial(tech.open, c, secret, aad) for c in cts])
            open_us = _median_each_us(opens, n)
            report.techniques.append(
                TechniqueRow(name, size, seal_us, open_us, len(cts[0]) - size, tech.weak)
            )
    p256 = keys["ecc"]
    x_priv = EccPrivateKey.generate(EccCurve.X25519)
    for label, (recipient, secret) in (
        ("ecc (P-256)", p256),
        ("ecc (X25519)", (x_priv.public_key(), x_priv)),
    ):
        report.ops.append(
            OpRow(
                "ecies",
                f"{label} seal+open 64 B",
                _median_us(partial(_seal_open, "ecc", recipient, secret, aad), fast_n),
            )
        )

    # -- CP-ABE / ABECC scaling ------------------------------------------------------
    for size in POLICY_SIZES:
        attrs = _attrs(size)
        keygen_us = _median_us(partial(authority.keygen, attrs), abe_n)
        user_key = authority.keygen(attrs)
        for shape in POLICY_SHAPES:
            policy = AbePolicy(authority.public_params, _policy(shape, attrs))
            cases: list[tuple[str, RecipientKey, RecipientSecret]] = [("cpabe", policy, user_key)]
            if shape == "and":
                cases.append(
                    (
                        "ecc-attr",
                        EccAttrRecipient(ecc.public_key(), policy),
                        EccAttrSecret(ecc, user_key),
                    )
                )
            for name, recipient, secret in cases:
                tech = get_technique(name)
                pt = os.urandom(64)
                enc_us = _median_us(partial(tech.seal, pt, recipient, aad), abe_n)
                cts = [tech.seal(pt, recipient, aad) for _ in range(abe_n)]
                dec_us = _median_each_us(
                    iter([partial(tech.open, c, secret, aad) for c in cts]), abe_n
                )
                report.abe.append(
                    AbeRow(
                        name,
                        shape,
                        size,
                        keygen_us / 1000,
                        enc_us / 1000,
                        dec_us / 1000,
                        len(cts[0]),
                    )
                )

    # -- signatures, tokens, sessions ------------------------------------------------
    data = os.urandom(64)
    _bench_signatures(report, data, fast_n)
    _bench_tokens(report, data, fast_n)
    _bench_sessions(report, fast_n, abe_n)
    return report


def _bench_signatures(report: BenchReport, data: bytes, fast_n: int) -> None:
    signers: list[Signer] = [
        Ed25519Signer.generate(),
        EcdsaP256Signer.generate(),
        HmacSha256Key.generate(),
    ]
    for signer in signers:
        sig = signer.sign(data)
        ver = signer.verifier()
        report.ops.append(
            OpRow(
                "signature",
                f"{signer.algorithm} sign",
                _median_us(partial(signer.sign, data), fast_n),
                len(sig),
            )
        )
        report.ops.append(
            OpRow(
                "signature",
                f"{signer.algorithm} verify",
                _median_us(partial(ver.verify, data, sig), fast_n),
            )
        )


def _bench_tokens(report: BenchReport, data: bytes, fast_n: int) -> None:
    wallet = Ed25519Signer.generate()
    requester = Ed25519Signer.generate()
    issuer = TokenIssuer("wallet:patient-1", wallet)
    verifier = TokenVerifier({"wallet:patient-1": wallet.verifier()})
    device = "iomt://F1/dev-001"
    token = issuer.issue(device, "provider:dr-bob", "read:vitals", requester.verifier(), 3600)
    report.ops.append(
        OpRow(
            "token",
            "issue",
            _median_us(
                lambda: issuer.issue(
                    device, "provider:dr-bob", "read:vitals", requester.verifier(), 3600
                ),
                fast_n,
            ),
            len(token),
        )
    )
    report.ops.append(
        OpRow(
            "token",
            "make proof",
            _median_us(lambda: make_proof(token, requester, challenge=b"c"), fast_n),
        )
    )
    proofs = [make_proof(token, requester, challenge=b"c", request=data) for _ in range(fast_n)]
    report.ops.append(
        OpRow(
            "token",
            "verify (with proof of possession)",
            _median_each_us(
                iter(
                    [
                        partial(
                            verifier.verify,
                            token,
                            audience=device,
                            proof=p,
                            challenge=b"c",
                            request=data,
                        )
                        for p in proofs
                    ]
                ),
                fast_n,
            ),
            len(proofs[0]),
        )
    )


def _bench_sessions(report: BenchReport, fast_n: int, abe_n: int) -> None:
    a, b = Ed25519Signer.generate(), Ed25519Signer.generate()
    ida = HandshakeIdentity("provider:dr-bob", a, raw_credential(a.verifier()))
    idb = HandshakeIdentity("dev-001", b, raw_credential(b.verifier()))
    pins = PinnedCredentials({ida.name: a.verifier(), idb.name: b.verifier()})

    def handshake() -> tuple[HandshakeInitiator, HandshakeResponder]:
        i, r = HandshakeInitiator(ida, pins), HandshakeResponder(idb, pins)
        i.confirm(r.receive(i.receive(r.receive(i.start()))))
        return i, r

    report.ops.append(
        OpRow("session", "handshake (both sides, 4 messages)", _median_us(handshake, abe_n * 5))
    )
    i, r = handshake()
    request = os.urandom(64)
    record = i.session.protect(request, b"GET /vitals")
    report.ops.append(
        OpRow(
            "session",
            "protect 64 B",
            _median_us(lambda: i.session.protect(request, b"GET /vitals"), fast_n * 5),
            len(record) - len(request),
        )
    )
    records = [i.session.protect(request, b"GET /vitals") for _ in range(fast_n * 5)]
    report.ops.append(
        OpRow(
            "session",
            "unprotect 64 B",
            _median_each_us(
                iter([partial(r.session.unprotect, c, b"GET /vitals") for c in records]),
                fast_n * 5,
            ),
        )
    )
