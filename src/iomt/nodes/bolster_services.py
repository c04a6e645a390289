"""The bolster's services (Seliem & Elgazzar, Table 1) over DDS: one handler per service,
in a dispatch table the node registers.

Each handler decodes the request, hands it to :class:`~iomt.core.biomt.Bolster`, answers
(a typed status on refusal) and then publishes what the core appended on ``~/ledger`` and
the Observe updates due (:mod:`iomt.nodes.bolster_feed`). The answer goes out before the
publication: the transaction is committed by then, and the requester waits for the answer,
not for the recorders. Access, Observe and History on a user's session come to the same
services (:mod:`iomt.nodes.bolster_sessions`).

What the node serves:

=====================  ====================================================================
``~/provision``        framework initialization: an admin-approved enrolment in, the
                       sealed identity and key out; an **Origin** is logged (and chained
                       at the master bolster, if there is one)
``~/store``            a device's Store (AEAD under its shared key) -> receipt; Observe
                       updates due go out on ``<observer>/observe_updates``
``~/access``           a user's signed Access -> data sealed to them, or cloud addresses
                       (the redirect) for records no longer kept locally
``~/observe``          a user's signed Observe -> a subscription (threshold, minimum
                       period and per-observer rate limits apply)
``~/remove``           admin or owner: the device is revoked and its data notations dropped
``~/communication``    device-to-device key setup; ``~/pair_key_status`` for its validity
``~/history``          the owner's (or an admin's) view of everything logged about a device
``~/handshake``        a user's session handshake (``iomt_interfaces/srv/SessionHandshake``);
                       after it,
                       ``~/access``, ``~/observe`` and ``~/history`` also take session
                       requests (AES-GCM records, no signature, no ECIES), and
                       ``~/attest`` the user's signed attestation of a session's requests
``~/devices``          the authorized device pseudonyms (the privacy header: public anyway)
``~/credentials``      the bolster's certificates; ``~/checkpoint`` a fresh signed
                       checkpoint + consistency proof for the cluster head
``~/cloud_status``     how many of the ledger's transactions are sealed, and how many of
                       those the cloud holds (counts only: the checkpoint's size is public;
                       the body is ignored, a fresh nonce binds the answer to the request)
``~/record``           the sharing framework's events (see :mod:`iomt.nodes.biomt_events`)
``~/base/...``         the paper's no-crypto base (Fig. 3): store / access / observe through
                       the same node and service path, on :class:`~iomt.core.biomt.BaseBolster`
``~/ledger``           every appended transaction (type, pseudonymous generator, time, block,
                       encrypted body, signature), for recorders and auditors
=====================  ====================================================================
"""

from __future__ import annotations

from typing import Any

from iomt.core.biomt import (
    AccessRequest,
    Bolster,
    CheckpointRequest,
    CommunicationRequest,
    HistoryRequest,
    ObserveRequest,
    ProvisionRequest,
    RemoveRequest,
    SessionOp,
    StoreRequest,
)
from iomt.core.biomt.admission import MasterAdmission
from iomt.core.biomt.bodies import OriginBody
from iomt.core.biomt.sharing_events import SharingRecorder, SharingReport
from iomt.errors import IomtError
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_ledger import LedgerView
from iomt.nodes.bolster_costs import Handler
from iomt.nodes.bolster_feed import Answers, LedgerFeed
from iomt.nodes.bolster_sessions import SessionServices
from iomt.runtime import Responder

__all__ = ["OPEN_SERVICES", "Table1Services", "proven"]

#: services anyone may call: their answers are signed within the signature budget
OPEN_SERVICES = frozenset({"devices", "credentials", "pair_key_status", "cloud_status"})


def proven(proofs: bw.ServiceReplies, op: str, handler: Handler) -> Handler:
    """``handler``, its every answer carrying its proof (iomt.core.replies) -- but the
    no-crypto base's: the base stays the paper's."""
    if op.startswith("base/"):
        return handler
    open_service = op in OPEN_SERVICES

    def run(request: Any, responder: Responder) -> int | None:
        proving = bw.ProvingResponder(responder, proofs, op, request, open_service=open_service)
        return handler(request, proving)

    return run


