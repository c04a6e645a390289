"""The bolster's services (Seliem & Elgazzar, Table 1) over DDS: one handler per service,
in a dispatch table the node registers.

Each handler decodes the request, hands it to :class:`~iomt.core.biomt.Bolster`, answers
(a typed status on refusal: :func:`iomt.nodes.biomt_wire.status_of`) and then publishes
what the core appended on ``~/ledger`` and the Observe updates due. The answer goes out
before the publication: the transaction is committed by then, and the requester waits for
the answer, not for the recorders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from iomt.core.biomt import (
    AccessRequest,
    BiomtDecodeError,
    Bolster,
    CheckpointRequest,
    CommunicationRequest,
    HistoryRequest,
    ObserveRequest,
    ObserveUpdate,
    ProvisionRequest,
    RemoveRequest,
    ReplayError,
    SessionOp,
    SessionRequest,
    StoreRequest,
)
from iomt.core.biomt.admission import MasterAdmission
from iomt.core.biomt.bodies import OriginBody
from iomt.errors import IomtError
from iomt.ledger import Transaction
from iomt.msg import BiomtObserveUpdate, BiomtTransaction, BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_events import SharingRecorder, SharingReport
from iomt.nodes.biomt_ledger import LedgerView
from iomt.nodes.bolster_costs import Handler, ServiceCosts
from iomt.runtime import Node, Publisher, QoSProfile, Responder

__all__ = ["LEDGER_QOS", "SESSION_TAG", "LedgerFeed", "Table1Services"]

SESSION_TAG = SessionRequest.TAG
LEDGER_QOS = QoSProfile(depth=1000)
_R = BolsterService.Response


class LedgerFeed:
    """``~/ledger`` (every appended transaction, once) and ``<observer>/observe_updates``."""

    def __init__(self, node: Node, bolster: Bolster, view: LedgerView) -> None:
        self._node = node
        self._bolster = bolster
        self._view = view
        self._pub = node.create_publisher(BiomtTransaction, "~/ledger", LEDGER_QOS)
        self._published = bolster.ledger.size  # restart: history is in the file
        self._update_pubs: dict[str, Publisher[BiomtObserveUpdate]] = {}

    def publish_new(self, known: Transaction | None = None, block_index: int = -1) -> None:
        """Publish every transaction appended since the last call (``known``: the one just
        appended, when it is the only one, saves reading it back)."""
        ledger = self._bolster.ledger
        size = ledger.size
        if self._published >= size:
            return
        if known is not None and known.seq == self._published == size - 1 and block_index >= 0:
            txs = [known]
        else:
            txs = list(ledger.transactions(start=self._published))
        for tx in txs:
            index, first = self._view.position(tx.seq)
            self._pub.publish(bw.transaction_msg(self._node.get_name(), tx, index, first))
        self._published = size

    def updates(self, observer: str) -> Publisher[BiomtObserveUpdate]:
        pub = self._update_pubs.get(observer)
        if pub is None:
            topic = f"{self._node.get_namespace().rstrip('/')}/{observer}/observe_updates"
            pub = self._node.create_publisher(BiomtObserveUpdate, topic, bw.UPDATES_QOS)
            self._update_pubs[observer] = pub
        return pub

    def send_updates(self, updates: tuple[ObserveUpdate, ...]) -> None:
        for update in updates:
            self.updates(update.observer).publish(bw.update_msg(update))


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
        self._feed.publish_new(receipt.transaction, receipt.receipt.block_index)
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
            if request.operation is not kind:
                raise BiomtDecodeError(f"a {request.operation.name} session request on ~/{op}")
            response = self._bolster.session_request(request)
        except IomtError as exc:
            return self.refuse(responder, op, exc)
        self.answer(responder, response.to_bytes())
        last = self._bolster.last_append
        if last is not None:
            self._feed.publish_new(*last)
        return None

    def _on_attest(self, req: Any, responder: Responder) -> int | None:
        return self._on_session(SessionOp.ATTEST, bytes(req.body), responder)

    def _or_session(
        self, kind: SessionOp, signed: Callable[[Any, Responder], int | None]
    ) -> Callable[[Any, Responder], int | None]:
        """Access, Observe and History come signed, or on a user's session (tagged)."""

        def run(req: Any, responder: Responder) -> int | None:
            if bytes(req.body[: len(SESSION_TAG)]) == SESSION_TAG:
                return self._on_session(kind, bytes(req.body), responder)
            return signed(req, responder)

        return run

    # -- Table 1 transactions (signed, or on a session) --------------------------------------

    def _on_access(self, req: Any, responder: Responder) -> int | None:
        try:
            result = self._bolster.access(AccessRequest.from_bytes(bytes(req.body)))
        except IomtError as exc:
            return self.refuse(responder, "access", exc)
        self.answer(responder, result.to_bytes())
        self._feed.publish_new(result.transaction, result.receipt.block_index)
        return None

    def _on_observe(self, req: Any, responder: Responder) -> int | None:
        try:
            request = ObserveRequest.from_bytes(bytes(req.body))
            sub = self._bolster.observe(request)
        except IomtError as exc:
            return self.refuse(responder, "observe", exc)
        self._feed.updates(sub.requester)
        self.answer(responder, sub.to_bytes())
        self._feed.publish_new(sub.transaction, sub.receipt.block_index)
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
        self._feed.publish_new(grant.transaction, grant.receipt.block_index)
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
