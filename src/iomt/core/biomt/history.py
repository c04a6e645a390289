"""The patient's view: every logged event about a device, for its owner or an admin.

Reading the history is not itself logged. Each entry says who did what to which device,
with what outcome and on what evidence (a signature, a device key, a session record -- or
a session record its user later attested, :mod:`.user_sessions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from iomt.ledger import Transaction

from .bodies import (
    AccessBody,
    AttestationBody,
    Body,
    CommunicationBody,
    ObserveBody,
    OriginBody,
    RemoveBody,
    StoreBody,
)
from .checks import RequestChecks
from .costs import Phase
from .errors import AccessDeniedError
from .identity import ADMIN_ROLE, DEVICE_ROLE, User
from .messages import (
    Evidence,
    HistoryEntry,
    HistoryPayload,
    HistoryRequest,
    HistoryResult,
    Outcome,
)
from .sealing import response_aad
from .session import SessionAuthenticated
from .state import BolsterState

__all__ = ["History"]


class History:
    """Answers history requests (signed, or on a session through :meth:`serve`)."""

    #: the steps whose time goes to a phase of the cost meter (:mod:`.metering`)
    PHASES: ClassVar[Mapping[str, Phase]] = {
        "_read": Phase.LEDGER,
    }

    def __init__(self, state: BolsterState, checks: RequestChecks) -> None:
        self._state = state
        self._checks = checks

    def history(self, request: HistoryRequest) -> HistoryResult:
        """Every logged event about the subject's devices, for their owner or an admin.

        ``subject`` is a device pseudonym, or the owner (by user name or by their ledger
        pseudonym) for all of their devices. A refusal raises :class:`AccessDeniedError`
        without evidence (nothing was appended)."""
        state = self._state
        user = self._checks.authenticate(request, state.clock())
        payload = self.serve(user, request.subject)
        aad = response_aad(state.bolster_id, user.name, request.subject, 0, request.nonce)
        sealed = state.seal_answer(request.response_key, state.encode(payload), aad)
        return HistoryResult(state.bolster_id, user.name, request.subject, request.nonce, sealed)

    def serve(self, user: User, requested: str) -> HistoryPayload:
        state = self._state
        subject = requested
        if subject == state.requester_pseudonym(user.name):  # "my devices", by pseudonym
            subject = user.name
        if subject in state.devices:
            devices = {subject}
            owner = state.devices[subject].owner
        else:
            devices = set(state.owned.get(subject, ()))
            owner = subject
        if user.role != ADMIN_ROLE and user.name != owner:
            raise AccessDeniedError(f"{user.name!r} may not read the history of {subject!r}")
        entries = self._read(devices)
        return HistoryPayload(requested, tuple(sorted(devices)), tuple(entries))

    def _read(self, devices: set[str]) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        attested: dict[int, int] = {}  # session request's seq -> the attestation's seq
        for tx in self._state.ledger.transactions():
            body = self._state.open_body(tx)
            if isinstance(body, AttestationBody):
                attested.update(dict.fromkeys(body.seqs, tx.seq))
            entries.extend(_entries(tx, body, devices))
        return [
            replace(
                e,
                evidence=Evidence.ATTESTED,
                detail=f"{e.detail}; attested by {e.actor} in transaction {attested[e.seq]}",
            )
            if e.evidence is Evidence.SESSION and e.seq in attested
            else e
            for e in entries
        ]


def _entries(  # noqa: PLR0911  (one case per transaction type of the paper)
    tx: Transaction, body: Body, devices: set[str]
) -> list[HistoryEntry]:
    def entry(
        actor: str,
        role: str,
        device: str,
        outcome: Outcome,
        records: int,
        detail: str,
        evidence: Evidence = Evidence.SIGNATURE,
    ) -> HistoryEntry:
        return HistoryEntry(
            tx.seq, tx.tx_type, tx.time, actor, role, device, outcome, records, detail, evidence
        )

    def of_user(request: bytes) -> Evidence:
        return (
            Evidence.SESSION
            if request.startswith(SessionAuthenticated.TAG)
            else (Evidence.SIGNATURE)
        )

    if isinstance(body, OriginBody) and body.pseudonym in devices:
        return [
            entry(
                body.admin,
                ADMIN_ROLE,
                body.pseudonym,
                Outcome.GRANTED,
                0,
                f"provisioned; key {body.key_id.hex()} until {body.key_expires}",
            )
        ]
    if isinstance(body, StoreBody) and body.device in devices:
        return [
            entry(
                body.device,
                DEVICE_ROLE,
                body.device,
                Outcome.GRANTED,
                1,
                f"counter {body.counter}",
                Evidence.DEVICE_KEY,
            )
        ]
    if isinstance(body, AccessBody) and body.device in devices:
        return [
            entry(
                body.requester,
                body.role,
                body.device,
                body.outcome,
                body.records + body.redirected,
                body.detail,
                of_user(body.request),
            )
        ]
    if isinstance(body, CommunicationBody):
        return [
            entry(
                body.initiator,
                DEVICE_ROLE,
                d,
                body.outcome,
                0,
                f"communication {body.initiator} -> {body.peer}: {body.detail}",
                Evidence.DEVICE_KEY,
            )
            for d in sorted({body.initiator, body.peer} & devices)
        ]
    if isinstance(body, ObserveBody):
        return [
            entry(body.requester, body.role, d, body.outcome, 0, body.detail, of_user(body.request))
            for d in body.devices
            if d in devices
        ]
    if isinstance(body, RemoveBody) and body.device in devices:
        return [entry(body.requester, body.role, body.device, body.outcome, 0, body.reason)]
    return []
