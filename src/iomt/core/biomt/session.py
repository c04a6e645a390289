"""User sessions at the bolster: one authenticated handshake, then symmetric requests.

The paper has every user request carry asymmetric cryptography (here: an Ed25519
signature per request, and the answer ECIES-sealed to a one-time X25519 key), which costs
~0.4 ms per Access or Observe on both sides together. As the sharing framework's channels
do (:mod:`iomt.core.channels`), a user and a bolster instead run one SIGMA-I handshake
(:mod:`iomt.crypto.sessions`: ephemeral X25519, both identities proven by their facility-CA
certificates) and then protect each request and its answer with the session's AES-GCM
records: authenticity and replay protection come from the session (a sliding window over
record numbers), confidentiality and forward secrecy from its ephemeral keys.

Wire (the node carries these bytes in ``BolsterService``):

* :class:`SessionRequest` -- bolster, requester, operation and time in clear (the record's
  associated data), the query (:class:`AccessQuery`, :class:`ObserveQuery`,
  :class:`HistoryQuery` or a :class:`SessionAttestation`) inside the record;
* :class:`SessionResponse` -- bound to the request by its record tag; inside, a
  :class:`SessionResult`: the logged transaction, its receipt, and the payload
  (:class:`~iomt.core.biomt.messages.AccessPayload`, :class:`SubscriptionGrant`,
  :class:`~iomt.core.biomt.messages.HistoryPayload`).

**Receipts.** A session answer is authenticated by the session, so the user checks its
receipt's structure at once (the transaction is ours, its leaf is in the receipt's tree) and
leaves the tree head's signature -- the transferable part -- for later: the next
attestation's answer proves every covered transaction in one signed head (one Ed25519
verification per batch instead of one per request), and
:meth:`~iomt.core.biomt.requester.Requester.settle_receipts` verifies the rest on demand.
What a settled receipt proves is unchanged: the transaction is in the bolster's log under
a tree head it signed.

**Evidence.** A signed request is evidence anyone can check; a session record is not: its
key is shared with the bolster, which could have made the record itself. So the ledger
records a session-authenticated request as :class:`SessionAuthenticated` (who, which
session, which record, the user's certificate fingerprint, the query) with the record's
AEAD tag as the transaction's signature, and the history marks it
:attr:`~iomt.core.biomt.messages.Evidence.SESSION`. To make it transferable, the user
periodically signs a :class:`SessionAttestation`: a hash chain over (transaction number,
digest of the recorded request) of every answer it received in the session. The bolster
checks the chain against its own log and appends the attestation (an Access transaction
whose signature is the user's); entries it covers become
:attr:`~iomt.core.biomt.messages.Evidence.ATTESTED`. Its answer proves each covered
transaction's inclusion in the attestation's signed tree head (:class:`AttestationReceipts`).
The bolster refuses further requests on a session with more than ``max_unattested``
unattested ones, so the part of a user's activity that rests on the bolster's word alone is
bounded. Remove and provisioning stay
signature-only (rare, destructive, admin).

:class:`UserSessions` is the bolster's side (the channel table, the user validator, the
per-session log of unattested requests); the user's side is in
:class:`~iomt.core.biomt.requester.Requester`.
"""

from __future__ import annotations

import hmac
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from iomt.core.channels import ChannelTable, HandshakeLimits
from iomt.crypto.ca import certificate_der
from iomt.crypto.encoding import lp16
from iomt.crypto.errors import CertificateError, SessionError, SessionReplayError
from iomt.crypto.primitives import sha256
from iomt.crypto.sessions import (
    CredentialValidator,
    HandshakeIdentity,
    Session,
    SessionPolicy,
    record_session_id,
)
from iomt.crypto.signing import Verifier
from iomt.errors import AuthenticationError, RemoteProtocolError
from iomt.ledger import InclusionProof, Receipt, Transaction

from .clock import SECOND, ClockNs
from .codec import U32, U64, Blob, Bytes, Enum, Message, Nested, Optional, Seq, tag
from .errors import (
    AttestationMismatchError,
    AttestationRequiredError,
    ReplayError,
    RequestAuthenticationError,
    UnknownRequesterError,
    UnknownSessionError,
)
from .identity import TrustAnchor, UserDirectory, certificate_from_der
from .messages import ID, MAX_GROUP, RECEIPT, TRANSACTION, Threshold, _name, _require, _u64

