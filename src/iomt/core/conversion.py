"""Conversion (Bilal & Hassan, Alg. 3): a nearby capable device applies the technique.

    Conversion(Message, Token, Data):
        if Device.Enctechnique == Message.ST: Publish(Convert(Data, ST), Token)
        else: invalid request

The asking device orders its registered neighbours that can apply the requested
technique by hop count and tries them in turn (``ConversionPlan``); none left is a
clear refusal. What crosses the device-converter link is part of the design:

* a device that can do symmetric cryptography protects the reading with a session it
  holds with the converter (link ``session``);
* a device that cannot encrypt at all sends it in plaintext (link ``none``) — to a
  1-hop neighbour only, so an incapable device's plaintext crosses at most that one hop.

Every order is signed by the asking device (all devices hold an identity key, even those
that cannot encrypt), over all its fields, and carries the device's signature over the
reading itself; the converter refuses orders from devices it has not registered, orders
whose plaintext would have crossed more than one hop, and techniques it cannot apply.

**Roles.** A reading goes only to a converter whose certificate (:mod:`iomt.crypto.roles`)
says it is a *device of this facility able to apply the technique*: the planner takes only
1-hop neighbours so certified (2-hop candidates are hearsay, reached only over a session,
whose handshake certificate is checked the same way before the reading leaves:
:func:`check_converter`), and a converter takes orders only from certified devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from iomt.core.listener import name_of
from iomt.core.registration import Neighbour, NeighbourTable, facility_of
from iomt.crypto.encoding import lp32
from iomt.crypto.errors import CertificateError
from iomt.crypto.roles import CertifiedRole, roles_of
from iomt.crypto.sessions import Session
from iomt.crypto.signing import Signer, Verifier
from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError

LINK_NONE = "none"
LINK_SESSION = "session"
SESSION_AEAD = "session-aead"  # an order on a session link: its AEAD is the authentication
_CONTEXT = b"iomt/conversion-order/v1"


@dataclass(frozen=True, slots=True)
class ConversionOrder:
    """The core's view of an iomt_interfaces/msg/ConversionRequest."""

    request_id: str
    device_uri: str
    converter_uri: str
    requester_uri: str
    requested_technique: str
    link_technique: str
    policy: str
    requester_key: bytes
    payload: bytes
    origin_signature: bytes
    signature_algorithm: str = ""
    signature: bytes = b""

    def header_bytes(self) -> bytes:
        """Every field but payload and signature: the session AEAD's associated data."""
        return _CONTEXT + b"".join(
            lp32(p)
            for p in (
                self.request_id.encode(),
                self.device_uri.encode(),
                self.converter_uri.encode(),
                self.requester_uri.encode(),
                self.requested_technique.encode(),
                self.link_technique.encode(),
                self.policy.encode(),
                self.requester_key,
                self.origin_signature,
                self.signature_algorithm.encode(),
            )
        )

    def signed_bytes(self) -> bytes:
        return self.header_bytes() + lp32(self.payload)

    def signed_by(self, signer: Signer) -> ConversionOrder:
        unsigned = replace(self, signature_algorithm=signer.algorithm, signature=b"")
        return replace(unsigned, signature=signer.sign(unsigned.signed_bytes()))


@dataclass
class ConversionPlan:
    """The candidates for one conversion, best first; ``next()`` after each failure."""

    technique: str
    candidates: list[str]
    tried: list[tuple[str, str]] = field(default_factory=list)

    def next(self) -> str | None:
        done = {uri for uri, _ in self.tried}
        for uri in self.candidates:
            if uri not in done:
                return uri
        return None

    def failed(self, uri: str, reason: str) -> None:
        self.tried.append((uri, reason))

    def explain(self) -> str:
        if not self.candidates:
            return f"no registered neighbour can apply {self.technique}"
        return "; ".join(f"{u}: {r}" for u, r in self.tried) or "no candidate tried"


def plan(table: NeighbourTable, technique: str, *, can_encrypt: bool) -> ConversionPlan:
    """Alg. 3's candidate list. Plaintext may cross at most one hop, so a device that
    cannot encrypt only considers 1-hop neighbours; a 1-hop candidate must be certified a
    device able to apply ``technique`` (2-hop ones are checked when the session to them is
    open: :func:`check_converter`)."""
    max_hops = table.max_hops if can_encrypt else 1
    return ConversionPlan(
        technique,
        [
            n.uri
            for n in table.converters_for(technique, max_hops=max_hops)
            if n.hops > 1 or n.certified_converter(technique)
        ],
    )


