"""``iomt bag audit``: Experiment 1 judged from recorded traffic, as an eavesdropper would.

Bilal & Hassan measure the share of transmissions whose vitals an observer on the network
can read (Wireshark in the paper; Fig. 6: ~80 % plaintext in the centralized baseline,
~20 % in the distributed framework with 20 % of devices unable to encrypt). :func:`audit`
reproduces that judgement from a bag, without any key and without trusting labels:

* Every transmission that carries a patient reading is counted: a plaintext
  ``iomt_interfaces/msg/Vitals`` message; a ``SecureEnvelope`` with a ciphertext, on a topic
  or inside a ``DataShare`` response (recorded as a service event); a ``ConversionRequest`` with a
  payload (Alg. 3's device→converter hop). Any other message in which a reading turns up is
  counted too, as a leak on an unexpected channel (hop ``other``).
* A transmission is **readable** iff the message itself, or one of its byte fields, parses
  as a plausible Vitals CDR sample, or a scan finds one embedded in a byte field
  (:mod:`iomt.capture.plaintext`). A ``security_technique: "ecc"`` label over plaintext is
  readable; the label is reported, never believed.
* Messages that do not decode under their recorded type are still scanned as raw bytes.

The report breaks the count down by message kind, topic, declared technique, sender,
device and hop (``device_to_converter`` for conversion requests, ``to_requester`` for
readings delivered to whoever asked — envelopes, DataShare responses, and the plaintext
uploads of the centralized baseline), lists the readable transmissions, and lists
envelopes whose signature field is empty.

Given the ward's radio graph (:class:`~iomt.capture.radio.RadioMap`), every transmission
also gets its **radio hop distance**, from the positions of the nodes rather than from the
message's kind or topic: from the device whose reading it is — for a readable one, the
``device_uri`` inside the exposed plaintext itself (``producer``) — to the node that
received it (``receiver``: for a service request, the node serving the service the request
was recorded on; otherwise the recipient the message names). A node that is not on the
radio graph (a provider, a server) has no hop distance (``None``).

:meth:`AuditReport.to_json` is the stable format the experiment driver consumes
(``schema: iomt.capture.audit/1``, documented in docs/capture.md).

Signatures: pass a :class:`SignatureVerifier` (for instance one the crypto layer builds from
a keystore) and each signed envelope and conversion request is checked. The audit itself
needs no key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from iomt.capture.bag import read_messages
from iomt.capture.interfaces import (
    REQUEST_RECEIVED,
    RESPONSE_RECEIVED,
    RESPONSE_SENT,
    CaptureTypes,
)
from iomt.capture.plaintext import NotVitalsError, VitalsFinding, parse_vitals_sample, scan_vitals
from iomt.capture.radio import RadioMap
from iomt.errors import IomtError, RemoteProtocolError

__all__ = [
    "AUDIT_SCHEMA",
    "HOP_DEVICE_TO_CONVERTER",
    "HOP_OTHER",
    "HOP_TO_REQUESTER",
    "AuditReport",
    "SignatureVerdict",
    "SignatureVerifier",
    "Transmission",
    "audit",
    "audit_messages",
    "load_keystore_verifier",
]

AUDIT_SCHEMA = "iomt.capture.audit/1"

VITALS = "iomt_interfaces/msg/Vitals"
SECURE_ENVELOPE = "iomt_interfaces/msg/SecureEnvelope"
CONVERSION_REQUEST = "iomt_interfaces/msg/ConversionRequest"
DATA_SHARE = "iomt_interfaces/srv/DataShare"
DATA_SHARE_EVENT = "iomt_interfaces/srv/DataShare_Event"
DATA_SHARE_RESPONSE = "iomt_interfaces/srv/DataShare_Response"

HOP_DEVICE_TO_CONVERTER = "device_to_converter"
HOP_TO_REQUESTER = "to_requester"
HOP_OTHER = "other"
HOP_DEVICE_TO_SERVER = "device_to_server"
CONVERT_EVENT = "iomt_interfaces/srv/Convert_Event"
UPLOAD_EVENT = "iomt_interfaces/srv/Upload_Event"
UPLOAD_REQUEST = "iomt_interfaces/srv/Upload_Request"
UNDECLARED = "(undeclared)"

SignatureVerdict = Literal["valid", "invalid", "unverifiable"]


class SignatureVerifier(Protocol):
    """Checks the signature of a recorded envelope or conversion request.

    ``message_type`` is ``iomt_interfaces/msg/SecureEnvelope`` or
    ``iomt_interfaces/msg/ConversionRequest``;
    ``fields`` maps every field name to its value (``bytes`` for ``uint8[]``, ``str``,
    ``int``, nested messages as mappings). Return ``"unverifiable"`` when the signer's key
    is unknown. A structural protocol, so the crypto layer need not import this module.
    """

    def verify_signature(
        self, message_type: str, fields: Mapping[str, Any]
    ) -> SignatureVerdict: ...


@dataclass(frozen=True, slots=True)
class Transmission:
    """One reading-bearing transmission and the verdict on it."""

    time_ns: int
    topic: str
    kind: str  # the ROS type that carried the reading
    hop: str
    device: str
    sender: str
    recipient: str
    technique: str  # the declared label, or "(undeclared)"
    readable: bool
    evidence: str  # where the plaintext was found ("" when not readable)
    reading_kind: str  # "heart_rate" | "blood_pressure" | "" — what was exposed, not its value
    reading_seq: int | None  # the exposed reading's sequence number (to link it to requests)
    malformed: bool  # the message did not decode under its recorded type
    signed: bool | None  # the signature field is non-empty (None: the kind has none)
    signature: str  # "" (not checked) | "valid" | "invalid" | "unverifiable"
    # who got it: the node serving the service of a request event, else the named recipient
    receiver: str = ""
    # the device whose reading is exposed, from the plaintext itself ("" when not readable)
    producer: str = ""
    # radio hops from the reading's device (producer, else device) to the receiver; None
    # without a radio map, or when either is not on it (providers, servers)
    hops: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of :func:`audit`; ``to_json()`` is the stable machine-readable form."""

    bag: str
    messages_scanned: int
    transmissions: tuple[Transmission, ...]
    signatures_checked: bool
    radio_map: bool = False  # hop distances were measured on a radio map

    @property
    def total(self) -> int:
        return len(self.transmissions)

    @property
    def readable(self) -> int:
        return sum(t.readable for t in self.transmissions)

    @property
    def readable_share(self) -> float | None:
        return self.readable / self.total if self.total else None

    @property
    def readable_transmissions(self) -> tuple[Transmission, ...]:
        return tuple(t for t in self.transmissions if t.readable)

    @property
    def unsigned(self) -> tuple[Transmission, ...]:
        return tuple(t for t in self.transmissions if t.signed is False)

    def breakdown(self, key: Callable[[Transmission], str]) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[Transmission]] = {}
        for t in self.transmissions:
            groups.setdefault(key(t), []).append(t)
        return {name: _summary(items) for name, items in sorted(groups.items())}

    def to_json(self, *, max_items: int | None = None) -> dict[str, Any]:
        readable = self.readable_transmissions
        unsigned = self.unsigned
        out: dict[str, Any] = {
            "schema": AUDIT_SCHEMA,
            "bag": self.bag,
            "messages_scanned": self.messages_scanned,
            **_summary(self.transmissions),
            "label_mismatches": sum(
                t.readable and t.technique not in ("none", UNDECLARED) for t in self.transmissions
            ),
            "malformed": sum(t.malformed for t in self.transmissions),
            "by_kind": self.breakdown(lambda t: t.kind),
            "by_topic": self.breakdown(lambda t: t.topic),
            "by_technique": self.breakdown(lambda t: t.technique),
            "by_sender": self.breakdown(lambda t: t.sender),
            "by_device": self.breakdown(lambda t: t.device),
            "by_hop": self.breakdown(lambda t: t.hop),
            "radio_map": self.radio_map,
            "by_radio_hops": self.breakdown(_radio_hops_key) if self.radio_map else None,
            "readable_items": [t.to_json() for t in readable[:max_items]],
            "readable_items_truncated": max_items is not None and len(readable) > max_items,
            "unsigned_envelopes": sum(t.kind in _ENVELOPE_KINDS for t in unsigned),
            "unsigned_conversion_requests": sum(t.kind == CONVERSION_REQUEST for t in unsigned),
            "unsigned_items": [t.to_json() for t in unsigned[:max_items]],
            "signatures": None,
        }
        if self.signatures_checked:
            verdicts = [t.signature for t in self.transmissions if t.signature]
            out["signatures"] = {v: verdicts.count(v) for v in ("valid", "invalid", "unverifiable")}
        return out

    def render(self, *, max_items: int = 20) -> str:
        share = self.readable_share
        lines = [
            f"Bag:                  {self.bag}",
            f"Messages scanned:     {self.messages_scanned}",
            f"Reading-bearing:      {self.total}",
            f"Readable (no key):    {self.readable}"
            + ("" if share is None else f" ({100 * share:.1f} %)"),
            f"Unsigned envelopes:   {sum(t.kind in _ENVELOPE_KINDS for t in self.unsigned)}",
        ]
        breakdowns: list[tuple[str, Callable[[Transmission], str]]] = [
            ("By kind", lambda t: t.kind),
            ("By hop", lambda t: t.hop),
            ("By technique label", lambda t: t.technique),
            ("By sender", lambda t: t.sender),
            ("By topic", lambda t: t.topic),
        ]
        if self.radio_map:
            breakdowns.append(("By radio hops (reading's device to receiver)", _radio_hops_key))
        for title, key in breakdowns:
            lines.append(f"{title}:")
            for name, row in self.breakdown(key).items():
                share_row = row["readable_share"]
                pct = "" if share_row is None else f"{100 * share_row:.1f} %"
                counts = f"{row['readable']}/{row['transmissions']}"
                lines.append(f"  {name or '(empty)'}: {counts} readable {pct}")
        readable = self.readable_transmissions
        lines.append(f"Readable transmissions ({len(readable)}):")
        for t in readable[:max_items]:
            radio = f" radio_hops={_radio_hops_key(t)}" if self.radio_map else ""
            lines.append(
                f"  {t.time_ns} {t.topic} device={t.device} sender={t.sender} "
                f"receiver={t.receiver or '-'}{radio} label={t.technique} ({t.evidence})"
            )
        if len(readable) > max_items:
            lines.append(f"  … {len(readable) - max_items} more (use --json for all)")
        if self.signatures_checked:
            verdicts = [t.signature for t in self.transmissions if t.signature]
            lines.append(
                "Signatures:           "
                + ", ".join(
                    f"{v} {verdicts.count(v)}" for v in ("valid", "invalid", "unverifiable")
                )
            )
        return "\n".join(lines)


