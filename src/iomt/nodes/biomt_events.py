"""The sharing framework's events, recorded on the bolster's ledger (BIoMT "user control").

BIoMT: "the proposed scheme stores all transactions in the blockchain ledger. Therefore,
users know what exactly is collected, who collects it and for what purpose." In
``--mode biomt`` the Bilal & Hassan sharing framework runs beside the bolsters, and what it
hands out is recorded on the ledger of the bolster that provisioned the device:

=============  ==============================  ==========================================
event          reported by                     meaning
=============  ==============================  ==========================================
``token``      the patient's wallet            the wallet issued a token for the device
                                               to a provider (Alg. 1.2)
``share``      the device itself               the device sealed a reading for a provider
                                               and answered its data request (Alg. 1.4)
``conversion`` the device itself               a capable neighbour accepted the device's
                                               conversion order and delivered the reading
                                               to the provider (Alg. 3)
=============  ==============================  ==========================================

Each event is an **Access** transaction at the bolster (the provider got something about
the device): generator = the provider's ledger pseudonym, body = an
:class:`~iomt.core.biomt.bodies.AccessBody` naming provider, role, device pseudonym and a
detail line, with the reporter's signed event kept whole in the body (``request``) and the
signature in the transaction's clear ``signature`` field -- so an auditor holding the
storage key re-verifies who reported it. The patient reads them back with ``history``
like any other Access, sealed to them.

Reporting is off the sharing path: :class:`EventReporter` only queues an event where the
framework acts; a timer signs the queued events (Ed25519, one signature each, so each
ledger entry is verifiable on its own) and sends them in one ``~/record`` call.

Who may report what (checked by :class:`SharingRecorder` at the bolster):

* a registered user (the patient's wallet identity) about devices it *owns* (the owner
  named at provisioning), or an admin about any device;
* a device identity (its keystore certificate) about *itself* only, and only ``share`` and
  ``conversion``.

Events about devices the bolster did not provision are refused. Reports are signed over
the bolster id, a fresh nonce and the time: a replayed or stale event is refused.
"""

from __future__ import annotations

import collections
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from iomt.core.biomt import ADMIN_ROLE, UserDirectory
from iomt.core.biomt.bodies import AccessBody
from iomt.core.biomt.codec import U32, U64, Message, Nested, Seq, Text, tag
from iomt.core.biomt.limits import NonceCache
from iomt.core.biomt.messages import ID, NONCE, SIGNATURE, Outcome
from iomt.core.replies import ReplyChecker
from iomt.crypto.keystore import Keystore
from iomt.crypto.signing import Signer, Verifier
from iomt.errors import AuthenticationError, IomtError
from iomt.msg import BolsterService
from iomt.nodes.biomt_ledger import LedgerView
from iomt.nodes.biomt_wire import raise_for_status, reply_check
from iomt.nodes.calls import Calls
from iomt.nodes.errors import EventRefusedError
from iomt.runtime import Node

__all__ = [
    "EVENT_KINDS",
    "EventReporter",
    "RecordAck",
    "SharingEvent",
    "SharingRecorder",
    "SharingReport",
]

EVENT_KINDS = ("token", "share", "conversion")
_DEVICE_KINDS = frozenset({"share", "conversion"})
_MAX_DETAIL = 200
_SKEW = 120 * 1_000_000_000  # events wait in a queue, and across a bolster restart


@dataclass(frozen=True, slots=True)
class SharingEvent(Message):
    """One thing the sharing framework handed to a provider, signed by its reporter."""

    bolster_id: str
    reporter: str
    kind: str
    actor: str
    device_uri: str
    technique: str
    detail: str
    nonce: bytes
    time: int
    signature: bytes = b""

    TAG = tag("iomt/nodes/biomt/sharing-event/v1")
    FIELDS = (
        ("bolster_id", ID),
        ("reporter", ID),
        ("kind", Text(max_size=16)),
        ("actor", ID),
        ("device_uri", Text(max_size=512)),
        ("technique", Text(max_size=32)),
        ("detail", Text(max_size=_MAX_DETAIL)),
        ("nonce", NONCE),
        ("time", U64),
        ("signature", SIGNATURE),
    )
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class SharingReport(Message):
    events: tuple[SharingEvent, ...]

    TAG = tag("iomt/nodes/biomt/sharing-report/v1")
    FIELDS = (("events", Seq(Nested(SharingEvent), max_items=256)),)


