"""Control registration (Alg. 2.1) on its own: range, signatures, expiry, the 2-hop view.

Written against mutation testing (docs/testing.md): boundaries (exactly in range, exactly
expired) and every refusal are pinned here."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from iomt.core.registration import (
    Announcement,
    NeighbourEntry,
    NeighbourTable,
    RegistrationStatus,
    VerifiedAnnouncements,
    facility_of,
)
from iomt.crypto.errors import InvalidSignatureError
from iomt.crypto.roles import (
    CAPABILITY_OIDS,
    ROLE_OIDS,
    CertifiedRole,
    Role,
    role_extension,
)
from iomt.crypto.signing import Ed25519Signer, Verifier
from iomt.crypto.techniques import Capability
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError

ME = "iomt://ward1/me"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Radio:
    """Devices with keys and X.509 certificates certifying each a device of ward1 with a
    capability class (registration reads the role from them); a certificate is checked by
    lookup: the one the radio issued to that device."""

    def __init__(self) -> None:
        self.signers: dict[str, Ed25519Signer] = {}
        self.certificates: dict[str, bytes] = {}
        self.checks = 0
        self._ca = ed25519.Ed25519PrivateKey.generate()

    def check(self, uri: str, cert: bytes) -> Verifier:
        self.checks += 1
        signer = self.signers.get(uri)
        if signer is None or self.certificates.get(uri) != cert:
            raise AuthenticationError(f"no certificate for {uri}")
        return signer.verifier()

    def certify(
        self,
        uri: str,
        roles: tuple[Role, ...] = (Role.DEVICE,),
        capability: Capability | None = Capability.ECC,
        facility: str = "ward1",
        usage: x509.ExtendedKeyUsage | None = None,
    ) -> None:
        """Issue ``uri`` (a new) certificate certifying ``roles`` and ``capability`` (or
        carrying ``usage`` as it is: what another CA's tooling might have written)."""
        signer = self.signers.setdefault(uri, Ed25519Signer.generate())
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, uri.rsplit("/", 1)[1]),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, facility),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ward1 CA")]))
            .public_key(
                ed25519.Ed25519PublicKey.from_public_bytes(signer.verifier().public_bytes())
            )
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(
                usage
                if usage is not None
                else role_extension(roles, capability, require_capability=False),
                critical=True,
            )
            .sign(self._ca, None)
        )
        self.certificates[uri] = cert.public_bytes(serialization.Encoding.DER)

    def announce(
        self,
        name: str,
        x: float,
        y: float,
        *,
        radio_range: float = 10.0,
        period_s: float = 20.0,
        technique: str = "ecc",
        convertible: tuple[str, ...] = ("sym-aes",),
        neighbours: tuple[NeighbourEntry, ...] = (),
        capability: Capability = Capability.ECC,
    ) -> Announcement:
        uri = name if name.startswith("iomt://") else f"iomt://ward1/{name}"
        if uri not in self.certificates:
            self.certify(uri, capability=capability)
        signer = self.signers[uri]
        return Announcement(
            uri,
            technique,
            convertible,
            x,
            y,
            radio_range,
            period_s,
            self.certificates[uri],
            neighbours,
            stamp_ns=123,
        ).signed_by(signer)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def radio() -> Radio:
    return Radio()


def _table(radio: Radio, clock: Clock, **kw: object) -> NeighbourTable:
    return NeighbourTable(ME, 0.0, 0.0, 10.0, check_certificate=radio.check, clock=clock, **kw)  # type: ignore[arg-type]


