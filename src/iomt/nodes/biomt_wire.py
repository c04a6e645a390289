"""The BIoMT node boundary: service statuses, wire conversions and the no-crypto base codec.

Every BIoMT service carries the canonical bytes of an :mod:`iomt.core.biomt` message in one
``uint8[]`` field (``BolsterService`` / ``CloudService``); this module is where the nodes
turn core outcomes into statuses and back:

* :func:`status_of` maps a core exception onto a ``BolsterService`` status (a logged denial,
  an unauthenticated refusal, a removed device ...), and :func:`raise_for_status` turns a
  non-OK response back into a typed :class:`iomt.errors.IomtError` on the client side;
* :class:`Evidence` is what a logged denial returns: the transaction and its receipt;
* :func:`transaction_msg` is a ledger transaction as published on a bolster's ``~/ledger``
  topic (body still encrypted, generator a pseudonym);
* :func:`update_msg` / :func:`update_from_msg` convert Observe updates;
* :class:`BaseAccess` / :class:`BaseObserve` are the requests of the paper's no-crypto base
  (Fig. 3), encoded like everything else so the base pays the same decoding the real path
  pays and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iomt.core.biomt import (
    BiomtDecodeError,
    CloudBlockNotFoundError,
    DeniedError,
    DeviceRemovedError,
    KeyExpiredError,
    ObserveUpdate,
    RateLimitedError,
    UnknownDeviceError,
    UnknownSessionError,
    UpdateReason,
)
from iomt.core.biomt.codec import U32, U64, Message, Seq, tag
from iomt.core.biomt.messages import ID, RECEIPT, TRANSACTION
from iomt.errors import (
    AuthenticationError,
    AuthorizationError,
    IomtError,
    LedgerVerificationError,
    RemoteProtocolError,
    StorageError,
    TransportError,
)
from iomt.ledger import Receipt, Transaction
from iomt.msg import BiomtObserveUpdate, BiomtTransaction, BolsterService, CloudService, Time
from iomt.runtime import HistoryPolicy, QoSProfile

__all__ = [
    "OK",
    "UPDATES_QOS",
    "BaseAccess",
    "BaseObserve",
    "BolsterDeniedError",
    "BolsterRefusedError",
    "BolsterUnavailableError",
    "DeviceList",
    "Evidence",
    "MalformedResponseError",
    "NoSessionError",
    "cloud_status_of",
    "raise_for_cloud_status",
    "raise_for_status",
    "status_of",
    "transaction_msg",
    "update_from_msg",
    "update_msg",
]

_S = BolsterService.Response
OK = _S.STATUS_OK


class BolsterRefusedError(AuthenticationError):
    """The bolster (or cloud) refused the request unauthenticated; nothing was logged."""


class BolsterDeniedError(AuthorizationError):
    """The privacy header denied the request; the denial is in the ledger (``evidence``)."""

    def __init__(self, message: str, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence


class NoSessionError(BolsterRefusedError):
    """The bolster has no live session for the record (expired, or it restarted): run the
    handshake again and resend; nothing was logged."""


class BolsterUnavailableError(TransportError):
    """The bolster could not serve the request now (unknown device, storage failure)."""


class MalformedResponseError(RemoteProtocolError):
    """A peer's answer, or our request as the peer saw it, did not decode."""


@dataclass(frozen=True, slots=True)
class Evidence(Message):
    """A logged denial: the Access/Observe/Remove transaction and its signed receipt."""

    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/nodes/biomt/evidence/v1")
    FIELDS = (("transaction", TRANSACTION), ("receipt", RECEIPT))


def status_of(exc: IomtError) -> tuple[int, bytes]:
    """The ``BolsterService`` status for a core exception, and the body to send with it."""
    if isinstance(exc, DeniedError):
        body = b""
        if exc.transaction is not None and exc.receipt is not None:
            body = Evidence(exc.transaction, exc.receipt).to_bytes()
        return _S.STATUS_DENIED, body
    if isinstance(exc, DeviceRemovedError):
        return _S.STATUS_REMOVED, b""
    if isinstance(exc, UnknownSessionError):
        return _S.STATUS_NO_SESSION, b""
    if isinstance(exc, BiomtDecodeError):
        return _S.STATUS_MALFORMED, b""
    if isinstance(exc, UnknownDeviceError | KeyExpiredError | StorageError):
        return _S.STATUS_UNAVAILABLE, b""
    if isinstance(exc, AuthenticationError | RateLimitedError | AuthorizationError):
        return _S.STATUS_REFUSED, b""
    if isinstance(exc, LedgerVerificationError):
        return _S.STATUS_UNAVAILABLE, b""
    return _S.STATUS_REFUSED, b""


