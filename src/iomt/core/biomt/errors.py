"""BIoMT's errors: specific subclasses of the one tree in :mod:`iomt.errors`.

Refusals the bolster *logs* (an authenticated requester denied by the privacy header) carry
the ledger evidence of the denial -- the Access/Observe transaction and its receipt -- so the
node can hand the requester proof that its request was seen and refused, and the patient can
later find it in :meth:`~iomt.core.biomt.bolster.Bolster.history`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iomt.errors import (
    AuthenticationError,
    AuthorizationError,
    LedgerVerificationError,
    LocalProtocolError,
    RemoteProtocolError,
)

if TYPE_CHECKING:
    from iomt.ledger import Receipt, Transaction

__all__ = [
    "AccessDeniedError",
    "AlreadyChainedError",
    "AlreadyMemberError",
    "AttestationMismatchError",
    "AttestationRequiredError",
    "BiomtDecodeError",
    "BiomtStateError",
    "BodyUnreadableError",
    "BolsterFlaggedError",
    "CloudBlockNotFoundError",
    "CommunicationDeniedError",
    "DeniedError",
    "DeviceRemovedError",
    "KeyExpiredError",
    "NotLeaderError",
    "ObserveDeniedError",
    "ProvisioningError",
    "RateLimitedError",
    "ReceiptMismatchError",
    "RemoveDeniedError",
    "ReplayError",
    "RequestAuthenticationError",
    "StaleRequestError",
    "UnknownBolsterError",
    "UnknownDeviceError",
    "UnknownRequesterError",
    "UnknownSessionError",
]


class BiomtDecodeError(RemoteProtocolError):
    """Bytes that claim to be a BIoMT message or transaction body are malformed."""


class BiomtStateError(LocalProtocolError):
    """The operation is not allowed in the object's current state; nothing was changed."""


class NotLeaderError(BiomtStateError):
    """A cluster-head duty was asked of a member that is not the head for the current term."""


class AlreadyMemberError(BiomtStateError):
    """The master bolster's shared chain already holds this bolster's origin (a restarted
    member offers it again). The reason on the wire ends with :attr:`PHRASE`."""

    PHRASE = "is already a member"


class AlreadyChainedError(BiomtStateError):
    """The shared chain already links this device's Origin (one link each). The reason on
    the wire ends with :attr:`PHRASE`."""

    PHRASE = "is already chained"


class CloudBlockNotFoundError(LocalProtocolError):
    """The cloud holds no block with this (ledger, number, hash)."""


# --- authentication ------------------------------------------------------------------


class RequestAuthenticationError(AuthenticationError):
    """A request's MAC, AEAD tag or signature does not verify."""


class ProvisioningError(AuthenticationError):
    """A provisioning request or response does not verify (device, admin or bolster)."""


class UnknownDeviceError(AuthenticationError):
    """No device with this pseudonym was provisioned at this bolster."""


class UnknownRequesterError(AuthenticationError):
    """The requester is not in the bolster's user directory (or its certificate is invalid)."""


class UnknownSessionError(RequestAuthenticationError):
    """A session record names no live session here (expired, or the bolster restarted):
    nothing was logged; run the handshake again and resend."""


class AttestationMismatchError(RequestAuthenticationError):
    """A session attestation does not match what the bolster logged for that session."""


class UnknownBolsterError(AuthenticationError):
    """A checkpoint, batch or origin names a bolster that is not registered."""


class DeviceRemovedError(AuthenticationError):
    """The device was removed: its key is revoked and its requests are refused."""


class KeyExpiredError(AuthenticationError):
    """The shared key (or pairwise key) is past its validity; the device must be re-keyed."""


class StaleRequestError(AuthenticationError):
    """The request's time is outside the accepted clock skew."""


class ReplayError(AuthenticationError):
    """A request counter or nonce was already used.

    ``last_counter`` is the highest Store counter the bolster accepted from the device (so a
    device that lost its counter can resynchronize), or ``None`` for nonce replays.
    """

    def __init__(self, message: str, *, last_counter: int | None = None) -> None:
        super().__init__(message)
        self.last_counter = last_counter


# --- authorization -------------------------------------------------------------------


class DeniedError(AuthorizationError):
    """An authenticated request was refused and the refusal was recorded in the ledger.

    ``transaction`` is the logged Access/Observe transaction (encrypted body) and ``receipt``
    its proof of inclusion; ``None`` only for refusals that are deliberately not logged.
    """

    def __init__(
        self,
        message: str,
        *,
        transaction: Transaction | None = None,
        receipt: Receipt | None = None,
    ) -> None:
        super().__init__(message)
        self.transaction = transaction
        self.receipt = receipt


class AccessDeniedError(DeniedError):
    """The privacy header does not let this requester access this device."""


class ObserveDeniedError(DeniedError):
    """The privacy header does not let this requester observe these devices."""


class CommunicationDeniedError(DeniedError):
    """The bolster refused a device-to-device communication; any pairwise key is invalid."""


class RemoveDeniedError(DeniedError):
    """Only an admin user or the device's owner may remove a device."""


class RateLimitedError(AuthorizationError):
    """The requester exceeded its request rate (flooding protection); not logged.

    ``retry_after`` is the time in nanoseconds until a request would be admitted.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AttestationRequiredError(AuthorizationError):
    """Too many requests on this session rest on the session alone: the user must sign an
    attestation of them before the bolster serves more (not logged)."""


# --- verification --------------------------------------------------------------------


class BolsterFlaggedError(LedgerVerificationError):
    """A cluster head flagged this bolster (forked or rewritten log) and refuses it."""


class BodyUnreadableError(LedgerVerificationError):
    """A transaction body does not decrypt under this bolster's storage key (wrong secret,
    or the stored body was altered)."""


class ReceiptMismatchError(LedgerVerificationError):
    """A receipt is valid but not for the request it answers (another transaction)."""