_VERDICTS = ("valid", "invalid", "unverifiable")


def _radio_hops_key(t: Transmission) -> str:
    return "off-map" if t.hops is None else str(t.hops)


_ENVELOPE_KINDS = frozenset({SECURE_ENVELOPE, DATA_SHARE_RESPONSE})


def _summary(items: Iterable[Transmission]) -> dict[str, Any]:
    listed = list(items)
    readable = sum(t.readable for t in listed)
    return {
        "transmissions": len(listed),
        "readable": readable,
        "readable_share": readable / len(listed) if listed else None,
    }


def audit(
    bag_path: str | Path,
    *,
    verifier: SignatureVerifier | None = None,
    types: CaptureTypes | None = None,
    radio: RadioMap | None = None,
) -> AuditReport:
    """Judge every reading-bearing transmission in the bag at ``bag_path``.

    A pure function of the bag's contents (and of ``verifier`` and ``radio``, if given).
    Raises :class:`~iomt.capture.errors.BagReadError` if the bag cannot be read.
    """
    messages = read_messages(bag_path)
    return audit_messages(
        ((m.topic, m.msgtype, m.time_ns, m.data) for m in messages),
        bag=str(bag_path),
        verifier=verifier,
        types=types,
        radio=radio,
    )


def audit_messages(
    messages: Iterable[tuple[str, str, int, bytes]],
    *,
    bag: str = "",
    verifier: SignatureVerifier | None = None,
    types: CaptureTypes | None = None,
    radio: RadioMap | None = None,
) -> AuditReport:
    """:func:`audit` over ``(topic, msgtype, time_ns, data)`` tuples in time order."""
    auditor = _Auditor(types or CaptureTypes(), verifier, radio)
    count = 0
    found: list[Transmission] = []
    for topic, msgtype, time_ns, data in messages:
        count += 1
        found.extend(auditor.judge(topic, msgtype, time_ns, data))
    return AuditReport(
        bag=bag,
        messages_scanned=count,
        transmissions=tuple(found),
        signatures_checked=verifier is not None,
        radio_map=radio is not None,
    )


