"""Conversion (Alg. 3) on its own: the converter's checks one by one, the plan, the encoding.

Written against mutation testing (docs/testing.md): each refusal below fails its test when
the check that makes it is removed or inverted."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from iomt.core.conversion import (
    LINK_NONE,
    LINK_SESSION,
    SESSION_AEAD,
    ConversionOrder,
    ConversionPlan,
    ConversionRefusedError,
    accept,
    check_converter,
    plan,
)
from iomt.core.registration import Neighbour, NeighbourEntry, NeighbourTable
from iomt.crypto.errors import InvalidSignatureError
from iomt.crypto.roles import CertifiedRole, Role
from iomt.crypto.sessions import (
    HandshakeIdentity,
    HandshakeInitiator,
    HandshakeResponder,
    PinnedCredentials,
    Session,
    raw_credential,
)
from iomt.crypto.signing import Ed25519Signer, HmacSha256Key, Signer, Verifier
from iomt.crypto.techniques import Capability
from iomt.errors import AuthenticationError, RemoteProtocolError

DEVICE = "iomt://ward1/hr_none"
CONVERTER = "iomt://ward1/hr_ecc"
APPLICABLE = frozenset({"none", "sym-aes", "ecc"})
# what a registered neighbour's certificate certifies: a device of ward1 (hr_none: no
# capability to encrypt; near: ECC)
INCAPABLE_DEVICE = CertifiedRole(frozenset({Role.DEVICE}), Capability.NONE, "ward1")
ECC_DEVICE = CertifiedRole(frozenset({Role.DEVICE}), Capability.ECC, "ward1")


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    """pytest.raises for exactly this message."""
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _order(**changes: object) -> ConversionOrder:
    fields: dict = {
        "request_id": "req-1",
        "device_uri": DEVICE,
        "converter_uri": CONVERTER,
        "requester_uri": "iomt://ward1/dr_house",
        "requested_technique": "ecc",
        "link_technique": LINK_NONE,
        "policy": "",
        "requester_key": b"requester-key",
        "payload": b"reading",
        "origin_signature": b"origin",
    }
    fields.update(changes)
    return ConversionOrder(**fields)


def _neighbour(
    verifier: Verifier | None, hops: int = 1, certified: CertifiedRole | None = INCAPABLE_DEVICE
) -> Neighbour:
    return Neighbour(
        DEVICE,
        "none",
        frozenset(),
        hops,
        1.0,
        0.0,
        math.inf,
        verifier=verifier,
        certified=certified,
    )


def _sessions(device_name: str = "hr_none") -> tuple[Session, Session]:
    """(the device's session, the converter's session) of one handshake."""

    def ident(name: str) -> HandshakeIdentity:
        signer = Ed25519Signer.generate()
        return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))

    dev, conv = ident(device_name), ident("hr_ecc")
    pins = PinnedCredentials({dev.name: dev.signer.verifier(), conv.name: conv.signer.verifier()})
    i, r = HandshakeInitiator(dev, pins), HandshakeResponder(conv, pins)
    m2 = r.receive(i.start())
    assert m2 is not None
    assert i.confirm(r.receive(i.receive(m2))) is i.session  # message 4 confirms
    return i.session, r.session


def _accept(order: ConversionOrder, signer: Signer | None = None, **kw: object) -> bytes:
    args: dict = {
        "converter_uri": CONVERTER,
        "applicable": APPLICABLE,
        "neighbour": _neighbour(signer.verifier() if signer else None),
        "session": None,
    }
    args.update(kw)
    return accept(order, **args)


# -- the converter's checks ---------------------------------------------------------------


def test_a_signed_order_from_a_registered_one_hop_neighbour_is_converted() -> None:
    signer = Ed25519Signer.generate()
    assert _accept(_order().signed_by(signer), signer) == b"reading"


def test_an_order_for_another_converter_is_refused() -> None:
    signer = Ed25519Signer.generate()
    order = _order(converter_uri="iomt://ward1/bp_abe").signed_by(signer)
    with raises(ConversionRefusedError, f"order is for iomt://ward1/bp_abe, not {CONVERTER}"):
        _accept(order, signer)


@pytest.mark.parametrize("who", ["unregistered", "two hops away", "no registered key"])
def test_an_order_from_a_device_that_is_not_a_registered_one_hop_neighbour_is_refused(
    who: str,
) -> None:
    signer = Ed25519Signer.generate()
    neighbour = {
        "unregistered": None,
        "two hops away": _neighbour(signer.verifier(), hops=2),
        "no registered key": _neighbour(None),
    }[who]
    with raises(ConversionRefusedError, f"{DEVICE} is not a registered neighbour"):
        _accept(_order().signed_by(signer), signer, neighbour=neighbour)


@pytest.mark.parametrize(
    "certified",
    [
        None,  # no certified role known (as for a hearsay 2-hop entry)
        CertifiedRole(frozenset({Role.WALLET}), None, "ward1"),
        CertifiedRole(frozenset({Role.DEVICE}), None, "ward1"),  # a device of no class
    ],
)
def test_an_order_from_a_neighbour_not_certified_as_a_device_is_refused(
    certified: CertifiedRole | None,
) -> None:
    signer = Ed25519Signer.generate()
    neighbour = _neighbour(signer.verifier(), certified=certified)
    with raises(ConversionRefusedError, f"{DEVICE} is not certified as a device"):
        _accept(_order().signed_by(signer), signer, neighbour=neighbour)


def test_an_order_for_a_technique_the_converter_cannot_apply_is_refused() -> None:
    signer = Ed25519Signer.generate()
    order = _order(requested_technique="cpabe").signed_by(signer)
    with raises(ConversionRefusedError, "cpabe is not applicable here"):
        _accept(order, signer)


def test_an_order_with_a_forged_signature_is_refused() -> None:
    signer, mallory = Ed25519Signer.generate(), Ed25519Signer.generate()
    with pytest.raises(InvalidSignatureError):
        _accept(_order().signed_by(mallory), signer)
    # a signature over other bytes than the order's, by the right key
    order = _order().signed_by(signer)
    with pytest.raises(InvalidSignatureError):
        _accept(dataclasses.replace(order, payload=b"forged reading"), signer)


def test_an_order_signed_with_another_algorithm_than_the_registered_key_is_refused() -> None:
    signer = Ed25519Signer.generate()
    order = dataclasses.replace(_order().signed_by(signer), signature_algorithm="ecdsa-p256")
    with raises(AuthenticationError, "order not signed with the device's registered key"):
        _accept(order, signer)


def test_a_macd_order_needs_and_is_checked_with_the_session_mac_key() -> None:
    signer, key = Ed25519Signer.generate(), HmacSha256Key(b"k" * 32)
    order = _order().signed_by(key)
    with raises(AuthenticationError, f"no session with {DEVICE} to check its MAC"):
        _accept(order, signer)
    assert _accept(order, signer, mac=key) == b"reading"
    with pytest.raises(InvalidSignatureError):
        _accept(order, signer, mac=HmacSha256Key(b"x" * 32))


def test_an_unknown_link_technique_is_a_protocol_error() -> None:
    signer = Ed25519Signer.generate()
    order = _order(link_technique="carrier-pigeon").signed_by(signer)
    with raises(RemoteProtocolError, "unknown link technique 'carrier-pigeon'"):
        _accept(order, signer)


def _session_order(device_session: Session, **changes: object) -> ConversionOrder:
    draft = _order(link_technique=LINK_SESSION, signature_algorithm=SESSION_AEAD, **changes)
    sealed = device_session.protect(b"reading", aad=draft.header_bytes())
    return dataclasses.replace(draft, payload=sealed)


def test_a_session_link_order_is_opened_with_the_session_to_its_device() -> None:
    mine, theirs = _sessions()
    signer = Ed25519Signer.generate()
    order = _session_order(mine)
    assert _accept(order, signer, session=theirs) == b"reading"


def test_a_session_link_order_without_a_session_or_on_another_devices_session_is_refused() -> None:
    signer = Ed25519Signer.generate()
    mine, _theirs = _sessions()
    order = _session_order(mine)
    with raises(AuthenticationError, f"no session with {DEVICE}"):
        _accept(order, signer, session=None)
    _other_device, others_session = _sessions("bp_sym")
    with raises(AuthenticationError, f"no session with {DEVICE}"):
        _accept(order, signer, session=others_session)


def test_a_session_link_order_must_be_marked_as_authenticated_by_the_session() -> None:
    mine, theirs = _sessions()
    signer = Ed25519Signer.generate()
    order = _session_order(mine)
    with raises(AuthenticationError, "a session-link order is authenticated by the session"):
        _accept(dataclasses.replace(order, signature_algorithm="ed25519"), signer, session=theirs)


def test_a_session_link_order_binds_its_header() -> None:
    mine, theirs = _sessions()
    signer = Ed25519Signer.generate()
    order = dataclasses.replace(_session_order(mine), requester_uri="iomt://ward1/mallory")
    with pytest.raises(AuthenticationError):
        _accept(order, signer, session=theirs)


# -- the asking device's check of its converter ---------------------------------------------------


def test_a_converter_is_checked_by_its_certificate_before_a_reading_leaves() -> None:
    near = _neighbour(None, certified=ECC_DEVICE)
    assert check_converter(CONVERTER, "ecc", neighbour=near, session=None) is ECC_DEVICE
    # nothing to check it by: neither a session nor a registration
    with raises(ConversionRefusedError, f"no certificate of {CONVERTER} to check its role"):
        check_converter(CONVERTER, "ecc", neighbour=None, session=None)
    # a session's peer credential comes first, and must be a certificate
    mine, _theirs = _sessions()
    assert mine.peer_credential.startswith(b"raw:")
    with raises(ConversionRefusedError, f"{CONVERTER}: not a DER certificate"):
        check_converter(CONVERTER, "ecc", neighbour=near, session=mine)
    with raises(
        ConversionRefusedError,
        f"{CONVERTER} is certified as device (ecc): not a device that converts into cpabe",
    ):
        check_converter(CONVERTER, "cpabe", neighbour=near, session=None)
    # certified by ward1, under a URI of ward2
    abroad = "iomt://ward2/hr_ecc"
    with raises(ConversionRefusedError, f"{abroad} is certified by 'ward1'"):
        check_converter(abroad, "ecc", neighbour=near, session=None)


# -- the plan ----------------------------------------------------------------------------------


def _table(max_hops: int = 2) -> NeighbourTable:
    table = NeighbourTable(
        "iomt://ward1/me",
        0.0,
        0.0,
        10.0,
        check_certificate=lambda _uri, _cert: Ed25519Signer.generate().verifier(),
        max_hops=max_hops,
        clock=lambda: 0.0,
    )
    near = Neighbour(
        "iomt://ward1/near",
        "none",
        frozenset({"ecc"}),
        1,
        2.0,
        0.0,
        100.0,
        advertised=(NeighbourEntry("iomt://ward1/far", "ecc", 1),),
        certified=ECC_DEVICE,
    )
    table._one_hop[near.uri] = near
    return table


def test_an_incapable_device_plans_only_one_hop_converters() -> None:
    assert plan(_table(), "ecc", can_encrypt=False).candidates == ["iomt://ward1/near"]
    assert plan(_table(), "ecc", can_encrypt=True).candidates == [
        "iomt://ward1/near",
        "iomt://ward1/far",
    ]
    assert plan(_table(max_hops=1), "ecc", can_encrypt=True).candidates == ["iomt://ward1/near"]
    nobody = plan(_table(), "cpabe", can_encrypt=True)
    assert nobody.technique == "cpabe" and nobody.next() is None
    assert nobody.explain() == "no registered neighbour can apply cpabe"


def test_a_plan_tries_each_candidate_once_and_explains_its_failures() -> None:
    p = ConversionPlan("ecc", ["a", "b"])
    assert p.explain() == "no candidate tried"
    assert p.next() == "a"
    p.failed("a", "timeout")
    assert p.next() == "b"
    p.failed("b", "refused")
    assert p.next() is None
    assert p.explain() == "a: timeout; b: refused"
    assert ConversionPlan("cpabe", []).explain() == "no registered neighbour can apply cpabe"


# -- the encoding --------------------------------------------------------------------------------


def test_an_order_signs_every_field_but_its_signature_in_a_fixed_encoding() -> None:
    order = ConversionOrder(
        "r", "d", "c", "q", "ecc", "none", "p", b"K", b"PAY", b"O", "ed25519", b"S"
    )

    def lp(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    header = b"iomt/conversion-order/v1" + b"".join(
        lp(x) for x in (b"r", b"d", b"c", b"q", b"ecc", b"none", b"p", b"K", b"O", b"ed25519")
    )
    assert order.header_bytes() == header
    assert order.signed_bytes() == header + lp(b"PAY")
