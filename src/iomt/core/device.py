"""An IoMT device's protocol logic (Bilal & Hassan): listener, registration, conversion.

``DeviceCore`` is everything a device node does, minus the IO: it keeps its latest
readings (local storage), announces itself and keeps its neighbour table (Alg. 2.1),
answers data requests (Alg. 2.2) by sealing for the requester or planning a conversion
(Alg. 3), and — when capable — converts for its neighbours. The node feeds it messages
and sends what it returns.

Capability classes (``iomt.crypto.techniques.Capability``) describe which confidentiality
techniques a device can apply to its readings: NONE (it cannot encrypt: its readings
leave it in plaintext, to one neighbour only), SYMMETRIC (AES under session keys),
ECC (plus ECIES), ABE (plus CP-ABE and ECC+attributes). Every device holds an identity
key and can sign and verify: the paper has every device validate tokens (Alg. 2.2), and
signatures are what stop a rogue node from posing as a device or a converter.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from iomt.clock import ClockS
from iomt.core import conversion
from iomt.core.channels import ChannelTable
from iomt.core.conversion import ConversionOrder, ConversionPlan
from iomt.core.listener import DataRequest, Decision, Listener, Outcome, Refusal, name_of
from iomt.core.publish import (
    Envelope,
    Sealer,
    needs_link_key,
    origin_message,
    origin_proof,
    recipient_key_for,
    requester_public_key,
)
from iomt.core.registration import Announcement, NeighbourTable, RegistrationStatus
from iomt.crypto.abe import FamePublicParams
from iomt.crypto.keys import EccPublicKey
from iomt.crypto.sessions import Session
from iomt.crypto.signing import Signer
from iomt.crypto.techniques import AbePolicy, Capability, techniques_for
from iomt.crypto.tokens import TokenVerifier
from iomt.errors import IomtError, LocalProtocolError

OWN_TECHNIQUE = {
    Capability.NONE: "none",
    Capability.SYMMETRIC: "sym-aes",
    Capability.ECC: "ecc",
    Capability.ABE: "cpabe",
}


@dataclass(frozen=True)
class DeviceConfig:
    uri: str
    capability: Capability
    kind: int
    x: float
    y: float
    radio_range: float
    announce_period_s: float
    policy: str  # the CP-ABE policy this device sets on its data (the paper: attributes
    #              are "set by the IoMT device that sends its data")

    @property
    def technique(self) -> str:
        return OWN_TECHNIQUE[self.capability]

    @property
    def applicable(self) -> frozenset[str]:
        return frozenset(techniques_for(self.capability)) - {"sym-3des"}


@dataclass(frozen=True, slots=True)
class StoredReading:
    seq: int
    stamp_ns: int
    cdr: bytes  # iomt_interfaces/msg/Vitals, CDR


@dataclass(frozen=True, slots=True)
class Shared:
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Converting:
    plan: ConversionPlan
    request: DataRequest
    reading: StoredReading
    decision: Decision


@dataclass(frozen=True, slots=True)
class Refused:
    code: Refusal
    detail: str
    #: the session the request authenticated on (its refusal is MAC'd on it)
    session: Session | None = None
    #: a repeat of a request already received: refused without a proof (iomt.core.replies)
    replay: bool = False

    @property
    def reason(self) -> str:
        """What the wire carries: ``"<code>: <detail>"``."""
        return f"{self.code.value}: {self.detail}"

    @classmethod
    def of(cls, decision: Decision) -> Refused:
        """The refusal a listener decided."""
        assert decision.refusal is not None, decision
        return cls(decision.refusal, decision.detail, decision.session, decision.replay)


DeviceReply = Shared | Converting | Refused


def seal_for_requester(
    sealer: Sealer,
    request: DataRequest,
    reading: StoredReading,
    *,
    device_uri: str,
    policy: AbePolicy | None,
    session: Session | None,
) -> Envelope:
    """Alg. 2.2's answer: ``reading`` of ``device_uri`` sealed for the requester in the
    technique it asked for (its ECC key, the ABE ``policy``, or the ``session``'s link key),
    from ``sealer``'s owner. Not yet authenticated: the caller MACs it under the session
    or signs it, as only it knows which one the requester expects."""
    key = recipient_key_for(
        request.technique,
        requester_key=requester_public_key(request.requester_key)
        if request.requester_key
        else None,
        policy=policy,
        link_key=(
            ChannelTable.link_key(session)
            if session and needs_link_key(request.technique)
            else None
        ),
    )
    header, ciphertext = sealer.seal(
        reading.cdr,
        technique=request.technique,
        recipient_uri=request.requester_uri,
        recipient_key=key,
        device_uri=device_uri,
        request_id=request.request_id,
        seq=reading.seq,
    )
    return Envelope(
        request.request_id,
        device_uri,
        sealer.sender_uri,
        request.requester_uri,
        request.technique,
        reading.seq,
        reading.stamp_ns,
        header,
        ciphertext,
    )


class DeviceCore:
    def __init__(
        self,
        config: DeviceConfig,
        *,
        signer: Signer,
        certificate: bytes,
        channels: ChannelTable,
        table: NeighbourTable,
        tokens: TokenVerifier,
        abe_params: FamePublicParams | None,
        history: int = 64,
        clock: ClockS = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config
        self.uri = config.uri
        self._signer = signer
        self.certificate = certificate
        self.channels = channels
        self.table = table
        self.listener = Listener(config.uri, config.applicable, tokens, clock=clock)
        self.sealer = Sealer(config.uri, rng=rng)
        self._abe_params = abe_params
        self._policy: AbePolicy | None = None
        self.readings: deque[StoredReading] = deque(maxlen=history)
        self._clock = clock
        self.counters: dict[str, int] = {
            "shared": 0,
            "converting": 0,
            "refused": 0,
            "converted_for_others": 0,
            "conversion_refused": 0,
        }

    # -- local storage ----------------------------------------------------------------------

    def record(self, seq: int, stamp_ns: int, cdr: bytes) -> StoredReading:
        reading = StoredReading(seq, stamp_ns, cdr)
        self.readings.append(reading)
        return reading

    def latest(self) -> StoredReading | None:
        return self.readings[-1] if self.readings else None

    # -- control registration (Alg. 2.1) --------------------------------------------------

    def announcement(self, stamp_ns: int) -> Announcement:
        c = self.config
        convertible = tuple(sorted(c.applicable - {c.technique, "none"}))
        return Announcement(
            c.uri,
            c.technique,
            convertible,
            c.x,
            c.y,
            c.radio_range,
            c.announce_period_s,
            self.certificate,
            self.table.advertised(),
            stamp_ns,
        ).signed_by(self._signer)

    def on_announcement(self, a: Announcement) -> RegistrationStatus:
        return self.table.on_announcement(a)

    def prepares_converter(self, a: Announcement, *, among: int) -> bool:
        """``a``'s device registered anew: is it worth reaching before a conversion plan
        needs it? Only for a device that cannot encrypt (it converts every request; one
        that can asks a converter only for a technique it lacks), and only if ``a``'s
        device is one of its ``among`` nearest capable neighbours -- the ones a plan tries
        first. The rest are reached when a plan gets to them: in a dense ward every
        endpoint costs memory in every process, through discovery."""
        if self.config.capability != Capability.NONE or not a.convertible:
            return False
        nearest = [n.uri for n in self.table.one_hop_nearest() if n.convertible]
        return a.device_uri in nearest[:among]

    # -- listener (Alg. 2.2) ----------------------------------------------------------------

    def on_data_request(self, request: DataRequest) -> DeviceReply:
        session = self.session_of(request)
        decision = self.listener.decide(request, session)
        if decision.outcome is Outcome.REFUSE:
            self.counters["refused"] += 1
            return Refused.of(decision)
        reading = self.latest()
        if reading is None:
            return self._refuse(Refusal.NO_DATA, "no reading recorded yet", session)
        if decision.outcome is Outcome.SHARE:
            try:
                envelope = self.seal(request, reading, session)
            except (IomtError, ValueError) as exc:
                return self._refuse(Refusal.MALFORMED, str(exc), session)
            self.counters["shared"] += 1
            return Shared(envelope)
        plan = conversion.plan(
            self.table, request.technique, can_encrypt=self.config.capability > Capability.NONE
        )
        if plan.next() is None:
            return self._refuse(Refusal.NO_CONVERTER, plan.explain(), session)
        self.counters["converting"] += 1
        return Converting(plan, request, reading, decision)

    def _refuse(self, code: Refusal, detail: str, session: Session | None = None) -> Refused:
        self.counters["refused"] += 1
        return Refused(code, detail, session)

    def session_of(self, request: DataRequest) -> Session | None:
        if request.proof_type != "session":
            return None
        try:
            return self.channels.session_of_record(request.proof)
        except IomtError:
            return None

    @staticmethod
    def _requester_key(raw: bytes) -> EccPublicKey | None:
        return requester_public_key(raw) if raw else None

    def policy(self) -> AbePolicy | None:
        if self._policy is None and self._abe_params is not None and self.config.policy:
            self._policy = AbePolicy.parse(self._abe_params, self.config.policy)
        return self._policy

    def seal(
        self, request: DataRequest, reading: StoredReading, session: Session | None
    ) -> Envelope:
        """Seal ``reading`` for the requester in its technique and authenticate it."""
        envelope = seal_for_requester(
            self.sealer,
            request,
            reading,
            device_uri=self.uri,
            policy=self.policy(),
            session=session,
        )
        if session is not None:
            return envelope.signed_by(self.channels.mac_key(session))
        return replace(envelope, sender_certificate=self.certificate).signed_by(self._signer)

    # -- conversion, asking side (Alg. 3) ----------------------------------------------------

    def link_for(self, converter_uri: str) -> Session | None:
        """The session to protect a reading to ``converter_uri`` with (None: plaintext)."""
        if self.config.capability == Capability.NONE:
            return None
        return self.channels.session(name_of(converter_uri))

    def conversion_order(self, pending: Converting, converter_uri: str) -> ConversionOrder:
        """The order to ``converter_uri``. The reading leaves only for a converter certified
        as a device of our facility that can apply the technique (ConversionRefusedError)."""
        request, reading = pending.request, pending.reading
        session = self.link_for(converter_uri)
        if self.config.capability > Capability.NONE and session is None:
            raise LocalProtocolError(f"no session with converter {converter_uri} yet")
        neighbour = self.table.one_hop(converter_uri)
        if session is None and neighbour is None:
            raise conversion.ConversionRefusedError(f"{converter_uri} is not a 1-hop neighbour")
        conversion.check_converter(
            converter_uri, request.technique, neighbour=neighbour, session=session
        )
        requester_session = self.channels.session(name_of(request.requester_uri))
        origin = origin_proof(
            origin_message(request.request_id, self.uri, reading.cdr),
            mac=self.channels.mac_key(requester_session) if requester_session else None,
            signer=self._signer,
        )
        order = ConversionOrder(
            request.request_id,
            self.uri,
            converter_uri,
            request.requester_uri,
            request.technique,
            conversion.LINK_SESSION if session else conversion.LINK_NONE,
            self.config.policy,
            request.requester_key,
            b"",
            origin,
            signature_algorithm=conversion.SESSION_AEAD if session else self._signer.algorithm,
        )
        if session is not None:
            # The session's AEAD authenticates the whole order (the header is its
            # associated data): no signature needed on this link.
            return replace(order, payload=session.protect(reading.cdr, aad=order.header_bytes()))
        # A device that cannot encrypt still authenticates what it sends: with the MAC key
        # of a session it holds with the converter (a MAC hides nothing: the reading
        # crosses in plaintext, as it must), or with its signature when it has none.
        plain = replace(order, payload=reading.cdr)
        auth = self.channels.session(name_of(converter_uri))
        return plain.signed_by(self.channels.mac_key(auth) if auth else self._signer)

    # -- conversion, converting side (Alg. 3) ------------------------------------------------

    def on_conversion(self, order: ConversionOrder, seq: int, stamp_ns: int) -> Envelope:
        """Convert a neighbour's reading; raises ConversionRefusedError / AuthenticationError."""
        neighbour = self.table.one_hop(order.device_uri)
        session: Session | None = None
        if order.link_technique == conversion.LINK_SESSION:
            # the session the device sealed this record on (there may be two, briefly)
            try:
                session = self.channels.session_of_record(order.payload)
            except IomtError:
                session = None
        try:
            reading = conversion.accept(
                order,
                converter_uri=self.uri,
                applicable=self.config.applicable,
                neighbour=neighbour,
                session=session,
                mac=self.channels.mac_verifier(name_of(order.device_uri)),
            )
            if order.requested_technique in ("sym-aes", "sym-3des"):
                raise conversion.ConversionRefusedError(
                    f"{order.requested_technique} needs a key shared with the requester, "
                    "which a converter does not have"
                )
            requester_key = self._requester_key(order.requester_key)
            policy = (
                AbePolicy.parse(self._abe_params, order.policy)
                if order.policy and self._abe_params is not None
                else None
            )
            key = recipient_key_for(
                order.requested_technique, requester_key=requester_key, policy=policy, link_key=None
            )
        except (IomtError, ValueError):
            self.counters["conversion_refused"] += 1
            raise
        header, ciphertext = self.sealer.seal(
            reading,
            technique=order.requested_technique,
            recipient_uri=order.requester_uri,
            recipient_key=key,
            device_uri=order.device_uri,
            request_id=order.request_id,
            seq=seq,
        )
        self.counters["converted_for_others"] += 1
        envelope = Envelope(
            order.request_id,
            order.device_uri,
            self.uri,
            order.requester_uri,
            order.requested_technique,
            seq,
            stamp_ns,
            header,
            ciphertext,
            origin_signature=order.origin_signature,
        )
        # Publish's authentication: the HMAC of our session with the requester once there is
        # one (the node opens it after the first conversion), a signature until then.
        requester_session = self.channels.session(name_of(order.requester_uri))
        if requester_session is not None:
            return envelope.signed_by(self.channels.mac_key(requester_session))
        return replace(envelope, sender_certificate=self.certificate).signed_by(self._signer)
