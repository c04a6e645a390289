"""Removal: the **Remove** transaction.

Only an admin or the device's owner may remove it. A granted Remove is logged, then the
device's certificate is revoked and its subscriptions and pairwise keys end (in memory:
:meth:`~iomt.core.biomt.state.BolsterState.mark_removed`), a block drops it from the privacy
header and its local records are deleted (durably: :meth:`Removal.complete`, which a
restart repeats in case a crash interrupted it). Later requests of the device raise
:class:`~iomt.core.biomt.errors.DeviceRemovedError`. A denial is logged and raises
:class:`~iomt.core.biomt.errors.RemoveDeniedError` with it.
"""

from __future__ import annotations

from array import array

from iomt.ledger import TxType

from .bodies import RemoveBody
from .checks import RequestChecks
from .errors import DeviceRemovedError, RemoveDeniedError
from .identity import ADMIN_ROLE
from .messages import Outcome, RemoveRequest, RemoveResult
from .state import BolsterState, DeviceRecord

__all__ = ["Removal"]


class Removal:
    """Removes devices: :meth:`remove` answers a signed request."""

    def __init__(self, state: BolsterState, checks: RequestChecks) -> None:
        self._state = state
        self._checks = checks

    def remove(self, request: RemoveRequest) -> RemoveResult:
        state = self._state
        now = state.clock()
        user = self._checks.authenticate(request, now)
        dev = state.device(request.device)
        if dev.removed:
            raise DeviceRemovedError(f"device {request.device!r} was already removed")
        generator = state.requester_pseudonym(user.name)
        if user.role != ADMIN_ROLE and user.name != dev.owner:
            body = RemoveBody(
                dev.pseudonym,
                user.name,
                user.role,
                request.reason,
                Outcome.DENIED,
                "",
                b"",
                request.signed_bytes(),
            )
            tx, receipt = state.append(TxType.REMOVE, generator, body, signature=request.signature)
            raise RemoveDeniedError(
                f"{user.name!r} may not remove {dev.pseudonym!r}: only an admin or its owner",
                transaction=tx,
                receipt=receipt,
            )
        body = RemoveBody(
            dev.pseudonym,
            user.name,
            user.role,
            request.reason,
            Outcome.GRANTED,
            dev.certificate_serial,
            dev.key.key_id,
            request.signed_bytes(),
        )
        tx, receipt = state.append(TxType.REMOVE, generator, body, signature=request.signature)
        state.mark_removed(dev, now)
        deleted = self.complete(dev)
        return RemoveResult(
            state.bolster_id,
            dev.pseudonym,
            deleted,
            state.ledger.privacy_header.version,
            tx,
            receipt,
        )

    def complete(self, dev: DeviceRecord) -> int:
        """Durable effects of a Remove: the policy block and the records (idempotent).
        Returns how many local records were deleted."""
        state = self._state
        policy = state.ledger.privacy_header
        if policy.is_authorized(dev.pseudonym) or any(
            dev.pseudonym in r.devices for r in policy.rules
        ):
            state.seal_block(policy.without_device(dev.pseudonym))
        deleted = state.local.delete_device(dev.pseudonym)
        for key in [k for k in state.recent if k[0] == dev.pseudonym]:
            del state.recent[key]
        dev.times, dev.seqs = array("q"), array("q")
        return deleted