def load_keystore_verifier(keystore: str | Path) -> SignatureVerifier:
    """Check recorded signatures with the facility keystore's CA (public material only).

    Envelopes signed with a certificate-backed key (Ed25519 / ECDSA) are checked against
    the attached certificate, itself checked against the keystore's CA; conversion orders
    against the device's certificate in the keystore. HMAC-authenticated envelopes are
    ``unverifiable`` to a third party by design: only the two ends hold the session key.
    """
    from iomt.crypto.keystore import Keystore  # noqa: PLC0415

    return KeystoreSignatureVerifier(Keystore.open(Path(keystore)))


class KeystoreSignatureVerifier:
    def __init__(self, keystore: Any) -> None:
        self._ks = keystore
        self._validate = keystore.credential_validator()

    def verify_signature(self, message_type: str, fields: Mapping[str, Any]) -> SignatureVerdict:
        try:
            if message_type == SECURE_ENVELOPE:
                return self._verify_envelope(fields)
            if message_type == CONVERSION_REQUEST:
                return self._verify_conversion_order(fields)
        except IomtError:
            return "invalid"
        except (KeyError, TypeError, ValueError):
            return "unverifiable"
        return "unverifiable"

    def _verify_envelope(self, f: Mapping[str, Any]) -> SignatureVerdict:
        from iomt.core.listener import name_of  # noqa: PLC0415
        from iomt.core.publish import Envelope  # noqa: PLC0415

        algorithm = str(f["signature_algorithm"])
        if not f["signature"]:
            return "invalid"
        if algorithm == "hmac-sha256":
            return "unverifiable"
        stamp = f["stamp"]
        env = Envelope(
            str(f["request_id"]),
            str(f["device_uri"]),
            str(f["sender_uri"]),
            str(f["recipient_uri"]),
            str(f["security_technique"]),
            int(f["seq"]),
            int(stamp["sec"]) * 10**9 + int(stamp["nanosec"]),
            bytes(f["key_header"]),
            bytes(f["ciphertext"]),
            algorithm,
            bytes(f["signature"]),
            bytes(f["sender_certificate"]),
            bytes(f["origin_signature"]),
        )
        env.verify(self._validate(name_of(env.sender_uri), env.sender_certificate))
        return "valid"

    def _verify_conversion_order(self, f: Mapping[str, Any]) -> SignatureVerdict:
        from iomt.core.conversion import ConversionOrder  # noqa: PLC0415
        from iomt.core.listener import name_of  # noqa: PLC0415

        order = ConversionOrder(
            str(f["request_id"]),
            str(f["device_uri"]),
            str(f["converter_uri"]),
            str(f["requester_uri"]),
            str(f["requested_technique"]),
            str(f["link_technique"]),
            str(f["policy"]),
            bytes(f["requester_key"]),
            bytes(f["payload"]),
            bytes(f["origin_signature"]),
            str(f["signature_algorithm"]),
            bytes(f["signature"]),
        )
        if order.signature_algorithm in ("session-aead", "hmac-sha256"):
            return "unverifiable"  # authenticated by the device-converter session
        try:
            key = self._ks.verifier(name_of(order.device_uri))
        except IomtError:
            return "unverifiable"
        key.verify(replace(order, signature=b"").signed_bytes(), order.signature)
        return "valid"


