"""Finding 2 at the core: only a certified, capable device of the facility converts.

A certificate from the facility CA proves a name; its ExtendedKeyUsage says what the name
*is* (iomt.crypto.roles). Registration refuses anyone not certified a device of this
facility, or announcing more than its certified capability class; the planner takes only
1-hop neighbours certified able to convert; the device checks the converter's certificate
again before its reading leaves (the one proven in the session's handshake for a session
link); a converter takes orders only from certified devices. Each check has a test below
that fails without it (docs/testing.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.sharing_world import World, build_world, der
from iomt.core import conversion
from iomt.core.conversion import ConversionRefusedError
from iomt.core.device import Converting
from iomt.core.registration import Announcement, Neighbour
from iomt.crypto.roles import CertifiedRole, Role, roles_of
from iomt.crypto.techniques import Capability
from iomt.errors import AuthenticationError, AuthorizationError

# hr_none cannot encrypt; near_ecc is its only capable 1-hop neighbour; bp_sym (symmetric)
# beside it may use converters two hops away over a session.
WARD = {
    "hr_none": (Capability.NONE, 0.0, 0.0),
    "bp_sym": (Capability.SYMMETRIC, 0.0, 1.0),
    "near_ecc": (Capability.ECC, 0.0, 5.0),
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = build_world(tmp_path, WARD)
    w.announce_all()
    for name in w.devices:
        w.record(name)
    w.grant("dr_house")
    return w


def _announce_as(
    w: World,
    name: str,
    *,
    x: float = 1.0,
    y: float = 0.0,
    technique: str = "ecc",
    convertible: tuple[str, ...] = ("cpabe", "ecc", "ecc-attr", "sym-aes"),
) -> Announcement:
    """``name`` (any keystore identity) announcing itself as a capable device at (x, y),
    signed with its own key and carrying its own, valid certificate."""
    ident = w.keystore.identity(name)
    return Announcement(
        ident.uri, technique, convertible, x, y, 10.0, 5.0, der(ident), (), 1
    ).signed_by(ident.signer)


def _ask_hr_none(w: World) -> Converting:
    p, d = w.provider("dr_house"), w.device("hr_none")
    reply = d.on_data_request(p.data_request(d.uri, "ecc"))
    assert isinstance(reply, Converting), reply
    return reply


def test_certificates_certify_roles_and_capability_classes(world: World) -> None:
    ks = world.keystore
    assert roles_of(ks.certificate("near_ecc")) == CertifiedRole(
        frozenset({Role.DEVICE}), Capability.ECC, "ward1"
    )
    assert roles_of(ks.certificate("wallet_p1")).roles == {Role.WALLET}
    assert not roles_of(ks.certificate("wallet_p1")).can_convert("ecc")
    assert not roles_of(ks.certificate("hr_none")).can_convert("ecc")  # a device, incapable
    assert roles_of(ks.certificate("near_ecc")).can_convert("ecc")
    assert not roles_of(ks.certificate("near_ecc")).can_convert("cpabe")


def test_a_wallet_announcing_itself_as_a_converter_is_refused(world: World) -> None:
    """The finding: patient 2's wallet next to hr_1, announcing conversions."""
    d = world.device("hr_none")
    rogue = _announce_as(world, "wallet_p1")
    with pytest.raises(AuthorizationError, match="certified as wallet, not as a device"):
        d.on_announcement(rogue)
    assert d.table.rejected_roles == 1
    assert d.table.one_hop(rogue.device_uri) is None
    # and a provider, a certified identity too, fares no better
    with pytest.raises(AuthorizationError, match="provider"):
        d.on_announcement(_announce_as(world, "mallory", x=0.5))
    # hr_none's reading goes to the real converter only
    pending = _ask_hr_none(world)
    assert pending.plan.candidates == [world.device("near_ecc").uri]


def test_a_device_cannot_announce_beyond_its_certified_capability(world: World) -> None:
    d = world.device("hr_none")
    # bp_sym is certified symmetric: it may not offer ECC conversions
    with pytest.raises(AuthorizationError, match="beyond its certified capability"):
        d.on_announcement(_announce_as(world, "bp_sym", y=1.0, technique="sym-aes"))
    # nor may a device certified as unable to encrypt announce anything it would apply
    other = world.device("near_ecc")
    with pytest.raises(AuthorizationError, match="beyond"):
        other.on_announcement(
            _announce_as(world, "hr_none", x=0.0, y=0.0, technique="none", convertible=("ecc",))
        )
    # the same devices announcing what they are certified for register fine
    d.on_announcement(
        _announce_as(world, "bp_sym", y=1.0, technique="sym-aes", convertible=("sym-aes",))
    )