__all__ = [
    "SESSION_ID_SIZE",
    "AccessQuery",
    "AttestationReceipts",
    "HistoryQuery",
    "ObserveQuery",
    "SessionAttestation",
    "SessionAuthenticated",
    "SessionOp",
    "SessionRequest",
    "SessionResponse",
    "SessionResult",
    "SubscriptionGrant",
    "UserSessions",
    "attestation_digest",
    "bolster_validator",
    "record_number",
    "session_id",
    "user_validator",
]

SESSION_ID_SIZE = 16
#: ``iomt.crypto.sessions`` records: ``01 10 | receiver id (8) | number (8) | AES-GCM``.
_NUMBER = slice(10, 18)
_MIN_RECORD = 18 + 16
_NO_RECORD = bytes(_MIN_RECORD)  # stands in for the record while computing the header's AAD
MAX_ATTESTED = 4096
RECORD = Bytes(max_size=1 << 24)
TAG16 = Bytes(size=16)
DIGEST = Bytes(size=32)


class SessionOp(IntEnum):
    """What a session request asks for."""

    ACCESS = 1
    OBSERVE = 2
    HISTORY = 3
    ATTEST = 4


def record_number(record: bytes) -> int:
    """The sender's sequence number of a session record (what the replay window tracks)."""
    if len(record) < _MIN_RECORD:
        raise SessionError("not a session record")
    return int.from_bytes(record[_NUMBER], "big")


def session_id(session: Session, *, initiator: bool) -> bytes:
    """Both connection ids, initiator's first: the same 16 bytes on both sides."""
    if initiator:
        return session.local_id + session.peer_id
    return session.peer_id + session.local_id


# --- wire ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRequest(Message):
    """A user request protected by a session: the clear header is the record's associated
    data (:meth:`signed_bytes`), the query is inside ``record``."""

    bolster_id: str
    requester: str
    operation: SessionOp
    time: int
    record: bytes

    TAG = tag("iomt/biomt/session-request/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("operation", Enum(SessionOp)),
        ("time", U64),
        ("record", RECORD),
    )
    SIGNATURE = "record"

    def __post_init__(self) -> None:
        _name(self.bolster_id, "bolster_id")
        _name(self.requester, "requester")
        _u64(self.time, "time")
        _require(len(self.record) >= _MIN_RECORD, "record shorter than a session record")

    @classmethod
    def seal(
        cls,
        session: Session,
        bolster_id: str,
        requester: str,
        operation: SessionOp,
        time: int,
        query: bytes,
    ) -> SessionRequest:
        """The request carrying ``query`` as a record on ``session``, the clear header its
        associated data."""
        header = cls(bolster_id, requester, operation, time, _NO_RECORD)
        return cls(
            bolster_id, requester, operation, time, session.protect(query, header.signed_bytes())
        )

    @property
    def auth_tag(self) -> bytes:
        """The record's AEAD tag: what authenticates the request (logged as its signature)."""
        return self.record[-16:]

    @property
    def number(self) -> int:
        return record_number(self.record)


@dataclass(frozen=True, slots=True)
class SessionResponse(Message):
    """The bolster's answer on the session, bound to the request by its tag."""

    bolster_id: str
    requester: str
    operation: SessionOp
    request_tag: bytes
    record: bytes

    TAG = tag("iomt/biomt/session-response/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("operation", Enum(SessionOp)),
        ("request_tag", TAG16),
        ("record", RECORD),
    )
    SIGNATURE = "record"

    def __post_init__(self) -> None:
        _require(len(self.record) >= _MIN_RECORD, "record shorter than a session record")

    @classmethod
    def seal(cls, session: Session, request: SessionRequest, result: bytes) -> SessionResponse:
        """The answer to ``request`` carrying ``result`` as a record on ``session``."""
        fields = (request.bolster_id, request.requester, request.operation, request.auth_tag)
        header = cls(*fields, _NO_RECORD)
        return cls(*fields, session.protect(result, header.signed_bytes()))


@dataclass(frozen=True, slots=True)
class SessionResult(Message):
    """Inside a response record: the transaction that logged the request and its receipt
    (none for history, which is not logged), and the operation's payload."""

    operation: SessionOp
    transaction: Transaction | None
    receipt: Receipt | None
    payload: bytes

    TAG = tag("iomt/biomt/session-result/v1")
    FIELDS = (
        ("operation", Enum(SessionOp)),
        ("transaction", Optional(TRANSACTION)),
        ("receipt", Optional(RECEIPT)),
        ("payload", Bytes()),
    )

    def __post_init__(self) -> None:
        _require(
            (self.transaction is None) == (self.receipt is None),
            "a transaction comes with its receipt",
        )


