"""The bolster's services (Seliem & Elgazzar, Table 1) over DDS: one handler per service,
in a dispatch table the node registers.

Each handler decodes the request, hands it to :class:`~iomt.core.biomt.Bolster`, answers
(a typed status on refusal: :func:`iomt.nodes.biomt_wire.status_of`) and then publishes
what the core appended on ``~/ledger`` and the Observe updates due. The answer goes out
before the publication: the transaction is committed by then, and the requester waits for
the answer, not for the recorders.

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
``~/record``           the sharing framework's events (see :mod:`iomt.nodes.biomt_events`)
``~/base/...``         the paper's no-crypto base (Fig. 3): store / access / observe through
                       the same node and service path, on :class:`~iomt.core.biomt.BaseBolster`
``~/ledger``           every appended transaction (type, pseudonymous generator, time, block,
                       encrypted body, signature), for recorders and auditors
=====================  ====================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    ReplayError,
    SessionOp,
    SessionRequest,
    StoreRequest,
)
from iomt.core.biomt.admission import MasterAdmission
from iomt.core.biomt.bodies import OriginBody
from iomt.core.biomt.user_sessions import expect_operation, is_session_request
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_events import SharingRecorder, SharingReport
from iomt.nodes.biomt_ledger import LedgerView
from iomt.nodes.bolster_costs import Handler, ServiceCosts
from iomt.nodes.bolster_feed import LedgerFeed
from iomt.runtime import Node, Responder

__all__ = ["OPEN_SERVICES", "Table1Services", "proven"]

_R = BolsterService.Response

#: services anyone may call: their answers are signed within the signature budget
OPEN_SERVICES = frozenset({"devices", "credentials", "pair_key_status"})


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
        node: Node,
        bolster: Bolster,
        *,
        feed: LedgerFeed,
        view: LedgerView,
        recorder: SharingRecorder,
        costs: ServiceCosts,
        admission: MasterAdmission | None,
    ) -> None:
        self._node = node
        self._bolster = bolster
        self._feed = feed
        self._view = view
        self._recorder = recorder
        self._costs = costs
        self._admission = admission

    def handlers(self) -> dict[str, Handler]:
        return {
            "provision": self._on_provision,
            "store": self._on_store,
            "access": self._or_session(SessionOp.ACCESS, self._on_access),
            "observe": self._or_session(SessionOp.OBSERVE, self._on_observe),
            "remove": self._on_remove,
            "communication": self._on_communication,
            "pair_key_status": self._on_pair_key_status,
            "history": self._or_session(SessionOp.HISTORY, self._on_history),
            "devices": self._on_devices,
            "credentials": self._on_credentials,
            "checkpoint": self._on_checkpoint,
            "record": self._on_record,
            "attest": self._on_attest,
        }

    # -- answers ----------------------------------------------------------------------------

    def answer(self, responder: Responder, body: bytes = b"") -> None:
        responder.send(BolsterService.Response(status=_R.STATUS_OK, body=body))

    def refuse(self, responder: Responder, op: str, exc: IomtError) -> int:
        status, body = bw.status_of(exc)
        if isinstance(exc, ReplayError) and isinstance(responder, bw.ProvingResponder):
            responder.replay = True  # the original has its answer: no proof for this one
        if status != _R.STATUS_DENIED:
            self._node.get_logger().info("%s refused: %s", op, exc)
        responder.send(BolsterService.Response(status=status, reason=str(exc), body=body))
        self._feed.publish_new()  # a logged denial is a transaction too
        return status

    # -- Table 1 transactions ---------------------------------------------------------------

    def _on_provision(self, req: Any, responder: Responder) -> int | None:
        try:
            provisioned = self._bolster.provision(ProvisionRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "provision", exc)
        self.answer(responder, provisioned.to_bytes())
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
            return self.refuse(responder, "store", exc)
        self.answer(responder, result.receipt.to_bytes())
        receipt = result.receipt
        self._feed.publish_new((receipt.transaction, receipt.receipt.block_index))
        self._feed.send_updates(result.updates)
        return None

    # -- user sessions ----------------------------------------------------------------------

    def handshake(self, initiator: str, message: bytes, *, source: Any = None) -> bytes:
        c0 = time.thread_time_ns()
        try:
            return self._bolster.session_handshake(initiator, message, source=source)
        except IomtError as exc:
            self._node.get_logger().info("handshake from %s refused: %s", initiator, exc)
            raise
        finally:
            self._costs.add_cpu("handshake", time.thread_time_ns() - c0)

    def _on_session(self, kind: SessionOp, body: bytes, responder: Responder) -> int | None:
        op = kind.name.lower()
        try:
            request = SessionRequest.from_bytes(body)
            if isinstance(responder, bw.ProvingResponder):  # MAC'd on the user's session
                responder.channels = self._bolster.session_channels
                responder.session = self._bolster.session_of(request)
            expect_operation(request, kind)
            response = self._bolster.session_request(request)
        except IomtError as exc:
            return self.refuse(responder, op, exc)
        self.answer(responder, response.to_bytes())
        self._feed.publish_new(self._bolster.last_append)
        return None

    def _on_attest(self, req: Any, responder: Responder) -> int | None:
        return self._on_session(SessionOp.ATTEST, bytes(req.body), responder)

    def _or_session(
        self, kind: SessionOp, signed: Callable[[Any, Responder], int | None]
    ) -> Callable[[Any, Responder], int | None]:
        """Access, Observe and History come signed, or on a user's session (tagged)."""

        def run(req: Any, responder: Responder) -> int | None:
            body = bytes(req.body)
            if is_session_request(body):
                return self._on_session(kind, body, responder)
            return signed(req, responder)

        return run

    # -- Table 1 transactions (signed, or on a session) --------------------------------------

    def _on_access(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.access(AccessRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "access", exc)
        self.answer(responder, result.to_bytes())
        self._feed.publish_new((result.transaction, result.receipt.block_index))
        return None

    def _on_observe(self, req: Any, responder: Responder) -> int | None:
        try:
            request = ObserveRequest.from_bytes(bytes(req.body))
            sub = self._bolster.observe(request)
        except IomtError as exc:
            return self.refuse(responder, "observe", exc)
        self._feed.updates(sub.requester)
        self.answer(responder, sub.to_bytes())
        self._feed.publish_new((sub.transaction, sub.receipt.block_index))
        return None

    def _on_remove(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.remove(RemoveRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "remove", exc)
        self.answer(responder, result.to_bytes())
        self._feed.publish_new()
        self._view.refresh()
        return None

    def _on_communication(self, req: Any, responder: Responder) -> int | None:
        try:
            grant = self._bolster.setup_communication(
                CommunicationRequest.from_bytes(bytes(req.body))
            )
        except IomtError as exc:
            return self.refuse(responder, "communication", exc)
        self.answer(responder, grant.to_bytes())
        self._feed.publish_new((grant.transaction, grant.receipt.block_index))
        return None

    def _on_pair_key_status(self, req: Any, responder: Responder) -> int | None:
        status = self._bolster.pair_key_status(bytes(req.body))
        self.answer(responder, str(status).encode())
        return None

    def _on_history(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.history(HistoryRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "history", exc)
        self.answer(responder, result.to_bytes())
        return None

    # -- open services and the cluster head's ------------------------------------------------

    def _on_devices(self, _req: Any, responder: Responder) -> int | None:
        authorized = self._bolster.privacy_header.authorized_devices
        self.answer(responder, bw.DeviceList(tuple(sorted(authorized))).to_bytes())
        return None

    def _on_credentials(self, _req: Any, responder: Responder) -> int | None:
        self.answer(responder, self._bolster.credentials.to_bytes())
        return None

    def _on_checkpoint(self, req: Any, responder: Responder) -> int | None:
        try:
            submission = self._bolster.answer_checkpoint(
                CheckpointRequest.from_bytes(bytes(req.body))
            )
        except IomtError as exc:
            return self.refuse(responder, "checkpoint", exc)
        self.answer(responder, submission.to_bytes())
        return None

    def _on_record(self, req: Any, responder: Responder) -> int | None:
        try:
            ack = self._recorder.record(SharingReport.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "record", exc)
        self.answer(responder, ack.to_bytes())
        self._feed.publish_new()
        return None
