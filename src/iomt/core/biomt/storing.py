"""A BIoMT device's Stores at its bolster, sans-IO: what to store, and what an answer means.

Every reading the device samples becomes a :class:`~iomt.core.biomt.messages.Measurement`
(:func:`measurement_of`), sealed under the device's shared key with the next counter
(:meth:`BiomtDevice.store_request`) -- unless the device is not active (not provisioned
yet, or removed) or has as many Stores unanswered as it may
(:class:`~iomt.core.uploads.StoreBacklog`: then the reading is skipped). The node sends
the Store, and the same measurement to the bolster's no-crypto base store; the two go in
alternating order, so both delays are measured on the same path in the same run.

An answer is one of:

* :class:`StoreAcknowledged` -- the receipt proves the bolster logged exactly our Store in
  a tree head it signed; Stores that got no answer earlier go again, one per acknowledged
  Store (the backlog's rule);
* :class:`StoreRefused` -- final: nothing is kept (a bad receipt counts as a refusal);
* :class:`StoreRemoved` -- the bolster removed the device: it forgets its key and stops
  storing.

No answer at all (the bolster down or restarting) keeps the measurement for a retry
(:meth:`DeviceStores.on_lost`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iomt.core.uploads import RetryStore, StoreBacklog
from iomt.core.vitals import Reading, VitalKind
from iomt.errors import IomtError

from .device import BiomtDevice, DeviceState
from .errors import DeviceRemovedError
from .messages import Measurement, StoreReceipt, StoreRequest

__all__ = [
    "DeviceStores",
    "StoreAcknowledged",
    "StoreAnswer",
    "StoreOrder",
    "StoreRefused",
    "StoreRemoved",
    "ack_entry",
    "measurement_of",
]


def measurement_of(reading: Reading, time_ns: int) -> Measurement:
    """A sampled vital sign as the bolster stores it (kind and values from the facility
    vocabulary the cloud anonymization keeps)."""
    if reading.kind is VitalKind.HEART_RATE:
        return Measurement("heart_rate", time_ns, (("bpm", reading.heart_rate_bpm),))
    return Measurement(
        "blood_pressure",
        time_ns,
        (("systolic", reading.systolic_mmhg), ("diastolic", reading.diastolic_mmhg)),
    )


@dataclass(frozen=True, slots=True)
class StoreOrder:
    """Store ``measurement``, at the bolster and at its base store: the Store first if
    ``biomt_first``, else the base one."""

    measurement: Measurement
    biomt_first: bool


@dataclass(frozen=True, slots=True)
class StoreAcknowledged:
    """Our Store is on the bolster's ledger (``receipt`` checked); ``retries``: Stores
    kept from earlier that go again now."""

    receipt: StoreReceipt
    retries: list[RetryStore[Measurement]]


@dataclass(frozen=True, slots=True)
class StoreRefused:
    """The bolster refused the Store, or its receipt did not prove it: final."""

    error: IomtError


@dataclass(frozen=True, slots=True)
class StoreRemoved:
    """The bolster answered that the device was removed; ``now``: this answer made the
    device forget its key (later ones find it forgotten already)."""

    now: bool


StoreAnswer = StoreAcknowledged | StoreRefused | StoreRemoved


def ack_entry(receipt: StoreReceipt) -> dict[str, Any]:
    """An acknowledged Store as the device's ack log keeps it: what the bolster's ledger
    must hold (pseudonym, counter, ledger sequence number, the Store's AEAD tag)."""
    tx = receipt.transaction
    return {
        "device": receipt.device,
        "counter": receipt.counter,
        "seq": tx.seq,
        "tag": tx.signature.hex(),
    }


class DeviceStores:
    """``device``'s Stores: at most ``max_in_flight`` unanswered, up to ``capacity`` kept
    for a retry (:class:`~iomt.core.uploads.StoreBacklog`)."""

    def __init__(self, device: BiomtDevice, *, max_in_flight: int = 4, capacity: int = 256):
        self.device = device
        self.backlog: StoreBacklog[Measurement] = StoreBacklog(
            max_in_flight=max_in_flight, capacity=capacity
        )
        self.counts = {"acknowledged": 0, "refused": 0}
        self._biomt_first = False

    @property
    def active(self) -> bool:
        return self.device.state is DeviceState.ACTIVE

    def on_reading(self, reading: Reading, time_ns: int) -> StoreOrder | None:
        """A sampled reading: what to store, or None (skipped)."""
        if not self.active or not self.backlog.may_send():
            return None
        self._biomt_first = not self._biomt_first
        return StoreOrder(measurement_of(reading, time_ns), self._biomt_first)

    def request(self, measurement: Measurement) -> StoreRequest:
        """The Store to send (counted in flight); raises IomtError if the device cannot
        store (its key expired, or it was removed)."""
        request = self.device.store_request(measurement)
        self.backlog.sent()
        return request

    def on_answer(self, body: bytes) -> StoreAnswer:
        """The bolster's OK answer (a receipt)."""
        try:
            receipt = StoreReceipt.from_bytes(body)
            self.device.check_store_receipt(receipt)
        except IomtError as exc:
            return self.on_refused(exc)
        self.counts["acknowledged"] += 1
        return StoreAcknowledged(receipt, self.backlog.on_stored(active=self.active))

    def on_refused(self, error: IomtError) -> StoreRefused | StoreRemoved:
        """The bolster's refusal (its status as a typed error)."""
        self.backlog.on_refused()
        self.counts["refused"] += 1
        if not isinstance(error, DeviceRemovedError):
            return StoreRefused(error)
        if not self.active:
            return StoreRemoved(now=False)
        self.device.removed()
        return StoreRemoved(now=True)

    def on_lost(self, measurement: Measurement) -> None:
        """No answer: kept for a retry."""
        self.backlog.on_lost(measurement)