# --- queries (inside a request record) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessQuery(Message):
    """Access: a device's data stored in ``[since, until)`` (device time), at most ``limit``."""

    device: str
    since: int
    until: int
    limit: int

    TAG = tag("iomt/biomt/access-query/v1")
    FIELDS = (("device", ID), ("since", U64), ("until", U64), ("limit", U32))

    def __post_init__(self) -> None:
        _name(self.device, "device")
        _u64(self.since, "since")
        _u64(self.until, "until")
        _require(self.since <= self.until, "since must not be after until")
        _require(0 < self.limit <= 100_000, "limit must be 1..100000")


@dataclass(frozen=True, slots=True)
class ObserveQuery(Message):
    """Observe a device or a group (as :class:`~iomt.core.biomt.messages.ObserveRequest`)."""

    devices: tuple[str, ...]
    threshold: Threshold | None
    interval: int
    duration: int

    TAG = tag("iomt/biomt/observe-query/v1")
    FIELDS = (
        ("devices", Seq(ID, max_items=MAX_GROUP)),
        ("threshold", Optional(Nested(Threshold))),
        ("interval", U64),
        ("duration", U64),
    )

    def __post_init__(self) -> None:
        devices = tuple(sorted(set(self.devices)))
        _require(0 < len(devices) <= MAX_GROUP, f"observe 1..{MAX_GROUP} devices")
        _require(len(devices) == len(self.devices), "devices listed twice")
        for d in devices:
            _name(d, "device")
        object.__setattr__(self, "devices", devices)
        _u64(self.interval, "interval")
        _u64(self.duration, "duration")
        _require(self.duration > 0, "duration must be positive")


@dataclass(frozen=True, slots=True)
class HistoryQuery(Message):
    """The owner's view of a device (pseudonym) or of all their devices (their name)."""

    subject: str

    TAG = tag("iomt/biomt/history-query/v1")
    FIELDS = (("subject", ID),)

    def __post_init__(self) -> None:
        _name(self.subject, "subject")


@dataclass(frozen=True, slots=True)
class SubscriptionGrant(Message):
    """A granted Observe, inside a session answer: the subscription key in clear (the
    record is encrypted under the session)."""

    subscription_id: bytes
    devices: tuple[str, ...]
    interval: int
    expires_at: int
    key: bytes

    TAG = tag("iomt/biomt/subscription-grant/v1")
    FIELDS = (
        ("subscription_id", Bytes(size=16)),
        ("devices", Seq(ID, max_items=MAX_GROUP)),
        ("interval", U64),
        ("expires_at", U64),
        ("key", Bytes(size=32)),
    )

    def __repr__(self) -> str:  # never print the key
        return f"SubscriptionGrant({self.subscription_id.hex()}, {self.devices!r})"


# --- evidence ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionAuthenticated(Message):
    """What the ledger keeps of a session-authenticated request (a body's ``request``):
    the clear header, the session (both connection ids), the record's number, the
    fingerprint of the certificate the user proved at the handshake, and the query."""

    bolster_id: str
    requester: str
    operation: SessionOp
    time: int
    session_id: bytes
    number: int
    credential: bytes
    query: bytes

    TAG = tag("iomt/biomt/session-authenticated/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("operation", Enum(SessionOp)),
        ("time", U64),
        ("session_id", Bytes(size=SESSION_ID_SIZE)),
        ("number", U64),
        ("credential", DIGEST),
        ("query", Bytes(max_size=1 << 16)),
    )

    def digest(self) -> bytes:
        return sha256(self.to_bytes())


