"""What each BIoMT transaction records (the plaintext of its encrypted body).

The ledger keeps a transaction's type, generator id (a pseudonym), time and the generator's
signature or tag in clear; the *body* is sealed with AES-256-GCM under the bolster's body key
(:class:`~iomt.core.biomt.keys.StorageKeys`), bound to that metadata. These are the bodies:

=================  =======  ============================  ========================================
body               TxType   generator id                  records
=================  =======  ============================  ========================================
OriginBody         Origin   admin's ledger pseudonym      device pseudonym, URI, owner, agreement
                                                          hash, certificate fingerprint and serial,
                                                          key id, **shared key** (only ever inside
                                                          this encrypted body), key expiry
RemoveBody         Remove   requester's pseudonym         device, who, why, revoked serial, outcome
StoreBody          Store    device pseudonym              counter, device time, digest of the
                                                          local record (binds it to the ledger)
AccessBody         Access   requester's pseudonym         who (name, role), which device, which
                                                          range, granted/denied, how many records
                                                          served locally or redirected to the cloud
CommunicationBody  Access   initiating device pseudonym   the pair, grant id, expiry, outcome
ObserveBody        Observe  requester's pseudonym         who, which devices, threshold, interval,
                                                          expiry, subscription key, outcome
AttestationBody    Access   requester's pseudonym         a user's signed attestation of the
                                                          session requests it was answered
=================  =======  ============================  ========================================

Table 1 has no type for communication setup; it is logged as an Access (device A accesses
device B) with its own body; nor for a session attestation (logged as an Access too).
Requests signed by users are kept whole (``request``) so the signature in the transaction's
clear ``signature`` field can be re-verified by whoever may read the body -- the facility's
auditor or the patient. A session-authenticated request keeps its
:class:`~iomt.core.biomt.session.SessionAuthenticated` record there instead, and the
record's AEAD tag as the signature (checkable only with the session key: see
:mod:`~iomt.core.biomt.session` on evidence).
"""

from __future__ import annotations

from dataclasses import dataclass

from .codec import U32, U64, Bytes, Enum, Message, Nested, Optional, Seq, Text, tag
from .errors import BiomtDecodeError
from .messages import ID, Outcome, Threshold
from .session import SESSION_ID_SIZE, SessionAuthenticated

__all__ = [
    "AccessBody",
    "AttestationBody",
    "Body",
    "CommunicationBody",
    "ObserveBody",
    "OriginBody",
    "RemoveBody",
    "StoreBody",
    "decode_body",
    "session_evidence",
]

_REQUEST = Bytes(max_size=1 << 16)
_DETAIL = Text(max_size=1024)


@dataclass(frozen=True, slots=True)
class OriginBody(Message):
    pseudonym: str
    device_uri: str
    owner: str
    admin: str
    agreement: bytes
    certificate_fingerprint: bytes
    certificate_serial: str
    signing_key: bytes
    key_id: bytes
    shared_key: bytes
    key_expires: int
    submission_digest: bytes

    TAG = tag("iomt/biomt/body/origin/v1")
    FIELDS = (
        ("pseudonym", ID),
        ("device_uri", Text(max_size=512)),
        ("owner", ID),
        ("admin", ID),
        ("agreement", Bytes(size=32)),
        ("certificate_fingerprint", Bytes(size=32)),
        ("certificate_serial", Text(max_size=64)),
        ("signing_key", Bytes(size=32)),
        ("key_id", Bytes(size=16)),
        ("shared_key", Bytes(size=32)),
        ("key_expires", U64),
        ("submission_digest", Bytes(size=32)),
    )

    def __repr__(self) -> str:  # never print the shared key
        return f"OriginBody({self.pseudonym!r}, owner={self.owner!r}, key_id={self.key_id.hex()})"


@dataclass(frozen=True, slots=True)
class RemoveBody(Message):
    device: str
    requester: str
    role: str
    reason: str
    outcome: Outcome
    certificate_serial: str
    key_id: bytes
    request: bytes

    TAG = tag("iomt/biomt/body/remove/v1")
    FIELDS = (
        ("device", ID),
        ("requester", ID),
        ("role", ID),
        ("reason", ID),
        ("outcome", Enum(Outcome)),
        ("certificate_serial", Text(max_size=64)),
        ("key_id", Bytes(max_size=16)),
        ("request", _REQUEST),
    )