@dataclass(frozen=True, slots=True)
class RecordAck(Message):
    """How many events were logged; why the others were refused."""

    recorded: int
    refused: tuple[str, ...]

    TAG = tag("iomt/nodes/biomt/record-ack/v1")
    FIELDS = (("recorded", U32), ("refused", Seq(Text(max_size=512), max_items=256)))


# --- reporting side (wallets, devices) ----------------------------------------------------


@dataclass
class _Queued:
    kind: str
    actor: str
    device_uri: str
    technique: str
    detail: str
    time: int


class EventReporter:
    """Queues events where the framework acts; a timer signs and sends them in batches."""

    def __init__(  # noqa: PLR0913  (keyword-only: the node's collaborators, named at the one call)
        self,
        node: Node,
        *,
        reporter: str,
        signer: Signer,
        bolster_id: str,
        service: str,
        calls: Calls | None = None,
        period_s: float = 0.5,
        max_batch: int = 64,
        max_queue: int = 4096,
        timeout_s: float = 3.0,
        paused: bool = False,
        checker: ReplyChecker | None = None,
    ) -> None:
        self._node = node
        #: checks the bolster's answers (its signature: iomt.core.replies); None takes any
        self._checker = checker
        self.paused = paused
        self._reporter = reporter
        self._signer = signer
        self._bolster_id = bolster_id
        self._client = node.create_client(BolsterService, service)
        self._calls = calls if calls is not None else Calls(node)
        self._queue: collections.deque[_Queued] = collections.deque()
        self._in_flight: list[_Queued] = []
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self.counts = {"queued": 0, "recorded": 0, "refused": 0, "dropped": 0, "failed": 0}
        node.create_timer(period_s, self.flush)

    def add(self, kind: str, *, actor: str, device_uri: str, technique: str, detail: str) -> None:
        """Queue one event (cheap: nothing is signed or sent on the caller's path)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind must be one of {EVENT_KINDS}")
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.counts["dropped"] += 1
        self._queue.append(
            _Queued(kind, actor, device_uri, technique, detail[:_MAX_DETAIL], time.time_ns())
        )
        self.counts["queued"] += 1

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._in_flight)

    def flush(self) -> None:
        if self.paused or self._in_flight or not self._queue:
            return
        batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
        events = tuple(self._sign(q) for q in batch)
        self._in_flight = batch
        request = BolsterService.Request(
            requester=self._reporter, body=SharingReport(events).to_bytes()
        )
        self._calls.call(
            self._client,
            request,
            timeout_s=self._timeout_s,
            on_done=self._done,
            on_error=self._failed,
            accept=(
                reply_check(self._checker, "bolster/record", self._bolster_id, request)
                if self._checker is not None
                else None
            ),
        )

    def _sign(self, q: _Queued) -> SharingEvent:
        event = SharingEvent(
            self._bolster_id,
            self._reporter,
            q.kind,
            q.actor,
            q.device_uri,
            q.technique,
            q.detail,
            os.urandom(16),
            q.time,
        )
        return replace(event, signature=self._signer.sign(event.signed_bytes()))

    def _done(self, response: Any) -> None:
        batch, self._in_flight = self._in_flight, []
        try:
            ack = RecordAck.from_bytes(raise_for_status("record", response))
        except IomtError as exc:
            # the bolster answered and refused the whole report: sending it again would not help
            self.counts["refused"] += len(batch)
            self._node.get_logger().warning("%d sharing events refused: %s", len(batch), exc)
            return
        self.counts["recorded"] += ack.recorded
        self.counts["refused"] += len(ack.refused)
        for reason in ack.refused[:3]:
            self._node.get_logger().warning("sharing event refused: %s", reason)

    def _failed(self, exc: Exception) -> None:
        batch, self._in_flight = self._in_flight, []
        # Put them back (signed anew next time, with fresh nonces): the bolster may be
        # restarting. Beyond the queue bound the oldest are dropped and counted.
        self._queue.extendleft(reversed(batch))
        while len(self._queue) > self._max_queue:
            self._queue.popleft()
            self.counts["dropped"] += 1
        self.counts["failed"] += 1
        self._node.get_logger().debug("recording %d events failed: %s", len(batch), exc)


# --- recording side (the bolster) ---------------------------------------------------------


class SharingRecorder:
    """Authenticates reported events and logs each as an Access transaction."""

    def __init__(
        self,
        *,
        bolster_id: str,
        view: LedgerView,
        users: UserDirectory,
        keystore: Keystore,
        clock: Any = time.time_ns,
    ) -> None:
        self._bolster_id = bolster_id
        self._view = view
        self._users = users
        self._keystore = keystore
        self._clock = clock
        self._nonces = NonceCache()
        self._devices: dict[str, tuple[Verifier, str]] = {}

    def record(self, report: SharingReport) -> RecordAck:
        recorded = 0
        refused: list[str] = []
        for event in report.events:
            try:
                self._record(event)
            except IomtError as exc:
                refused.append(f"{event.kind} {event.device_uri} by {event.reporter}: {exc}")
            else:
                recorded += 1
        return RecordAck(recorded, tuple(refused))

    def _device_identity(self, name: str) -> tuple[Verifier, str]:
        known = self._devices.get(name)
        if known is None:
            # the keystore validates chain, validity and revocation of the device certificate
            known = (self._keystore.verifier(name), self._keystore.info(name).uri)
            self._devices[name] = known
        return known

    def _record(self, event: SharingEvent) -> None:
        now = self._clock()
        if event.bolster_id != self._bolster_id:
            raise EventRefusedError(f"event is for bolster {event.bolster_id!r}")
        if event.kind not in EVENT_KINDS:
            raise EventRefusedError(f"unknown event kind {event.kind!r}")
        if abs(event.time - now) > _SKEW:
            raise EventRefusedError("event time outside the accepted skew")
        entry = self._view.device(event.device_uri)
        if event.reporter in self._users:
            user = self._users.authenticate(
                event.reporter, event.signed_bytes(), event.signature, now=now
            )
            if entry is None:
                raise EventRefusedError("no such device provisioned here")
            if user.role != ADMIN_ROLE and user.name != entry.owner:
                raise EventRefusedError(f"{user.name!r} does not own {event.device_uri}")
        else:
            try:
                verifier, uri = self._device_identity(event.reporter)
                verifier.verify(event.signed_bytes(), event.signature)
            except IomtError as exc:
                raise AuthenticationError(f"reporter {event.reporter!r}: {exc}") from None
            if uri != event.device_uri or event.kind not in _DEVICE_KINDS:
                raise EventRefusedError("a device reports only its own shares and conversions")
            if entry is None:
                raise EventRefusedError("no such device provisioned here")
        self._nonces.add(
            b"e" + event.reporter.encode() + b"\x00" + event.nonce,
            until=event.time + _SKEW,
            now=now,
        )
        role = self._users.get(event.actor).role if event.actor in self._users else "provider"
        detail = (
            f"{event.kind} via the sharing framework ({event.technique}); "
            f"reported by {event.reporter}"
        )
        if event.detail:
            detail += f": {event.detail}"
        body = AccessBody(
            event.actor,
            role,
            entry.pseudonym,
            event.time,
            event.time,
            Outcome.GRANTED,
            0 if event.kind == "token" else 1,
            0,
            detail,
            event.to_bytes(),
        )
        self._view.append_access(event.actor, body, signature=event.signature)
