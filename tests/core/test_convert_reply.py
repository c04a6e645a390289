"""What the asking device reads from a converter's answer (no DDS): the converter's own
refusal texts, as they travel, sorted into a typed reply -- a lost session (open a new one)
apart from every other refusal."""

from __future__ import annotations

import math

import pytest

from iomt.core.conversion import (
    LINK_NONE,
    LINK_SESSION,
    SESSION_AEAD,
    ConversionOrder,
    ConvertReply,
    accept,
)
from iomt.core.registration import Neighbour
from iomt.crypto.roles import CertifiedRole, Role
from iomt.crypto.signing import Ed25519Signer
from iomt.crypto.techniques import Capability
from iomt.errors import IomtError

DEVICE = "iomt://ward1/hr_none"
CONVERTER = "iomt://ward1/hr_ecc"
SIGNER = Ed25519Signer.generate()


def _order(**changes: object) -> ConversionOrder:
    fields: dict[str, object] = {
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
        **changes,
    }
    return ConversionOrder(**fields)  # type: ignore[arg-type]


def _refusal(order: ConversionOrder) -> str:
    """The reason a converter sends for ``order``: its error's text."""
    neighbour = Neighbour(
        DEVICE,
        "none",
        frozenset(),
        1,
        1.0,
        0.0,
        math.inf,
        verifier=SIGNER.verifier(),
        certified=CertifiedRole(frozenset({Role.DEVICE}), Capability.NONE),
    )
    with pytest.raises(IomtError) as refused:
        accept(
            order,
            converter_uri=CONVERTER,
            applicable=frozenset({"none", "ecc"}),
            neighbour=neighbour,
            session=None,
        )
    return str(refused.value)


def test_a_converter_without_our_session_is_a_lost_session() -> None:
    on_session = _order(link_technique=LINK_SESSION, signature_algorithm=SESSION_AEAD)
    macd = _order(signature_algorithm="hmac-sha256")
    for order in (on_session, macd):
        reason = _refusal(order)
        assert ConvertReply.of(False, reason) is ConvertReply.LOST_SESSION, reason


def test_other_refusals_and_a_publication() -> None:
    forged = _order().signed_by(Ed25519Signer.generate())
    elsewhere = _order(converter_uri="iomt://ward1/x")
    for order in (forged, elsewhere):
        reason = _refusal(order)
        assert ConvertReply.of(False, reason) is ConvertReply.REFUSED, reason
    assert ConvertReply.of(True, "") is ConvertReply.PUBLISHED