# -- judging one message -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a reading was found, for the report."""

    evidence: str
    finding: VitalsFinding


class _Auditor:
    def __init__(
        self, types: CaptureTypes, verifier: SignatureVerifier | None, radio: RadioMap | None
    ) -> None:
        self.types = types
        self.verifier = verifier
        self.radio = radio
        # (event channel, client_gid, sequence number) -> requester_uri of the request
        self._requesters: dict[tuple[str, bytes, int], str] = {}

    def judge(self, topic: str, msgtype: str, time_ns: int, data: bytes) -> Iterator[Transmission]:
        base = {"time_ns": time_ns, "topic": topic}
        try:
            decoded = self._decode(msgtype, data)
        except RemoteProtocolError:
            decoded = None
        if decoded is None:
            yield from self._judge_undecoded(base, msgtype, data)
            return
        # Bytes after the end of a well-formed message are traffic too (a decoder ignores them).
        trailing = self._trailing(msgtype, decoded, data)
        if msgtype == VITALS:
            yield self._transmission(
                base,
                kind=VITALS,
                hop=HOP_TO_REQUESTER,
                device=str(decoded.device_uri),
                sender=str(decoded.device_uri),
                recipient="",
                technique=UNDECLARED,
                where=_whole(data) or _vitals_message(data) or trailing,
            )
        elif msgtype == SECURE_ENVELOPE:
            where = _search(decoded, data) or trailing
            if len(decoded.ciphertext) or where is not None:
                yield self._envelope(base, SECURE_ENVELOPE, decoded, where, "")
        elif msgtype == CONVERSION_REQUEST:
            where = _search(decoded, data) or trailing
            if len(decoded.payload) or where is not None:
                yield self._conversion_order(
                    base, decoded, where, signed=len(decoded.signature) > 0
                )
        elif msgtype == DATA_SHARE_EVENT:
            yield from self._judge_data_share(base, topic, decoded, data)
        elif msgtype == CONVERT_EVENT:
            yield from self._judge_convert(base, topic, decoded)
        elif msgtype == UPLOAD_EVENT:
            yield from self._judge_upload(base, topic, decoded)
        else:
            where = _search(decoded, data) or trailing
            if where is not None:
                yield self._leak(base, msgtype, where)

    def _trailing(self, msgtype: str, decoded: Any, data: bytes) -> _Where | None:
        """A reading hidden after the end of a message that decodes (more than CDR padding)."""
        store = self.types.store
        try:
            # the size rosbags would write it back in (what serialize_cdr allocates first),
            # without writing it: a third of the audit's time went to the copy
            end = 4 + store.get_msgdef(msgtype).getsize_cdr(0, decoded, store)
        except Exception:  # a value rosbags decoded but cannot size: no verdict
            return None
        if len(data) - end <= 3:
            return None
        for finding in scan_vitals(data[end:]):
            return _Where(f"trailing bytes (at {end + finding.offset})", finding)
        return None

    def _judge_convert(
        self, base: dict[str, Any], topic: str, event: Any
    ) -> Iterator[Transmission]:
        # Alg. 3 as a service: the order travels in the request (the device's one hop),
        # to the node serving the service, whatever converter the order names.
        for request in event.request:
            order = request.request
            where = _search(order, b"")
            if len(order.payload) or where is not None:
                # a session-link order is authenticated by the session's AEAD
                signed = len(order.signature) > 0 or order.link_technique == "session"
                yield self._conversion_order(
                    base, order, where, signed=signed, receiver=_server_of(topic)
                )

    def _judge_upload(self, base: dict[str, Any], topic: str, event: Any) -> Iterator[Transmission]:
        # The centralized baseline: a device's reading on its way to the server.
        for request in event.request:
            reading = request.reading
            try:  # the reading travels as a structured Vitals: judge its own bytes
                raw = bytes(self.types.store.serialize_cdr(reading, VITALS))
                where = _whole(raw) or _search(request, b"")
            except Exception:
                where = _search(request, b"")
            if where is not None:
                where = _Where("field reading (plaintext Vitals)", where.finding)
            yield self._transmission(
                base,
                kind=UPLOAD_REQUEST,
                hop=HOP_DEVICE_TO_SERVER,
                device=str(reading.device_uri),
                sender=str(reading.device_uri),
                recipient="",
                technique=UNDECLARED,
                where=where,
                receiver=_server_of(topic),
            )

    def _judge_data_share(
        self, base: dict[str, Any], topic: str, event: Any, data: bytes
    ) -> Iterator[Transmission]:
        key = (topic, bytes(event.info.client_gid.tobytes()), int(event.info.sequence_number))
        for request in event.request:
            self._requesters[key] = str(request.requester_uri)
            where = _search(request, b"")
            if where is not None:
                yield self._leak(
                    base, "iomt_interfaces/srv/DataShare_Request", where, _server_of(topic)
                )
        for response in event.response:
            envelope = response.envelope
            where = _search(response, b"")
            if len(envelope.ciphertext) or where is not None:
                yield self._envelope(
                    base, DATA_SHARE_RESPONSE, envelope, where, self._requesters.get(key, "")
                )

    def _envelope(
        self,
        base: dict[str, Any],
        kind: str,
        envelope: Any,
        where: _Where | None,
        requester: str,
    ) -> Transmission:
        return self._transmission(
            base,
            kind=kind,
            hop=HOP_TO_REQUESTER,
            device=str(envelope.device_uri),
            sender=str(envelope.sender_uri),
            recipient=str(envelope.recipient_uri) or requester,
            technique=str(envelope.security_technique) or UNDECLARED,
            where=where,
            signed=len(envelope.signature) > 0,
            signature=self._verify(SECURE_ENVELOPE, envelope),
        )

    def _leak(
        self, base: dict[str, Any], kind: str, where: _Where, receiver: str = ""
    ) -> Transmission:
        return self._transmission(
            base,
            kind=kind,
            hop=HOP_OTHER,
            device=where.finding.device_uri,
            sender="",
            recipient="",
            technique=UNDECLARED,
            where=where,
            receiver=receiver,
        )

    def _judge_undecoded(
        self, base: dict[str, Any], msgtype: str, data: bytes
    ) -> Iterator[Transmission]:
        """A message that does not decode under its type: raw bytes are all we have."""
        where = _whole(data) or (_vitals_message(data) if msgtype == VITALS else None)
        where = where or _raw_scan(data)
        carries = msgtype in (VITALS, SECURE_ENVELOPE, CONVERSION_REQUEST) or (
            # a response event (event_type is the byte after the CDR header) carries an envelope
            msgtype == DATA_SHARE_EVENT
            and len(data) > 4
            and data[4] in (RESPONSE_SENT, RESPONSE_RECEIVED)
        )
        if where is None and not carries:
            return
        kind = DATA_SHARE_RESPONSE if msgtype == DATA_SHARE_EVENT else msgtype
        hop = {CONVERSION_REQUEST: HOP_DEVICE_TO_CONVERTER}.get(
            msgtype, HOP_TO_REQUESTER if carries else HOP_OTHER
        )
        device = where.finding.device_uri if where is not None else ""
        # a request event (the byte after the CDR header) went to the service's server
        request_event = msgtype.endswith("_Event") and len(data) > 4 and data[4] == REQUEST_RECEIVED
        yield self._transmission(
            base,
            kind=kind,
            hop=hop,
            device=device,
            sender="",
            recipient="",
            technique=UNDECLARED,
            where=where,
            malformed=True,
            receiver=_server_of(base["topic"]) if request_event else "",
        )

    def _conversion_order(
        self,
        base: dict[str, Any],
        order: Any,
        where: _Where | None,
        *,
        signed: bool,
        receiver: str = "",
    ) -> Transmission:
        """A device's conversion order to its converter (Alg. 3): the one local hop."""
        return self._transmission(
            base,
            kind=CONVERSION_REQUEST,
            hop=HOP_DEVICE_TO_CONVERTER,
            device=str(order.device_uri),
            sender=str(order.device_uri),
            recipient=str(order.converter_uri),
            technique=str(order.link_technique) or UNDECLARED,
            where=where,
            signed=signed,
            signature=self._verify(CONVERSION_REQUEST, order),
            receiver=receiver,
        )

    def _transmission(  # noqa: PLR0913  (one keyword per field a hop decides)
        self,
        base: dict[str, Any],
        *,
        kind: str,
        hop: str,
        device: str,
        sender: str,
        recipient: str,
        technique: str,
        where: _Where | None,
        malformed: bool = False,
        signed: bool | None = None,
        signature: str = "",
        receiver: str = "",
    ) -> Transmission:
        receiver = receiver or recipient
        producer = where.finding.device_uri if where is not None else ""
        hops = (
            self.radio.hops(producer or device, receiver)
            if self.radio is not None and receiver
            else None
        )
        return Transmission(
            time_ns=base["time_ns"],
            topic=base["topic"],
            kind=kind,
            hop=hop,
            device=device,
            sender=sender,
            recipient=recipient,
            technique=technique,
            readable=where is not None,
            evidence=where.evidence if where is not None else "",
            reading_kind=where.finding.reading_kind if where is not None else "",
            reading_seq=where.finding.seq if where is not None else None,
            malformed=malformed,
            signed=signed,
            signature=signature,
            receiver=receiver,
            producer=producer,
            hops=hops,
        )

    def _decode(self, msgtype: str, data: bytes) -> Any:
        if msgtype not in self.types.store.fielddefs:
            return None
        return self.types.decode(data, msgtype)

    def _verify(self, message_type: str, msg: Any) -> str:
        if self.verifier is None or not len(msg.signature):
            return ""
        try:
            verdict: str = self.verifier.verify_signature(message_type, _fields(msg))
        except Exception:  # a verifier bug must not hide the rest of the audit
            return "unverifiable"
        return verdict if verdict in ("valid", "invalid") else "unverifiable"