def test_the_planner_takes_only_certified_converters(world: World) -> None:
    """Even a neighbour that got into the table (an older table, a bug elsewhere) is not a
    candidate unless its certificate says it converts."""
    d = world.device("hr_none")
    wallet = world.keystore.identity("wallet_p1")
    d.table._one_hop[wallet.uri] = Neighbour(
        uri=wallet.uri,
        technique="ecc",
        convertible=frozenset({"ecc"}),
        hops=1,
        distance=0.5,
        last_heard=world.clock(),
        expires=world.clock() + 100,
        verifier=wallet.verifier,
        certificate=der(wallet),
        certified=roles_of(wallet.certificate),
    )
    pending = _ask_hr_none(world)
    assert wallet.uri not in pending.plan.candidates
    assert pending.plan.candidates == [world.device("near_ecc").uri]
    # and the device will not hand it the reading even when told to
    with pytest.raises(ConversionRefusedError, match="certified as wallet"):
        d.conversion_order(pending, wallet.uri)


def test_a_session_link_goes_only_to_a_certified_converter(world: World) -> None:
    """bp_sym protects its hop with a session and may use converters two hops away, known
    by hearsay: the certificate the converter proved in the handshake decides."""
    sym = world.device("bp_sym")
    wallet_channels = world.providers["mallory"].channels  # a certified non-device
    world.open_session(sym.channels, wallet_channels)
    p = world.provider("dr_house")
    world.open_session(p.channels, sym.channels)
    reply = sym.on_data_request(p.data_request(sym.uri, "ecc"))
    assert isinstance(reply, Converting)
    with pytest.raises(ConversionRefusedError, match="certified as provider"):
        sym.conversion_order(reply, world.providers["mallory"].uri)
    # the certified converter passes the same check
    world.open_session(sym.channels, world.device("near_ecc").channels)
    order = sym.conversion_order(reply, world.device("near_ecc").uri)
    assert order.link_technique == conversion.LINK_SESSION


def test_a_converter_takes_orders_only_from_certified_devices(world: World) -> None:
    pending = _ask_hr_none(world)
    near = world.device("near_ecc")
    order = world.device("hr_none").conversion_order(pending, near.uri)
    neighbour = near.table.one_hop(world.device("hr_none").uri)
    assert neighbour is not None
    assert (
        conversion.accept(
            order,
            converter_uri=near.uri,
            applicable=near.config.applicable,
            neighbour=neighbour,
            session=None,
        )
        == order.payload
    )
    posing = dataclasses.replace(
        neighbour, certified=roles_of(world.keystore.certificate("wallet_p1"))
    )
    with pytest.raises(ConversionRefusedError, match="not certified as a device"):
        conversion.accept(
            order,
            converter_uri=near.uri,
            applicable=near.config.applicable,
            neighbour=posing,
            session=None,
        )


def test_revocation_and_reissued_roles_still_apply(world: World) -> None:
    ks = world.keystore
    d = world.device("hr_none")
    # near_ecc is demoted: its certificate re-issued as a device that cannot encrypt; the
    # old one (still in its announcements) is revoked as superseded
    old = _announce_as(world, "near_ecc", x=0.0, y=5.0)
    ks.set_roles("near_ecc", [Role.DEVICE], Capability.NONE)
    d.table._known_keys.clear()  # a fresh start: nothing cached
    with pytest.raises(AuthenticationError, match="revoked"):
        d.on_announcement(old)
    with pytest.raises(AuthorizationError, match="beyond"):
        d.on_announcement(_announce_as(world, "near_ecc", x=0.0, y=5.0))
    # a revoked device is refused whatever its certificate says
    ks.revoke("identity", "bp_sym")
    with pytest.raises(AuthenticationError, match="revoked"):
        d.on_announcement(
            _announce_as(world, "bp_sym", y=1.0, technique="sym-aes", convertible=("sym-aes",))
        )
