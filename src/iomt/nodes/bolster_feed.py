"""What a bolster node publishes beside its answers: ``~/ledger`` (every appended
transaction, once: :class:`~iomt.core.biomt.feed.LedgerCursor`) and the Observe updates
due, on ``<observer>/observe_updates``."""

from __future__ import annotations

from iomt.core.biomt import Bolster, ObserveUpdate
from iomt.core.biomt.feed import LedgerCursor
from iomt.ledger import Transaction
from iomt.msg import BiomtObserveUpdate, BiomtTransaction
from iomt.nodes import biomt_wire as bw
from iomt.nodes.biomt_ledger import LedgerView
from iomt.runtime import Node, Publisher, QoSProfile

__all__ = ["LEDGER_QOS", "LedgerFeed"]

LEDGER_QOS = QoSProfile(depth=1000)


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
