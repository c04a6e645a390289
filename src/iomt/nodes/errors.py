"""The errors the nodes raise on top of the core's (``iomt.errors`` is the tree's root).

Each is what a caller of a node-level operation can act on: a refused or denied BIoMT
request, an unavailable bolster, an answer that did not decode, an admin's or an event
reporter's refusal.
"""

from __future__ import annotations

from typing import Protocol

from iomt.errors import AuthenticationError, AuthorizationError, RemoteProtocolError, TransportError
from iomt.ledger import Receipt, Transaction

__all__ = [
    "BolsterDeniedError",
    "BolsterRefusedError",
    "BolsterUnavailableError",
    "LoggedDenial",
    "MalformedResponseError",
    "NoSessionError",
    "NotInInventoryError",
]


class LoggedDenial(Protocol):
    """A denial's evidence: the Access/Observe/Remove transaction the bolster logged and its
    signed receipt (``iomt.nodes.biomt_wire.Evidence`` on the wire)."""

    @property
    def transaction(self) -> Transaction: ...

    @property
    def receipt(self) -> Receipt: ...


class BolsterRefusedError(AuthenticationError):
    """The bolster (or cloud) refused the request unauthenticated; nothing was logged."""


class BolsterDeniedError(AuthorizationError):
    """The privacy header denied the request; the denial is in the ledger (``evidence``)."""

    def __init__(self, message: str, evidence: LoggedDenial | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence


class NoSessionError(BolsterRefusedError):
    """The bolster has no live session for the record (expired, or it restarted): run the
    handshake again and resend; nothing was logged."""


class BolsterUnavailableError(TransportError):
    """The bolster could not serve the request now (unknown device, storage failure)."""


class MalformedResponseError(RemoteProtocolError):
    """A peer's answer, or our request as the peer saw it, did not decode."""


class NotInInventoryError(AuthorizationError):
    """The admin has no such device, for that owner, at that bolster in its inventory."""
