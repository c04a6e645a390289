"""What a bolster node sends: its answers (:class:`Answers`, a typed status on refusal:
:func:`iomt.nodes.biomt_wire.status_of`) and, beside them, ``~/ledger`` (every appended
transaction, once: :class:`~iomt.core.biomt.feed.LedgerCursor`) and the Observe updates due
on ``<observer>/observe_updates`` (:class:`LedgerFeed`)."""

from __future__ import annotations

from iomt.core.biomt import Bolster, ObserveUpdate, ReplayError
from iomt.core.biomt.feed import LedgerCursor
from iomt.errors import IomtError
from iomt.ledger import Transaction
from iomt.msg import BiomtObserveUpdate, BiomtTransaction, BolsterService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_ledger import LedgerView
from iomt.runtime import Node, Publisher, QoSProfile, Responder

__all__ = ["LEDGER_QOS", "Answers", "LedgerFeed"]

LEDGER_QOS = QoSProfile(depth=1000)
_R = BolsterService.Response


class LedgerFeed:
    def __init__(self, node: Node, bolster: Bolster, view: LedgerView) -> None:
        self._node = node
        self._view = view
        self._cursor = LedgerCursor(bolster.ledger)
        self._pub = node.create_publisher(BiomtTransaction, "~/ledger", LEDGER_QOS)
        self._update_pubs: dict[str, Publisher[BiomtObserveUpdate]] = {}

    def publish_new(self, known: tuple[Transaction, int] | None = None) -> None:
        """Publish every transaction appended since the last call (``known``: the one just
        appended and its block index, as the core answered)."""
        for tx in self._cursor.appended(known):
            index, first = self._view.position(tx.seq)
            self._pub.publish(bw.transaction_msg(self._node.get_name(), tx, index, first))

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


class Answers:
    """A service's answer, or its refusal -- after which what a refusal appended (a logged
    denial is a transaction too) goes out on ``~/ledger``."""

    def __init__(self, node: Node, feed: LedgerFeed) -> None:
        self._node = node
        self._feed = feed

    def answer(self, responder: Responder, body: bytes = b"") -> None:
        responder.send(BolsterService.Response(status=_R.STATUS_OK, body=body))

    def refuse(self, responder: Responder, op: str, exc: IomtError) -> int:
        status, body = bw.status_of(exc)
        if isinstance(exc, ReplayError) and isinstance(responder, bw.ProvingResponder):
            responder.replay = True  # the original has its answer: no proof for this one
        if status != _R.STATUS_DENIED:
            self._node.get_logger().info("%s refused: %s", op, exc)
        responder.send(BolsterService.Response(status=status, reason=str(exc), body=body))
        self._feed.publish_new()
        return status