def check_converter(
    converter_uri: str,
    technique: str,
    *,
    neighbour: Neighbour | None,
    session: Session | None,
) -> CertifiedRole:
    """Before a reading leaves for ``converter_uri``: its certificate -- the one it proved in
    our session's handshake, else the one it registered with -- must certify a device of
    our facility that can apply ``technique``. Raises ConversionRefusedError."""
    certified: CertifiedRole | None = None
    try:
        if session is not None and session.peer_credential:
            certified = roles_of(session.peer_credential)
        elif neighbour is not None:
            certified = neighbour.certified
    except CertificateError as exc:
        raise ConversionRefusedError(f"{converter_uri}: {exc}") from None
    if certified is None:
        raise ConversionRefusedError(f"no certificate of {converter_uri} to check its role")
    if not certified.can_convert(technique):
        raise ConversionRefusedError(
            f"{converter_uri} is certified as {certified.describe()}: not a device that "
            f"converts into {technique}"
        )
    if certified.facility != facility_of(converter_uri):
        raise ConversionRefusedError(f"{converter_uri} is certified by {certified.facility!r}")
    return certified


class ConversionRefusedError(AuthorizationError):
    """A converter would not (or could not) convert this order."""


def accept(
    order: ConversionOrder,
    *,
    converter_uri: str,
    applicable: frozenset[str],
    neighbour: Neighbour | None,
    session: Session | None,
    mac: Verifier | None = None,
) -> bytes:
    """The converter's checks (Alg. 3 line 3 and the link rules); returns the reading.

    Raises ConversionRefusedError, AuthenticationError or RemoteProtocolError.
    """
    if order.converter_uri != converter_uri:
        raise ConversionRefusedError(f"order is for {order.converter_uri}, not {converter_uri}")
    if neighbour is None or neighbour.hops != 1 or neighbour.verifier is None:
        raise ConversionRefusedError(f"{order.device_uri} is not a registered neighbour")
    if neighbour.certified is None or not neighbour.certified.is_device:
        raise ConversionRefusedError(f"{order.device_uri} is not certified as a device")
    if order.requested_technique not in applicable:
        raise ConversionRefusedError(f"{order.requested_technique} is not applicable here")
    if order.link_technique == LINK_SESSION:
        # Authenticated by the AEAD of our session with the device, header included.
        if session is None or session.peer_name != name_of(order.device_uri):
            raise AuthenticationError(f"no session with {order.device_uri}")
        if order.signature_algorithm != SESSION_AEAD:
            raise AuthenticationError("a session-link order is authenticated by the session")
        return session.unprotect(order.payload, aad=order.header_bytes())
    if order.link_technique != LINK_NONE:
        raise RemoteProtocolError(f"unknown link technique {order.link_technique!r}")
    verifier: Verifier = neighbour.verifier
    if order.signature_algorithm == "hmac-sha256":
        # the MAC key of our session with the device (see DeviceCore.conversion_order)
        if mac is None:
            raise AuthenticationError(f"no session with {order.device_uri} to check its MAC")
        verifier = mac
    elif order.signature_algorithm != verifier.algorithm:
        raise AuthenticationError("order not signed with the device's registered key")
    verifier.verify(replace(order, signature=b"").signed_bytes(), order.signature)
    # The device's plaintext reached us directly: we are its 1-hop neighbour.
    return order.payload


class ConvertReply(Enum):
    """What a converter's answer to an order means to the asking device."""

    PUBLISHED = "published"
    #: refused for want of a session the order relied on (the converter was restarted and
    #: lost it, or never had it): open a new one rather than have every order refused
    LOST_SESSION = "lost-session"
    REFUSED = "refused"

    @classmethod
    def of(cls, published: bool, reason: str) -> ConvertReply:
        """From the answer's status and reason: a refusal travels with its error's text only,
        and a session the converter lacks is named there (see :func:`accept`)."""
        if published:
            return cls.PUBLISHED
        return cls.LOST_SESSION if "session" in reason else cls.REFUSED
