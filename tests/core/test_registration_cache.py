"""Shared verification of announcements: a hit only for what provably verified before.

The tables of one process share a ``VerifiedAnnouncements`` memo so that an announcement
heard by many devices is verified once. These tests are written against a memo that is too
broad: any change to a signed field, the certificate, the signature or the key must be
verified again (and refused), and a failure must never be remembered.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from core.sharing_world import World, build_world, der
from iomt.core.registration import (
    Announcement,
    NeighbourEntry,
    NeighbourTable,
    RegistrationStatus,
    VerifiedAnnouncements,
)
from iomt.crypto.signing import Verifier
from iomt.errors import AuthenticationError


class CountingVerifier:
    """A Verifier that counts the signatures it really checked."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.algorithm = inner.algorithm
        self.calls = 0

    def verify(self, data: bytes, signature: bytes) -> None:
        self.calls += 1
        self.inner.verify(data, signature)

    def public_bytes(self) -> bytes:
        return self.inner.public_bytes()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def _tables(
    world: World, memo: VerifiedAnnouncements, n: int = 3
) -> tuple[list[NeighbourTable], dict[str, Any]]:
    """``n`` tables next to hr_ecc sharing ``memo``; certificate checks counted."""
    check = world.keystore.credential_validator()
    verifiers: dict[str, Any] = {}

    def checked(uri: str, cert: bytes) -> Any:
        found = verifiers.get(uri + cert.hex())
        if found is None:
            found = verifiers[uri + cert.hex()] = CountingVerifier(
                check(uri.rsplit("/", 1)[-1], cert)
            )
        return found

    tables = [
        NeighbourTable(
            f"iomt://ward1/listener_{i}",
            0.5 * i,
            3.0,
            8.0,
            clock=world.clock,
            check_certificate=checked,
            verified=memo,
        )
        for i in range(n)
    ]
    return tables, verifiers


def test_one_verification_for_every_hearer_of_the_same_announcement(world: World) -> None:
    memo = VerifiedAnnouncements()
    tables, verifiers = _tables(world, memo)
    real = world.device("hr_ecc").announcement(1_000)
    for t in tables:
        assert t.on_announcement(real) is RegistrationStatus.REGISTER
    (verifier,) = verifiers.values()
    assert verifier.calls == 1
    assert (memo.verified, memo.hits) == (1, len(tables) - 1)
    # an equal announcement decoded separately (another object, the same bytes) is a hit too
    again = dataclasses.replace(real)
    assert again is not real
    assert tables[0].on_announcement(again) is RegistrationStatus.REGISTER
    assert verifier.calls == 1


def _variants(world: World, real: Announcement) -> dict[str, Announcement]:
    mallory = world.keystore.identity("mallory")
    other = world.keystore.identity("bp_abe")
    flipped = bytearray(real.signature)
    flipped[len(flipped) // 2] ^= 1
    return {
        "capability": dataclasses.replace(real, convertible=("ecc", "cpabe", "ecc-attr")),
        "technique": dataclasses.replace(real, security_technique="cpabe"),
        "position": dataclasses.replace(real, x=real.x + 0.25),
        "range": dataclasses.replace(real, radio_range=real.radio_range * 2),
        "period": dataclasses.replace(real, period_s=real.period_s * 2),
        "stamp": dataclasses.replace(real, stamp_ns=real.stamp_ns + 1),
        "neighbours": dataclasses.replace(
            real, neighbours=(NeighbourEntry("iomt://ward1/bp_abe", "cpabe", 1),)
        ),
        "uri": dataclasses.replace(real, device_uri="iomt://ward1/bp_abe"),
        "certificate": dataclasses.replace(real, certificate=der(other)),
        "signature-flipped": dataclasses.replace(real, signature=bytes(flipped)),
        "signature-empty": dataclasses.replace(real, signature=b""),
        "mallory-signed": dataclasses.replace(real, signature=b"").signed_by(mallory.signer),
        "mallory-certified": dataclasses.replace(
            real, certificate=der(mallory), signature=b""
        ).signed_by(mallory.signer),
    }


@pytest.mark.parametrize(
    "variant",
    [
        "capability",
        "technique",
        "position",
        "range",
        "period",
        "stamp",
        "neighbours",
        "uri",
        "certificate",
        "signature-flipped",
        "signature-empty",
        "mallory-signed",
        "mallory-certified",
    ],
)
def test_a_changed_or_forged_announcement_is_verified_again_and_refused(
    world: World, variant: str
) -> None:
    memo = VerifiedAnnouncements()
    tables, _verifiers = _tables(world, memo, n=2)
    real = world.device("hr_ecc").announcement(1_000)
    assert tables[0].on_announcement(real) is RegistrationStatus.REGISTER
    fake = _variants(world, real)[variant]
    for _ in range(2):  # refused every time: a failure is never remembered
        with pytest.raises(AuthenticationError):
            tables[1].on_announcement(fake)
    assert memo.hits == 0
    assert memo.verified == 1
    assert tables[1].one_hop(real.device_uri) is None
    # and the real one still goes through (from the memo)
    assert tables[1].on_announcement(real) is RegistrationStatus.REGISTER
    assert memo.hits == 1


def test_a_new_honest_announcement_is_verified_in_full(world: World) -> None:
    memo = VerifiedAnnouncements()
    tables, verifiers = _tables(world, memo, n=1)
    d = world.device("hr_ecc")
    tables[0].on_announcement(d.announcement(1_000))
    tables[0].on_announcement(d.announcement(2_000))  # the next period: new stamp, new bytes
    (verifier,) = verifiers.values()
    assert verifier.calls == 2
    assert (memo.verified, memo.hits) == (2, 0)


def test_the_memo_is_bounded(world: World) -> None:
    memo = VerifiedAnnouncements(max_entries=4)
    tables, verifiers = _tables(world, memo, n=1)
    d = world.device("hr_ecc")
    anns = [d.announcement(stamp) for stamp in range(1, 7)]
    for a in anns:
        tables[0].on_announcement(a)
    tables[0].on_announcement(anns[0])  # evicted long ago: verified again
    (verifier,) = verifiers.values()
    assert verifier.calls == 7
    assert len(memo._seen) == 4
