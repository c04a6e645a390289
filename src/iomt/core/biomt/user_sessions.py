"""User sessions: Access, Observe and history on a session, and their attestation.

A user opens a session with a handshake (:class:`~iomt.core.biomt.session.UserSessions`);
each request on it is an AEAD record rather than a signature. The logged transaction
records :class:`~iomt.core.biomt.session.SessionAuthenticated` and the record's tag, and a
session may carry only so many requests before its user attests them: one signature over
their transactions, logged as an **Access** transaction, answered with inclusion proofs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import ClassVar

from iomt.core.channels import ChannelTable, HandshakeLimits
from iomt.crypto.sessions import HandshakeIdentity, Session, SessionPolicy
from iomt.errors import AuthenticationError
from iomt.ledger import Receipt, Transaction, TxType

from .bodies import AttestationBody
from .checks import RequestChecks
from .clock import SECOND
from .costs import Phase
from .errors import (
    BiomtDecodeError,
    DeniedError,
    RequestAuthenticationError,
    UnknownRequesterError,
)
from .history import History
from .identity import User
from .records import Records
from .session import (
    AccessQuery,
    AttestationReceipts,
    HistoryQuery,
    ObserveQuery,
    SessionAttestation,
    SessionAuthenticated,
    SessionOp,
    SessionRequest,
    SessionResponse,
    SessionResult,
    SubscriptionGrant,
    UserSessions,
)
from .state import BolsterState

__all__ = ["SessionService", "expect_operation", "is_session_request"]


def is_session_request(body: bytes) -> bool:
    """Access, Observe and History come signed or on a user's session, to the same
    service: a session request is told apart by its tag."""
    return body[: len(SessionRequest.TAG)] == SessionRequest.TAG


def expect_operation(request: SessionRequest, operation: SessionOp) -> None:
    """A session request names its operation: it must be the one of the service it came
    to (an Observe record sent to ``~/access`` is malformed, not an Observe)."""
    if request.operation is not operation:
        raise BiomtDecodeError(
            f"a {request.operation.name} session request on ~/{operation.name.lower()}"
        )


class SessionService:
    """The bolster's side of user sessions, over the records and history services."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_open": Phase.CRYPTO,
        "_seal": Phase.CRYPTO,
        "_verify": Phase.CRYPTO,
        "_proofs": Phase.LEDGER,
    }

    def __init__(
        self, state: BolsterState, checks: RequestChecks, records: Records, history: History
    ) -> None:
        self._state = state
        self._checks = checks
        self._records = records
        self._history = history
        identity, config = state.identity, state.config
        self.sessions = UserSessions(
            HandshakeIdentity(
                identity.bolster_id,
                identity.signer,
                identity.credentials().signing_certificate,  # DER
            ),
            state.users,
            clock=state.clock,
            policy=SessionPolicy(lifetime=config.session_lifetime / SECOND),
            handshake_limits=HandshakeLimits(
                per_source_rate=config.handshake_source_rate,
                per_source_burst=config.handshake_source_burst,
                shared_rate=config.handshake_rate,
                shared_burst=config.handshake_burst,
            ),
            max_unattested=config.max_unattested,
            attest_grace=config.attest_grace,
        )

    @property
    def table(self) -> ChannelTable:
        return self.sessions.table

    def handshake(self, initiator: str, message: bytes, *, source: Hashable | None) -> bytes:
        return self.sessions.handshake(initiator, message, source=source)

    def session_of(self, request: SessionRequest) -> Session | None:
        return self.sessions.session_of(request)

    def unattested(self, session: bytes) -> int:
        return self.sessions.unattested(session)

    def expire(self, now: int) -> None:
        self.sessions.expire(now)

    def request(self, request: SessionRequest) -> SessionResponse:
        """Access, Observe, history or an attestation on a user's session.

        Order of checks: bolster id, clock skew, the session (live, this requester's),
        the record (AEAD tag, replay window), the user (still registered, certificate
        valid), rate limit, unattested bound -- then as the signed path."""
        state, sessions = self._state, self.sessions
        kind = request.operation
        now = state.clock()
        self._checks.addressed(request.bolster_id)
        self._checks.fresh(request.time, now)
        session, sid, query = self._open(request)
        user = state.users.get(request.requester)
        try:
            state.users.anchor.check_status(
                user.certificate, now=now, fingerprint_=user.fingerprint
            )
        except AuthenticationError as exc:
            sessions.table.drop(user.name)
            raise UnknownRequesterError(f"{user.name!r}: {exc}") from None
        self._checks.within_rate(user.name, now)
        if kind is not SessionOp.ATTEST:
            sessions.require_attested(sid)
        evidence = SessionAuthenticated(
            state.bolster_id,
            user.name,
            kind,
            request.time,
            sid,
            request.number,
            sessions.credential(sid),
            query,
        )
        signature = request.auth_tag
        tx: Transaction | None = None
        receipt: Receipt | None = None
        try:
            if kind is SessionOp.ACCESS:
                tx, receipt, payload = self._records.serve_access(
                    user,
                    AccessQuery.from_bytes(query),
                    evidence=evidence.to_bytes(),
                    signature=signature,
                )
                result = state.encode(payload)
            elif kind is SessionOp.OBSERVE:
                tx, receipt, body = self._records.serve_observe(
                    user,
                    ObserveQuery.from_bytes(query),
                    now,
                    evidence=evidence.to_bytes(),
                    signature=signature,
                )
                result = state.encode(
                    SubscriptionGrant(
                        body.subscription_id,
                        body.devices,
                        body.interval,
                        body.expires_at,
                        body.subscription_key,
                    )
                )
            elif kind is SessionOp.HISTORY:
                subject = HistoryQuery.from_bytes(query).subject
                result = state.encode(self._history.serve(user, subject))
            else:
                tx, receipt, proofs = self._attest(user, sid, SessionAttestation.from_bytes(query))
                result = state.encode(proofs)
        except DeniedError as exc:
            if exc.transaction is not None and kind is not SessionOp.HISTORY:
                sessions.logged(sid, exc.transaction.seq, evidence)
            raise
        if tx is not None and kind in (SessionOp.ACCESS, SessionOp.OBSERVE):
            sessions.logged(sid, tx.seq, evidence)
        return self._seal(session, request, SessionResult(kind, tx, receipt, result))

    def _open(self, request: SessionRequest) -> tuple[Session, bytes, bytes]:
        return self.sessions.open(request)

    def _seal(
        self, session: Session, request: SessionRequest, result: SessionResult
    ) -> SessionResponse:
        return self.sessions.seal(session, request, result)

    def _attest(
        self, user: User, sid: bytes, att: SessionAttestation
    ) -> tuple[Transaction, Receipt, AttestationReceipts]:
        """The user's signature over their session's requests, logged; answered with the
        inclusion proofs of the attested transactions."""
        state = self._state
        if (att.bolster_id, att.requester) != (state.bolster_id, user.name):
            raise RequestAuthenticationError("attestation is for another bolster or user")
        self._verify(user, att)
        self.sessions.check_attestation(sid, att)
        body = AttestationBody(
            user.name, user.role, att.session_id, att.seqs, att.digest, att.signed_bytes()
        )
        tx, receipt = state.append(
            TxType.ACCESS,
            state.requester_pseudonym(user.name),
            body,
            signature=att.signature,
        )
        self.sessions.attested(att)
        return tx, receipt, self._proofs(att, receipt)

    def _verify(self, user: User, att: SessionAttestation) -> None:
        try:
            user.verifier.verify(att.signed_bytes(), att.signature)
        except AuthenticationError:
            raise RequestAuthenticationError(
                f"attestation signature of {user.name!r} does not verify"
            ) from None

    def _proofs(self, att: SessionAttestation, receipt: Receipt) -> AttestationReceipts:
        return AttestationReceipts(self._state.ledger.inclusion_proofs(att.seqs, receipt.tree_size))