@dataclass(frozen=True, slots=True)
class SessionAttestation(Message):
    """The user's signature over the requests of a session it got answers for: ``digest``
    chains (transaction number, digest of its :class:`SessionAuthenticated`) in ``seqs``
    order (see :func:`attestation_digest`)."""

    bolster_id: str
    requester: str
    session_id: bytes
    seqs: tuple[int, ...]
    digest: bytes
    time: int
    signature: bytes = b""

    TAG = tag("iomt/biomt/session-attestation/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("requester", ID),
        ("session_id", Bytes(size=SESSION_ID_SIZE)),
        ("seqs", Seq(U64, max_items=MAX_ATTESTED)),
        ("digest", DIGEST),
        ("time", U64),
        ("signature", Bytes(max_size=128)),
    )
    SIGNATURE = "signature"

    def __post_init__(self) -> None:
        _name(self.bolster_id, "bolster_id")
        _name(self.requester, "requester")
        _require(0 < len(self.seqs) <= MAX_ATTESTED, f"attest 1..{MAX_ATTESTED} requests")
        _require(
            all(a < b for a, b in zip(self.seqs, self.seqs[1:], strict=False)),
            "seqs must increase",
        )
        _u64(self.time, "time")


@dataclass(frozen=True, slots=True)
class AttestationReceipts(Message):
    """The answer to an attestation: an inclusion proof of each attested transaction in
    the tree the attestation's own (signed) receipt names -- so one verified signature
    settles the receipts of every request the attestation covers."""

    proofs: tuple[InclusionProof, ...]

    TAG = tag("iomt/biomt/attestation-receipts/v1")
    FIELDS = (("proofs", Seq(Blob(InclusionProof.from_bytes), max_items=MAX_ATTESTED)),)


_CHAIN = tag("iomt/biomt/session-attestation-chain/v1")


def attestation_digest(
    bolster_id: str, requester: str, sid: bytes, entries: Iterable[tuple[int, bytes]]
) -> bytes:
    """``h0 = H(tag, bolster, requester, session)``; ``h_i = H(h_{i-1}, seq_i, d_i)``."""
    h = sha256(_CHAIN + lp16(bolster_id.encode()) + lp16(requester.encode()) + sid)
    for seq, digest in entries:
        h = sha256(h + seq.to_bytes(8, "big") + digest)
    return h


# --- credential validators -----------------------------------------------------------


def user_validator(users: UserDirectory, clock: ClockNs) -> CredentialValidator:
    """The bolster's view of a handshake initiator: a registered user presenting exactly
    its registered certificate, still valid and unrevoked."""

    def validate(name: str, credential: bytes) -> Verifier:
        user = users.get(name)
        registered = certificate_der(user.certificate)
        if not hmac.compare_digest(registered, credential):
            raise RequestAuthenticationError(f"{name!r} presented another certificate")
        try:
            users.anchor.check_status(user.certificate, now=clock(), fingerprint_=user.fingerprint)
        except CertificateError as exc:
            raise UnknownRequesterError(f"{name!r}: {exc}") from None
        return user.verifier

    return validate


def bolster_validator(anchor: TrustAnchor, clock: ClockNs) -> CredentialValidator:
    """A user's view of the bolster: its signing certificate from the facility CA, named
    for the bolster (what :class:`~iomt.core.biomt.identity.BolsterCredentials` carries)."""

    def validate(name: str, credential: bytes) -> Verifier:
        try:
            cert = certificate_from_der(credential)
        except (ValueError, CertificateError) as exc:
            raise RequestAuthenticationError(f"credential of {name!r}: {exc}") from None
        return anchor.validate(cert, now=clock(), name=name)

    return validate


# --- the bolster's side --------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _SessionLog:
    """A session's requests the user has not attested yet: tx seq -> request digest."""

    requester: str
    credential: bytes
    expires_at: int
    pending: dict[int, bytes] = field(default_factory=dict)