@dataclass(frozen=True, slots=True)
class StoreBody(Message):
    device: str
    counter: int
    device_time: int
    record_digest: bytes
    record_size: int

    TAG = tag("iomt/biomt/body/store/v1")
    FIELDS = (
        ("device", ID),
        ("counter", U64),
        ("device_time", U64),
        ("record_digest", Bytes(size=32)),
        ("record_size", U32),
    )


@dataclass(frozen=True, slots=True)
class AccessBody(Message):
    requester: str
    role: str
    device: str
    since: int
    until: int
    outcome: Outcome
    records: int
    redirected: int
    detail: str
    request: bytes

    TAG = tag("iomt/biomt/body/access/v1")
    FIELDS = (
        ("requester", ID),
        ("role", ID),
        ("device", ID),
        ("since", U64),
        ("until", U64),
        ("outcome", Enum(Outcome)),
        ("records", U32),
        ("redirected", U32),
        ("detail", _DETAIL),
        ("request", _REQUEST),
    )


@dataclass(frozen=True, slots=True)
class CommunicationBody(Message):
    initiator: str
    peer: str
    grant_id: bytes
    expires_at: int
    outcome: Outcome
    invalidated: tuple[bytes, ...]
    detail: str
    request: bytes

    TAG = tag("iomt/biomt/body/communication/v1")
    FIELDS = (
        ("initiator", ID),
        ("peer", ID),
        ("grant_id", Bytes(max_size=16)),
        ("expires_at", U64),
        ("outcome", Enum(Outcome)),
        ("invalidated", Seq(Bytes(size=16), max_items=1 << 16)),
        ("detail", _DETAIL),
        ("request", _REQUEST),
    )


@dataclass(frozen=True, slots=True)
class ObserveBody(Message):
    requester: str
    role: str
    devices: tuple[str, ...]
    threshold: Threshold | None
    interval: int
    expires_at: int
    subscription_id: bytes
    subscription_key: bytes
    outcome: Outcome
    detail: str
    request: bytes

    TAG = tag("iomt/biomt/body/observe/v1")
    FIELDS = (
        ("requester", ID),
        ("role", ID),
        ("devices", Seq(ID, max_items=256)),
        ("threshold", Optional(Nested(Threshold))),
        ("interval", U64),
        ("expires_at", U64),
        ("subscription_id", Bytes(max_size=16)),
        ("subscription_key", Bytes(max_size=32)),
        ("outcome", Enum(Outcome)),
        ("detail", _DETAIL),
        ("request", _REQUEST),
    )

    def __repr__(self) -> str:
        return f"ObserveBody({self.requester!r}, {self.devices!r}, {self.outcome.name})"


@dataclass(frozen=True, slots=True)
class AttestationBody(Message):
    """A user's :class:`~iomt.core.biomt.session.SessionAttestation` (``request``: its
    signed bytes; the signature is the transaction's), and what it covers."""

    requester: str
    role: str
    session_id: bytes
    seqs: tuple[int, ...]
    digest: bytes
    request: bytes

    TAG = tag("iomt/biomt/body/attestation/v1")
    FIELDS = (
        ("requester", ID),
        ("role", ID),
        ("session_id", Bytes(size=SESSION_ID_SIZE)),
        ("seqs", Seq(U64, max_items=1 << 16)),
        ("digest", Bytes(size=32)),
        ("request", _REQUEST),
    )


Body = (
    OriginBody
    | RemoveBody
    | StoreBody
    | AccessBody
    | CommunicationBody
    | ObserveBody
    | AttestationBody
)

_BY_TAG: dict[bytes, type[Body]] = {
    cls.TAG: cls
    for cls in (
        OriginBody,
        RemoveBody,
        StoreBody,
        AccessBody,
        CommunicationBody,
        ObserveBody,
        AttestationBody,
    )
}


def session_evidence(request: bytes) -> SessionAuthenticated | None:
    """The session record a body's ``request`` holds, or None for a signed request."""
    if not request.startswith(SessionAuthenticated.TAG):
        return None
    return SessionAuthenticated.from_bytes(request)


def decode_body(data: bytes) -> Body:
    """Any body by its structure tag; :class:`BiomtDecodeError` for anything else."""
    if not data:
        raise BiomtDecodeError("empty transaction body")
    cls = _BY_TAG.get(bytes(data[: 1 + data[0]]))
    if cls is None:
        raise BiomtDecodeError("unknown transaction body")
    return cls.from_bytes(data)