def _server_of(channel: str) -> str:
    """The node serving a service, from the channel a recorder stores its events on:
    ``/ward1/hr_3/convert/_service_event`` -> ``iomt://ward1/hr_3`` (iomt's services are
    private to their node, ``~/<service>``). "" for anything else."""
    parts = channel.strip("/").split("/")
    if len(parts) < 3 or parts[-1] != "_service_event":
        return ""
    return "iomt://" + "/".join(parts[:-2])


def _whole(data: bytes) -> _Where | None:
    """The message itself is a plausible Vitals sample."""
    try:
        return _Where("message", parse_vitals_sample(data))
    except NotVitalsError:
        return None


def _vitals_message(data: bytes) -> _Where | None:
    """A declared Vitals message whose reading is plausible, whatever follows it."""
    for finding in scan_vitals(data, headerless=False):
        if finding.offset == 0:
            return _Where("message", finding)
    return None


def _raw_scan(data: bytes) -> _Where | None:
    """A Vitals sample (with its CDR header) embedded in a message we cannot decode.

    Offset 0 is the message's own header: a prefix of another type can line up like a
    Vitals body there, so only samples nested further in count.
    """
    for finding in scan_vitals(data, headerless=False):
        if finding.offset > 0:
            return _Where(f"raw bytes (embedded at {finding.offset})", finding)
    return None