def raise_for_status(service: str, response: Any) -> bytes:
    """The response body if the status is OK; otherwise the matching typed error."""
    status = int(response.status)
    reason = f"{service}: {response.reason}"
    if status == OK:
        return bytes(response.body)
    if status == _S.STATUS_DENIED:
        evidence = None
        if response.body:
            try:
                evidence = Evidence.from_bytes(bytes(response.body))
            except BiomtDecodeError:
                evidence = None
        raise BolsterDeniedError(reason, evidence)
    if status == _S.STATUS_REMOVED:
        raise DeviceRemovedError(reason)
    if status == _S.STATUS_UNAVAILABLE:
        raise BolsterUnavailableError(reason)
    if status == _S.STATUS_MALFORMED:
        raise MalformedResponseError(reason)
    if status == _S.STATUS_NO_SESSION:
        raise NoSessionError(reason)
    raise BolsterRefusedError(reason)


def raise_for_cloud_status(service: str, response: Any) -> bytes:
    """As :func:`raise_for_status`, for ``CloudService`` responses."""
    c = CloudService.Response
    status = int(response.status)
    reason = f"{service}: {response.reason}"
    if status == c.STATUS_OK:
        return bytes(response.body)
    if status == c.STATUS_NOT_FOUND:
        raise CloudBlockNotFoundError(reason)
    if status == c.STATUS_MALFORMED:
        raise MalformedResponseError(reason)
    raise BolsterRefusedError(reason)


def cloud_status_of(exc: IomtError) -> int:
    """The ``CloudService`` status for a core exception."""
    c = CloudService.Response
    if isinstance(exc, CloudBlockNotFoundError):
        return c.STATUS_NOT_FOUND
    if isinstance(exc, BiomtDecodeError):
        return c.STATUS_MALFORMED
    return c.STATUS_REFUSED


def time_msg(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def transaction_msg(
    bolster_id: str, tx: Transaction, block_index: int, first_seq: int
) -> BiomtTransaction:
    """A ledger transaction as the bolster publishes it on ``~/ledger``: type, pseudonymous
    generator, time, the block it is (or will be) sealed in and its index there, the
    encrypted body and the generator's signature or tag. Nothing here is in clear that is
    not in clear in the ledger itself."""
    return BiomtTransaction(
        type=int(tx.tx_type),
        bolster_id=bolster_id,
        sender_id=tx.generator_id,
        stamp=time_msg(tx.time),
        block_index=block_index,
        tx_index=tx.seq - first_seq,
        body=tx.body,
        signature=tx.signature,
    )


def update_msg(update: ObserveUpdate) -> BiomtObserveUpdate:
    return BiomtObserveUpdate(
        subscription_id=update.subscription_id,
        observer=update.observer,
        device=update.device,
        seq=update.seq,
        number=update.number,
        reason=int(update.reason),
        dropped=update.dropped,
        nonce=update.nonce,
        ciphertext=update.ciphertext,
    )


def update_from_msg(msg: BiomtObserveUpdate) -> ObserveUpdate:
    """Raises :class:`BiomtDecodeError` for fields the core would never have produced."""
    try:
        return ObserveUpdate(
            bytes(msg.subscription_id),
            str(msg.observer),
            str(msg.device),
            int(msg.seq),
            int(msg.number),
            UpdateReason(int(msg.reason)),
            int(msg.dropped),
            bytes(msg.nonce),
            bytes(msg.ciphertext),
        )
    except ValueError as exc:
        raise BiomtDecodeError(f"observe update: {exc}") from None


@dataclass(frozen=True, slots=True)
class DeviceList(Message):
    """``~/devices``: the device pseudonyms the privacy header authorizes (public: the
    header is in every block)."""

    devices: tuple[str, ...]

    TAG = tag("iomt/nodes/biomt/device-list/v1")
    FIELDS = (("devices", Seq(ID, max_items=1 << 16)),)


#: Observe updates: reliable and kept until taken (an update is never overwritten).
UPDATES_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL)


# --- the no-crypto base (Fig. 3) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaseAccess(Message):
    """Base Access: which device, which time range, how many records (no signature)."""

    device: str
    since: int
    until: int
    limit: int

    TAG = tag("iomt/nodes/biomt/base-access/v1")
    FIELDS = (("device", ID), ("since", U64), ("until", U64), ("limit", U32))


@dataclass(frozen=True, slots=True)
class BaseObserve(Message):
    """Base Observe: which devices, for how long, how often (no signature, no key)."""

    devices: tuple[str, ...]
    duration: int
    interval: int

    TAG = tag("iomt/nodes/biomt/base-observe/v1")
    FIELDS = (("devices", Seq(ID, max_items=256)), ("duration", U64), ("interval", U64))