class UserSessions:
    """The bolster's sessions with its users (sans-IO; one node owns it).

    ``handshake`` answers messages 1 and 3 (:class:`~iomt.core.channels.ChannelTable`);
    ``open`` finds, checks and decrypts a request; ``seal`` encrypts the answer;
    ``logged`` / ``attest`` keep the unattested requests per session.
    """

    def __init__(
        self,
        identity: HandshakeIdentity,
        users: UserDirectory,
        *,
        clock: ClockNs,
        policy: SessionPolicy,
        handshake_limits: HandshakeLimits,
        max_unattested: int,
        attest_grace: int,
    ) -> None:
        self._users = users
        self._clock = clock
        self._table = ChannelTable(
            identity,
            user_validator(users, clock),
            policy=policy,
            clock=lambda: clock() / SECOND,
            limits=handshake_limits,
        )
        self.max_unattested = max_unattested
        self._grace = attest_grace
        self._logs: dict[bytes, _SessionLog] = {}

    @property
    def table(self) -> ChannelTable:
        return self._table

    def handshake(self, initiator: str, message: bytes, *, source: Hashable | None = None) -> bytes:
        """Message 1 -> message 2; message 3 -> message 4 (the session is up). Message 1s
        are admitted per source within the table's limits (the signatures strangers can
        cause are bounded without letting a flood lock out a quiet user)."""
        try:
            return self._table.respond(initiator, message, source=source)
        except (AuthenticationError, RemoteProtocolError):
            raise
        except ValueError as exc:  # a name the handshake cannot carry
            raise RemoteProtocolError(f"handshake: {exc}") from None

    def session_of(self, request: SessionRequest) -> Session | None:
        """The live session the record names, whoever sent it (no check: for keying the
        answer's proof only, :mod:`iomt.core.replies`)."""
        try:
            return self._table.session_by_id(record_session_id(request.record))
        except SessionError:
            return None

    def open(self, request: SessionRequest) -> tuple[Session, bytes, bytes]:
        """The live session the record names (it must be ``request.requester``'s), and the
        decrypted query; raises :class:`UnknownSessionError` or an ``AuthenticationError``
        (forged, replayed, another user's session). Returns (session, session id, query)."""
        try:
            session = self._table.session_by_id(record_session_id(request.record))
        except SessionError:
            session = None
        if session is None:
            raise UnknownSessionError("no live session for this record; run the handshake again")
        if session.peer_name != request.requester:
            raise RequestAuthenticationError(
                f"record is on a session of another user, not {request.requester!r}"
            )
        try:
            query = session.unprotect(request.record, request.signed_bytes())
        except SessionReplayError as exc:  # the original has its answer
            raise ReplayError(f"session request refused: {exc}") from None
        except SessionError as exc:
            raise RequestAuthenticationError(f"session request refused: {exc}") from None
        sid = session_id(session, initiator=False)
        log = self._logs.get(sid)
        if log is None:
            user = self._users.get(session.peer_name)
            log = self._logs[sid] = _SessionLog(
                session.peer_name,
                sha256(certificate_der(user.certificate)),
                round(session.expires_at * SECOND),
            )
        return session, sid, query

    def credential(self, sid: bytes) -> bytes:
        return self._logs[sid].credential

    def require_attested(self, sid: bytes) -> None:
        log = self._logs.get(sid)
        if log is not None and len(log.pending) >= self.max_unattested:
            raise AttestationRequiredError(
                f"{len(log.pending)} requests on this session are unattested; attest them first"
            )

    @staticmethod
    def seal(session: Session, request: SessionRequest, result: SessionResult) -> SessionResponse:
        return SessionResponse.seal(session, request, result.to_bytes())

    def logged(self, sid: bytes, seq: int, evidence: SessionAuthenticated) -> None:
        self._logs[sid].pending[seq] = evidence.digest()

    def check_attestation(self, sid_of_channel: bytes, att: SessionAttestation) -> None:
        """The attested session is this user's, still known here, and the chain over the
        listed transactions equals what this bolster logged. Raises
        :class:`AttestationMismatchError` (nothing changes)."""
        log = self._logs.get(att.session_id)
        here = self._logs[sid_of_channel]
        if log is None or log.requester != here.requester:
            raise AttestationMismatchError("attestation names no session of this user known here")
        missing = [s for s in att.seqs if s not in log.pending]
        if missing:
            raise AttestationMismatchError(
                f"transactions {missing[:8]} are not unattested requests of this session"
            )
        mine = attestation_digest(
            att.bolster_id,
            att.requester,
            att.session_id,
            ((s, log.pending[s]) for s in att.seqs),
        )
        if not hmac.compare_digest(mine, att.digest):
            raise AttestationMismatchError("attested digest differs from the logged requests")

    def attested(self, att: SessionAttestation) -> None:
        log = self._logs[att.session_id]
        for s in att.seqs:
            log.pending.pop(s, None)

    def unattested(self, sid: bytes) -> int:
        log = self._logs.get(sid)
        return 0 if log is None else len(log.pending)

    def expire(self, now: int) -> int:
        """Forget logs of sessions expired more than the grace period ago (their
        unattested requests stay SESSION evidence). Returns how many were dropped."""
        gone = [sid for sid, log in self._logs.items() if now > log.expires_at + self._grace]
        for sid in gone:
            del self._logs[sid]
        return len(gone)

    def __len__(self) -> int:
        return len(self._table)
