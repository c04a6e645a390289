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
  pays and nothing more;
* :class:`ServiceReplies` proves a server's replies and :func:`reply_check` makes the
  client's acceptance check (:mod:`iomt.core.replies`): every answer of a bolster, admin,
  master or cloud -- refusals included -- is MAC'd under the user's session or the
  device's shared key, or signed by the server; the no-crypto ``base/...`` services are
  not (they are the paper's yardstick: no security at all).
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
from iomt.core.channels import ChannelTable
from iomt.core.replies import (
    ReplyChecker,
    ReplySigner,
    ReplyStatement,
    bolster_request_digest,
    digest,
)
from iomt.crypto.sessions import Session
from iomt.crypto.signing import HmacSha256Key
from iomt.errors import (
    AuthenticationError,
    AuthorizationError,
    IomtError,
    LedgerVerificationError,
    StorageError,
)
from iomt.ledger import Receipt, Transaction
from iomt.msg import BiomtObserveUpdate, BiomtTransaction, BolsterService, CloudService, Time
from iomt.nodes.errors import (
    BolsterDeniedError,
    BolsterRefusedError,
    BolsterUnavailableError,
    MalformedResponseError,
    NoSessionError,
)
from iomt.runtime import Accept, HistoryPolicy, QoSProfile, Responder

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
    "ProvingResponder",
    "ServiceReplies",
    "cloud_status_of",
    "raise_for_cloud_status",
    "raise_for_status",
    "reply_check",
    "reply_statement",
    "status_of",
    "transaction_msg",
    "update_from_msg",
    "update_msg",
]

_S = BolsterService.Response
OK = _S.STATUS_OK


@dataclass(frozen=True, slots=True)
class Evidence(Message):
    """A logged denial: the Access/Observe/Remove transaction and its signed receipt."""

    transaction: Transaction
    receipt: Receipt

    TAG = tag("iomt/nodes/biomt/evidence/v1")
    FIELDS = (("transaction", TRANSACTION), ("receipt", RECEIPT))


def status_of(exc: IomtError) -> tuple[int, bytes]:  # noqa: PLR0911  (one status per kind of core refusal, as the service type defines them)
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


# --- reply proofs (iomt.core.replies) -------------------------------------------------


def reply_statement(
    operation: str, server: str, req: Any, resp: Any, *, request_digest: bytes | None = None
) -> ReplyStatement:
    """What the proof of a ``BolsterService`` / ``CloudService`` reply covers: the operation
    (``bolster/store``, ``cloud/get`` ...), the server's name, the request's requester and
    body (``request_digest``, when already made), the status, reason and body of the
    reply."""
    if request_digest is None:
        request_digest = bolster_request_digest(operation, str(req.requester), bytes(req.body))
    return ReplyStatement(
        operation,
        server,
        request_digest,
        int(resp.status),
        str(resp.reason),
        digest("reply", bytes(resp.body)),
    )


class ServiceReplies:
    """A BIoMT server's side: ``prove`` fills a reply's ``proof``.

    The key, best first: a device's shared key (``key``: its reply subkey), the user's
    session the request came on (``session``), else the server's signature -- within the
    signature budget unless the request authenticated. A replay's refusal goes unproven:
    the original has its answer.
    """

    def __init__(self, signer: ReplySigner, prefix: str) -> None:
        self.signer = signer
        self.prefix = prefix

    def prove(
        self,
        op: str,
        req: Any,
        resp: Any,
        *,
        key: tuple[bytes, HmacSha256Key] | None = None,
        channels: ChannelTable | None = None,
        session: Session | None = None,
        authenticated: bool = True,
        replay: bool = False,
    ) -> Any:
        if replay:
            return resp
        st = reply_statement(f"{self.prefix}/{op}", self.signer.name, req, resp)
        if key is not None:
            resp.proof = self.signer.mac(st, key[1], key[0])
        elif session is not None and channels is not None:
            resp.proof = self.signer.session(st, channels, session)
        else:
            resp.proof = self.signer.sign(st, budgeted=not authenticated)
        return resp


class ProvingResponder(Responder):
    """Wraps a deferred service's responder: the reply is proven as it is sent. A handler
    sets what it learned on the way -- the device's key, the session, whether the request
    authenticated, whether it was a replay -- before it answers."""

    def __init__(
        self, inner: Responder, replies: ServiceReplies, op: str, req: Any, *, open_service: bool
    ) -> None:
        self._inner = inner
        self._replies = replies
        self._op = op
        self._req = req
        self._open = open_service
        self.key: tuple[bytes, HmacSha256Key] | None = None
        self.channels: ChannelTable | None = None
        self.session: Session | None = None
        self.replay = False

    @property
    def source(self) -> object | None:
        return self._inner.source

    def send(self, response: Any) -> None:
        # OK and DENIED answer a request that authenticated (a denial is logged evidence);
        # an open service's OK does not
        ok = int(response.status) in (_S.STATUS_OK, _S.STATUS_DENIED)
        self._replies.prove(
            self._op,
            self._req,
            response,
            key=self.key,
            channels=self.channels,
            session=self.session,
            authenticated=ok and not self._open,
            replay=self.replay,
        )
        self._inner.send(response)


def reply_check(
    checker: ReplyChecker,
    operation: str,
    server: str,
    req: Any,
    *,
    channels: ChannelTable | None = None,
    key: Any = None,
    mac_key: Any = None,
) -> Accept:
    """A call's acceptance check for a ``BolsterService`` / ``CloudService`` request: the
    reply must carry ``server``'s proof for this request (``operation`` as the server
    names it, e.g. ``bolster/store``)."""

    request_digest = bolster_request_digest(operation, str(req.requester), bytes(req.body))

    def accept(resp: Any) -> bool:
        return checker.accepts(
            bytes(resp.proof),
            lambda: reply_statement(operation, server, req, resp, request_digest=request_digest),
            server=server,
            channels=channels,
            key=key,
            mac_key=mac_key,
        )

    return accept
