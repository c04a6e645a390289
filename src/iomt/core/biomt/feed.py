"""What a bolster's recorders are owed: every transaction appended to its ledger, once.

A node publishes the transactions a request appended after answering it; a denial, an
Origin's policy block or an event can append too, so it asks :class:`LedgerCursor` for
everything appended since it last asked. A restarted bolster starts at the ledger's size:
what was appended before is in the file, and was published by its predecessor.
"""

from __future__ import annotations

from iomt.ledger import Ledger, Transaction

__all__ = ["LedgerCursor"]


class LedgerCursor:
    """The transactions appended to ``ledger`` since the last :meth:`appended`."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._next = ledger.size

    @property
    def position(self) -> int:
        """The sequence number of the next transaction owed."""
        return self._next

    def appended(self, known: tuple[Transaction, int] | None = None) -> list[Transaction]:
        """Everything appended since the last call, in order. ``known``: the transaction
        just appended and its block index, as the core returned them; when it is the only
        one owed it is not read back from the ledger."""
        size = self._ledger.size
        if self._next >= size:
            return []
        if known is not None and known[0].seq == self._next == size - 1 and known[1] >= 0:
            txs = [known[0]]
        else:
            txs = list(self._ledger.transactions(start=self._next))
        self._next = size
        return txs