class Table1Services:
    """The handlers of the bolster's services, by service name."""

    def __init__(
        self,
        bolster: Bolster,
        *,
        answers: Answers,
        feed: LedgerFeed,
        sessions: SessionServices,
        view: LedgerView,
        recorder: SharingRecorder,
        admission: MasterAdmission | None,
    ) -> None:
        self._bolster = bolster
        self._answers = answers
        self._feed = feed
        self._sessions = sessions
        self._view = view
        self._recorder = recorder
        self._admission = admission

    def handlers(self) -> dict[str, Handler]:
        or_signed = self._sessions.or_signed
        return {
            "provision": self._on_provision,
            "store": self._on_store,
            "access": or_signed(SessionOp.ACCESS, self._on_access),
            "observe": or_signed(SessionOp.OBSERVE, self._on_observe),
            "remove": self._on_remove,
            "communication": self._on_communication,
            "pair_key_status": self._on_pair_key_status,
            "history": or_signed(SessionOp.HISTORY, self._on_history),
            "devices": self._on_devices,
            "credentials": self._on_credentials,
            "checkpoint": self._on_checkpoint,
            "cloud_status": self._on_cloud_status,
            "record": self._on_record,
            "attest": self._sessions.on_attest,
        }

    # -- Table 1 transactions ---------------------------------------------------------------

    def _on_provision(self, req: Any, responder: Responder) -> int | None:
        try:
            provisioned = self._bolster.provision(ProvisionRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._answers.refuse(responder, "provision", exc)
        self._answers.answer(responder, provisioned.to_bytes())
        self._feed.publish_new()
        self._view.refresh()
        body = self._view.open_body(provisioned.origin)
        if isinstance(body, OriginBody) and self._admission is not None:
            self._admission.provisioned(body.pseudonym)
        return None

    def _on_store(self, req: Any, responder: Responder) -> int | None:
        try:
            request = StoreRequest.from_bytes(bytes(req.body))
            if isinstance(responder, bw.ProvingResponder):  # MAC'd under the device's key
                responder.key = self._bolster.device_reply_key(request.device)
            result = self._bolster.store(request)
        except IomtError as exc:
            return self._answers.refuse(responder, "store", exc)
        self._answers.answer(responder, result.receipt.to_bytes())
        receipt = result.receipt
        self._feed.publish_new((receipt.transaction, receipt.receipt.block_index))
        self._feed.send_updates(result.updates)
        return None

    # -- Table 1 transactions (signed, or on a session) --------------------------------------

    def _on_access(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.access(AccessRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._answers.refuse(responder, "access", exc)
        self._answers.answer(responder, result.to_bytes())
        self._feed.publish_new((result.transaction, result.receipt.block_index))
        return None

    def _on_observe(self, req: Any, responder: Responder) -> int | None:
        try:
            request = ObserveRequest.from_bytes(bytes(req.body))
            sub = self._bolster.observe(request)
        except IomtError as exc:
            return self._answers.refuse(responder, "observe", exc)
        self._feed.updates(sub.requester)
        self._answers.answer(responder, sub.to_bytes())
        self._feed.publish_new((sub.transaction, sub.receipt.block_index))
        return None

    def _on_remove(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.remove(RemoveRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._answers.refuse(responder, "remove", exc)
        self._answers.answer(responder, result.to_bytes())
        self._feed.publish_new()
        self._view.refresh()
        return None

    def _on_communication(self, req: Any, responder: Responder) -> int | None:
        try:
            grant = self._bolster.setup_communication(
                CommunicationRequest.from_bytes(bytes(req.body))
            )
        except IomtError as exc:
            return self._answers.refuse(responder, "communication", exc)
        self._answers.answer(responder, grant.to_bytes())
        self._feed.publish_new((grant.transaction, grant.receipt.block_index))
        return None

    def _on_pair_key_status(self, req: Any, responder: Responder) -> int | None:
        status = self._bolster.pair_key_status(bytes(req.body))
        self._answers.answer(responder, str(status).encode())
        return None

    def _on_history(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.history(HistoryRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._answers.refuse(responder, "history", exc)
        self._answers.answer(responder, result.to_bytes())
        return None

    # -- open services and the cluster head's ------------------------------------------------

    def _on_devices(self, _req: Any, responder: Responder) -> int | None:
        authorized = self._bolster.privacy_header.authorized_devices
        self._answers.answer(responder, bw.DeviceList(tuple(sorted(authorized))).to_bytes())
        return None

    def _on_credentials(self, _req: Any, responder: Responder) -> int | None:
        self._answers.answer(responder, self._bolster.credentials.to_bytes())
        return None

    def _on_checkpoint(self, req: Any, responder: Responder) -> int | None:
        try:
            submission = self._bolster.answer_checkpoint(
                CheckpointRequest.from_bytes(bytes(req.body))
            )
        except IomtError as exc:
            return self._answers.refuse(responder, "checkpoint", exc)
        self._answers.answer(responder, submission.to_bytes())
        return None

    def _on_cloud_status(self, _req: Any, responder: Responder) -> int | None:
        self._answers.answer(responder, self._bolster.cloud_status().to_bytes())
        return None

    def _on_record(self, req: Any, responder: Responder) -> int | None:
        try:
            ack = self._recorder.record(SharingReport.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self._answers.refuse(responder, "record", exc)
        self._answers.answer(responder, ack.to_bytes())
        self._feed.publish_new()
        return None