def _search(msg: Any, data: bytes) -> _Where | None:
    """A reading in the message itself or in any of its byte fields."""
    if data:
        where = _whole(data)
        if where is not None:
            return where
    for path, value in _byte_fields(msg, ""):
        try:
            return _Where(f"field {path}", parse_vitals_sample(value))
        except NotVitalsError:
            pass
        for finding in scan_vitals(value):
            return _Where(f"field {path} (embedded at {finding.offset})", finding)
    return None


def _byte_fields(msg: Any, prefix: str) -> Iterator[tuple[str, bytes]]:
    """``(path, bytes)`` of every uint8[]/string field, recursively, of a rosbags message."""
    import numpy as np  # noqa: PLC0415

    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        path = f"{prefix}{f.name}"
        if isinstance(value, np.ndarray):
            if value.dtype == np.uint8 and value.size:
                yield path, value.tobytes()
        elif isinstance(value, str):
            if len(value) >= 16:  # shorter strings cannot hold a Vitals sample
                yield path, value.encode("utf-8", "surrogateescape")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    yield from _byte_fields(item, f"{path}[{i}].")
        elif dataclasses.is_dataclass(value):
            yield from _byte_fields(value, f"{path}.")


def _fields(msg: Any) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415

    out: dict[str, Any] = {}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if isinstance(value, np.ndarray):
            out[f.name] = value.tobytes()
        elif dataclasses.is_dataclass(value):
            out[f.name] = _fields(value)
        elif isinstance(value, list):
            out[f.name] = [_fields(v) if dataclasses.is_dataclass(v) else v for v in value]
        else:
            out[f.name] = value
    return out