def test_a_device_in_range_registers_with_what_it_announced(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    two_hop = NeighbourEntry("iomt://ward1/far", "cpabe", 1)
    stale = NeighbourEntry("iomt://ward1/farther", "cpabe", 2)
    a = radio.announce("a", 3.0, 4.0, neighbours=(two_hop, stale))
    assert table.on_announcement(a) is RegistrationStatus.REGISTER
    n = table.one_hop(a.device_uri)
    assert n is not None
    assert (n.uri, n.technique, n.convertible, n.hops) == (a.device_uri, "ecc", {"sym-aes"}, 1)
    assert n.distance == 5.0
    assert (n.last_heard, n.expires) == (1000.0, 1000.0 + 3 * 20.0)
    assert n.certificate == a.certificate and n.verifier is not None
    assert n.certified == CertifiedRole(frozenset({Role.DEVICE}), Capability.ECC, "ward1")
    assert n.advertised == (two_hop,)  # only what the sender heard itself
    assert len(table) == 1 and list(table.uris()) == [a.device_uri, "iomt://ward1/far"]


def test_a_device_does_not_register_itself(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    a = radio.announce("me", 0.0, 0.0)
    assert table.on_announcement(a) is RegistrationStatus.NOT_REGISTER
    assert len(table) == 0 and radio.checks == 0


@pytest.mark.parametrize(
    ("x", "y", "period_s"),
    [(math.nan, 0.0, 20.0), (0.0, math.inf, 20.0), (0.0, 0.0, 0.0), (0.0, 0.0, math.inf)],
)
def test_an_announcement_with_bad_geometry_is_a_protocol_error(
    radio: Radio, clock: Clock, x: float, y: float, period_s: float
) -> None:
    table = _table(radio, clock)
    a = replace(radio.announce("a", 1.0, 1.0), x=x, y=y, period_s=period_s)
    message = f"announcement from {a.device_uri} has bad geometry"
    with pytest.raises(RemoteProtocolError, match=f"^{re.escape(message)}$"):
        table.on_announcement(a)
    assert len(table) == 0


def test_radio_range_is_inclusive_and_both_ends_must_reach(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    assert table.on_announcement(radio.announce("edge", 6.0, 8.0)) is RegistrationStatus.REGISTER
    # within our range, but the sender's radio does not reach us
    weak = radio.announce("weak", 3.0, 4.0, radio_range=4.9)
    assert table.on_announcement(weak) is RegistrationStatus.NOT_REGISTER
    # within its range, not ours
    loud = radio.announce("loud", 0.0, 10.5, radio_range=50.0)
    assert table.on_announcement(loud) is RegistrationStatus.NOT_REGISTER
    assert [n.uri for n in table.neighbours()] == ["iomt://ward1/edge"]


def test_a_forged_announcement_is_rejected_and_counted(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    a = radio.announce("a", 1.0, 1.0)
    with pytest.raises(InvalidSignatureError):
        table.on_announcement(replace(a, security_technique="cpabe"))
    assert table.rejected == 1 and len(table) == 0
    assert table.on_announcement(a) is RegistrationStatus.REGISTER
    assert table.rejected == 1
    with pytest.raises(InvalidSignatureError):
        table.on_announcement(replace(a, x=2.0))
    assert table.rejected == 2


def test_only_a_device_of_this_facility_registers_and_only_as_what_it_is_certified(
    radio: Radio, clock: Clock
) -> None:
    table = _table(radio, clock)
    radio.certify("iomt://ward1/wallet", roles=(Role.WALLET,), capability=None)
    radio.certify("iomt://ward1/classless", capability=None)
    radio.certify("iomt://ward1/abroad", facility="ward2")
    radio.certify("iomt://ward1/weak", capability=Capability.NONE)
    refusals = {
        "wallet": "is certified as wallet, not as a device",
        "classless": "is certified as device, not as a device",
        "abroad": "is a device of 'ward2', not of 'ward1'",
        # announces ecc and converts into sym-aes: both beyond a device that cannot encrypt
        "weak": "announces ecc, sym-aes beyond its certified capability (none)",
    }
    for name, why in refusals.items():
        message = f"registration of iomt://ward1/{name} refused: it {why}"
        with pytest.raises(AuthorizationError, match=f"^{re.escape(message)}$"):
            table.on_announcement(radio.announce(name, 1.0, 1.0))
    # a device of ward1's CA under another facility's URI
    radio.certify("iomt://ward2/lost")
    lost = r"^registration of iomt://ward2/lost refused: it is a device of 'ward1', not of "
    with pytest.raises(AuthorizationError, match=lost):
        table.on_announcement(radio.announce("iomt://ward2/lost", 1.0, 1.0))
    assert (table.rejected_roles, table.rejected, len(table)) == (5, 0, 0)
    # a registered device whose new certificate no longer covers its announcement is dropped
    a = radio.announce("a", 1.0, 1.0)
    assert table.on_announcement(a) is RegistrationStatus.REGISTER
    radio.certify(a.device_uri, capability=Capability.SYMMETRIC)
    with pytest.raises(AuthorizationError, match="beyond its certified capability"):
        table.on_announcement(radio.announce("a", 1.0, 1.0))
    assert table.one_hop(a.device_uri) is None and table.rejected_roles == 6


def test_a_certificate_with_a_capability_but_no_device_role_does_not_register(
    radio: Radio, clock: Clock
) -> None:
    """Only the device role makes a device: a capability class beside another role (which
    iomt's CA never issues) is not enough."""
    table = _table(radio, clock)
    usage = x509.ExtendedKeyUsage([ROLE_OIDS[Role.WALLET], CAPABILITY_OIDS[Capability.ECC]])
    radio.certify("iomt://ward1/w", usage=usage)
    message = "registration of iomt://ward1/w refused: it is certified as wallet, not as a device"
    with pytest.raises(AuthorizationError, match=f"^{re.escape(message)}$"):
        table.on_announcement(radio.announce("w", 1.0, 1.0))
    assert (table.rejected_roles, len(table)) == (1, 0)


def test_a_certificate_whose_roles_do_not_parse_is_an_authentication_error(
    radio: Radio, clock: Clock
) -> None:
    table = _table(radio, clock)
    two = x509.ExtendedKeyUsage(
        [ROLE_OIDS[Role.DEVICE], CAPABILITY_OIDS[Capability.ECC], CAPABILITY_OIDS[Capability.ABE]]
    )
    radio.certify("iomt://ward1/a", usage=two)
    message = "certificate of iomt://ward1/a: certificate names more than one capability class"
    with pytest.raises(AuthenticationError, match=f"^{re.escape(message)}$"):
        table.on_announcement(radio.announce("a", 1.0, 1.0))
    assert (table.rejected, table.rejected_roles, len(table)) == (0, 0, 0)


def test_a_table_registers_the_devices_of_the_facility_it_is_given(
    radio: Radio, clock: Clock
) -> None:
    table = _table(radio, clock, facility="ward2")
    assert table.facility == "ward2"
    radio.certify("iomt://ward2/b", facility="ward2")
    b = radio.announce("iomt://ward2/b", 1.0, 1.0)
    assert table.on_announcement(b) is RegistrationStatus.REGISTER
    message = "registration of iomt://ward1/a refused: it is a device of 'ward1', not of 'ward2'"
    with pytest.raises(AuthorizationError, match=f"^{re.escape(message)}$"):
        table.on_announcement(radio.announce("a", 1.0, 1.0))
    assert _table(radio, clock).facility == "ward1"  # by default: the one of its own URI


def test_distance_is_measured_from_where_the_table_is(radio: Radio, clock: Clock) -> None:
    table = NeighbourTable(ME, 1.0, 2.0, 10.0, check_certificate=radio.check, clock=clock)
    assert table.distance_to(4.0, 6.0) == 5.0
    assert table.distance_to(-2.0, -2.0) == 5.0
    a = radio.announce("a", 7.0, 10.0)  # exactly at the edge of range
    assert table.on_announcement(a) is RegistrationStatus.REGISTER
    n = table.one_hop(a.device_uri)
    assert n is not None and n.distance == 10.0
    assert table.on_announcement(radio.announce("b", 7.0, 10.1)) is RegistrationStatus.NOT_REGISTER


@pytest.mark.parametrize(
    ("uri", "facility"),
    [
        ("iomt://ward1/hr_1", "ward1"),
        ("iomt://ward1/box/hr_1", "ward1"),
        ("iomt://ward1", "ward1"),
        ("dr_house", ""),
        ("https://ward1/hr_1", ""),
    ],
)
def test_the_facility_of_a_uri_is_its_first_segment(uri: str, facility: str) -> None:
    assert facility_of(uri) == facility


def test_a_short_announcement_period_is_fine(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    a = radio.announce("a", 1.0, 1.0, period_s=0.5)
    assert table.on_announcement(a) is RegistrationStatus.REGISTER
    n = table.one_hop(a.device_uri)
    assert n is not None and n.expires == clock.t + 1.5


def test_a_certificate_is_checked_once_per_device_and_certificate(
    radio: Radio, clock: Clock
) -> None:
    table = _table(radio, clock)
    a = radio.announce("a", 1.0, 1.0)
    table.on_announcement(a)
    table.on_announcement(a)
    assert radio.checks == 1
    b = radio.announce("b", 1.0, 2.0)
    table.on_announcement(b)
    assert radio.checks == 2


def test_a_silent_device_expires_after_three_periods(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    table.on_announcement(radio.announce("a", 1.0, 1.0, period_s=10.0))
    clock.t += 29.999
    assert table.one_hop("iomt://ward1/a") is not None and table.expire() == []
    clock.t = 1000.0 + 30.0  # exactly three periods: gone
    assert table.one_hop("iomt://ward1/a") is None
    assert len(table) == 0 and table.neighbours() == []
    assert table.expire() == ["iomt://ward1/a"]
    assert table.expire() == []


def test_a_neighbour_is_not_advertised_from_the_moment_it_expires(
    radio: Radio, clock: Clock
) -> None:
    table = _table(radio, clock)
    table.on_announcement(radio.announce("a", 1.0, 1.0, period_s=10.0))
    clock.t = 1000.0 + 29.999
    assert table.advertised() == (NeighbourEntry("iomt://ward1/a", "ecc", 1),)
    clock.t = 1000.0 + 30.0
    assert table.advertised() == () and table.one_hop_nearest() == []


def test_a_forgotten_neighbour_is_gone_until_heard_again(radio: Radio, clock: Clock) -> None:
    table = _table(radio, clock)
    a = radio.announce("a", 1.0, 1.0)
    table.on_announcement(a)
    table.forget(a.device_uri)
    table.forget(a.device_uri)  # twice is fine
    assert table.one_hop(a.device_uri) is None
    table.on_announcement(a)
    assert table.one_hop(a.device_uri) is not None


class Watched(Verifier):
    """A verifier that counts what it is asked: signatures checked, its key read."""

    algorithm = "ed25519"

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.verifies = 0
        self.keys_read = 0

    def verify(self, data: bytes, signature: bytes) -> None:
        self.verifies += 1
        self.inner.verify(data, signature)

    def public_bytes(self) -> bytes:
        self.keys_read += 1
        return self.inner.public_bytes()


def test_the_verified_memo_hits_only_what_verified_under_that_key(radio: Radio) -> None:
    memo = VerifiedAnnouncements()
    a = radio.announce("a", 1.0, 1.0)
    key = Watched(radio.signers[a.device_uri].verifier())
    memo.check(a, key)
    assert (key.verifies, key.keys_read, memo.verified, memo.hits) == (1, 1, 1, 0)
    # the very object verified last, under the very same verifier: nothing is asked again
    memo.check(a, key)
    assert (key.verifies, key.keys_read, memo.verified, memo.hits) == (1, 1, 1, 1)
    # an equal announcement (decoded again) is found by its content and the key's bytes
    memo.check(replace(a), key)
    assert (key.verifies, key.keys_read, memo.verified, memo.hits) == (1, 2, 1, 2)
    # the same object under another key is verified, and refused, every time
    other = Watched(Ed25519Signer.generate().verifier())
    for attempt in (1, 2):
        with pytest.raises(InvalidSignatureError):
            memo.check(a, other)
        assert (other.verifies, memo.verified, memo.hits) == (attempt, 1, 2)


def test_the_verified_memo_holds_at_most_max_entries(radio: Radio) -> None:
    """The oldest entry goes when one more comes: the first of max_entries + 1
    announcements is verified again, as an object and by its content."""
    memo = VerifiedAnnouncements(max_entries=3)
    first = radio.announce("a", 1.0, 1.0)
    key = Watched(radio.signers[first.device_uri].verifier())
    later = [replace(first, stamp_ns=s).signed_by(radio.signers[first.device_uri]) for s in (1, 2)]
    for a in (first, *later):
        memo.check(a, key)
    memo.check(first, key)  # three entries: still all there
    assert (key.verifies, memo.verified, memo.hits) == (3, 3, 1)
    memo.check(replace(first, stamp_ns=3).signed_by(radio.signers[first.device_uri]), key)
    memo.check(first, key)  # the fourth pushed it out
    assert (key.verifies, memo.verified, memo.hits) == (5, 5, 1)


def _populated(radio: Radio, clock: Clock, **kw: object) -> NeighbourTable:
    table = _table(radio, clock, **kw)
    adv = (
        NeighbourEntry(ME, "ecc", 1),  # ourselves, heard by them
        NeighbourEntry("iomt://ward1/near", "ecc", 1),  # already our 1-hop neighbour
        NeighbourEntry("iomt://ward1/z2", "cpabe", 1),
        NeighbourEntry("iomt://ward1/y2", "ecc", 1),  # also heard from near: near's wins
    )
    table.on_announcement(radio.announce("far", 0.0, 6.0, neighbours=adv, technique="none"))
    table.on_announcement(
        radio.announce(
            "near", 0.0, 2.0, neighbours=(NeighbourEntry("iomt://ward1/y2", "sym-aes", 1),)
        )
    )
    table.on_announcement(
        radio.announce("tie", 2.0, 0.0, convertible=("cpabe",), capability=Capability.ABE)
    )
    return table


def test_neighbours_are_nearest_first_then_two_hop_by_name(radio: Radio, clock: Clock) -> None:
    table = _populated(radio, clock)
    got = [(n.uri.rsplit("/", 1)[1], n.hops) for n in table.neighbours()]
    assert got == [("near", 1), ("tie", 1), ("far", 1), ("y2", 2), ("z2", 2)]
    y2 = table.neighbours()[3]
    # learned from the nearest neighbour that advertised it
    assert (y2.technique, y2.via, y2.distance, y2.convertible) == (
        "sym-aes",
        "iomt://ward1/near",
        math.inf,
        frozenset(),
    )
    near = table.one_hop("iomt://ward1/near")
    assert near is not None and (y2.expires, y2.last_heard) == (near.expires, near.last_heard)


def test_a_one_hop_table_has_no_two_hop_neighbours(radio: Radio, clock: Clock) -> None:
    table = _populated(radio, clock, max_hops=1)
    assert [n.hops for n in table.neighbours()] == [1, 1, 1]


def test_converters_are_those_that_can_apply_the_technique_within_the_hop_limit(
    radio: Radio, clock: Clock
) -> None:
    table = _populated(radio, clock)

    def names(technique: str, max_hops: int | None = None) -> list[str]:
        return [n.uri.rsplit("/", 1)[1] for n in table.converters_for(technique, max_hops=max_hops)]

    assert names("cpabe") == ["tie", "z2"]  # tie converts to it, z2 announces it
    assert names("cpabe", max_hops=1) == ["tie"]
    assert names("sym-aes") == ["near", "far", "y2"]
    assert names("ecc", max_hops=2) == ["near", "tie"]


def test_an_announcement_advertises_the_nearest_live_one_hop_neighbours(
    radio: Radio, clock: Clock
) -> None:
    table = _populated(radio, clock)
    assert table.advertised() == (
        NeighbourEntry("iomt://ward1/near", "ecc", 1),
        NeighbourEntry("iomt://ward1/tie", "ecc", 1),
        NeighbourEntry("iomt://ward1/far", "none", 1),
    )
    for i in range(7):
        table.on_announcement(radio.announce(f"n{i}", 7.0 + i / 10, 0.0))
    assert len(table.advertised()) == 8  # by default the nearest eight
    assert [e.uri for e in table.advertised(limit=2)] == [
        "iomt://ward1/near",
        "iomt://ward1/tie",
    ]


def test_an_announcement_signs_a_fixed_encoding_of_every_field() -> None:
    a = Announcement(
        "u", "ecc", ("a", "bc"), 1.5, -2.0, 8.0, 1.5, b"C", (NeighbourEntry("n", "t", 2),), -1
    )
    assert a.signed_bytes() == (
        b"iomt/registration/v1"
        b"\x00\x00\x00\x01u"
        b"\x00\x00\x00\x03ecc"
        b"\x00\x00\x00\x02"
        b"\x00\x00\x00\x01a\x00\x00\x00\x02bc"
        b"\x3f\xc0\x00\x00\xc0\x00\x00\x00\x41\x00\x00\x00\x00\x00\x05\xdc"  # 1.5 -2 8 1500 ms
        b"\x00\x00\x00\x01C"
        b"\x00\x00\x00\x01"
        b"\x00\x00\x00\x01n\x00\x00\x00\x01t\x02"
        b"\xff\xff\xff\xff\xff\xff\xff\xff"
    )
    signer = Ed25519Signer.generate()
    signed = a.signed_by(signer)
    signed.verify(signer.verifier())
    signer.verifier().verify(a.signed_bytes(), signed.signature)


def test_an_announcement_encodes_the_whole_range_of_its_wire_fields() -> None:
    """The wire carries the period as uint32 milliseconds and a hop count as uint8."""
    top = Announcement(
        "u", "ecc", (), 0.0, 0.0, 0.0, 4294967.295, b"", (NeighbourEntry("n", "t", 255),), 0
    )
    assert top.signed_bytes().endswith(
        b"\xff\xff\xff\xff"  # period 2^32 - 1 ms
        b"\x00\x00\x00\x00"  # no certificate
        b"\x00\x00\x00\x01"
        b"\x00\x00\x00\x01n\x00\x00\x00\x01t\xff"  # 255 hops
        b"\x00\x00\x00\x00\x00\x00\x00\x00"
    )
    signer = Ed25519Signer.generate()
    top.signed_by(signer).verify(signer.verifier())
