"""A BIoMT device's Stores without DDS: what a sampled reading becomes, which readings are
skipped, and what each answer of the bolster means (acknowledged with the kept Stores
going again, refused for good, removed)."""

from __future__ import annotations

import pytest
from biomt_world import World

from iomt.core.biomt import DeviceState, Measurement
from iomt.core.biomt.errors import BiomtStateError, DeviceRemovedError, ReceiptMismatchError
from iomt.core.biomt.storing import (
    DeviceStores,
    StoreAcknowledged,
    StoreRefused,
    StoreRemoved,
    ack_entry,
    measurement_of,
)
from iomt.core.vitals import Reading, VitalKind
from iomt.errors import TransportError

HR = Reading(VitalKind.HEART_RATE, 1, heart_rate_bpm=71.5)


def _answer(world: World, stores: DeviceStores, measurement: Measurement) -> bytes:
    """What the bolster answers (OK) to the Store of ``measurement``."""
    return world.bolster.store(stores.request(measurement)).receipt.to_bytes()


def test_a_reading_is_stored_in_the_facility_vocabulary() -> None:
    assert measurement_of(HR, 5) == Measurement("heart_rate", 5, (("bpm", 71.5),))
    bp = Reading(VitalKind.BLOOD_PRESSURE, 2, systolic_mmhg=120.0, diastolic_mmhg=80.0)
    assert measurement_of(bp, 6) == Measurement(
        "blood_pressure", 6, (("systolic", 120.0), ("diastolic", 80.0))
    )


def test_nothing_is_stored_before_the_device_is_provisioned(world: World) -> None:
    stores = DeviceStores(world.new_device())
    assert stores.on_reading(HR, 1) is None
    assert stores.backlog.counts["skipped"] == 0  # not for want of room


def test_the_store_and_the_base_store_take_turns_going_first(world: World) -> None:
    stores = DeviceStores(world.device())
    orders = [stores.on_reading(HR, t) for t in (1, 2, 3)]
    assert [o.biomt_first for o in orders if o is not None] == [True, False, True]
    assert orders[1] is not None and orders[1].measurement == measurement_of(HR, 2)


def test_an_acknowledged_store_is_checked_and_logged(world: World) -> None:
    stores = DeviceStores(world.device())
    order = stores.on_reading(HR, world.clock())
    assert order is not None
    answer = stores.on_answer(_answer(world, stores, order.measurement))
    assert isinstance(answer, StoreAcknowledged) and answer.retries == []
    assert stores.counts == {"acknowledged": 1, "refused": 0}
    assert stores.backlog.in_flight == 0
    entry = ack_entry(answer.receipt)
    tx = answer.receipt.transaction
    assert entry == {
        "device": stores.device.pseudonym,
        "counter": 1,
        "seq": tx.seq,
        "tag": tx.signature.hex(),
    }


def test_past_max_in_flight_a_reading_is_skipped(world: World) -> None:
    stores = DeviceStores(world.device(), max_in_flight=2)
    for t in (1, 2):
        order = stores.on_reading(HR, t)
        assert order is not None
        stores.request(order.measurement)
    assert stores.on_reading(HR, 3) is None
    assert stores.backlog.counts["skipped"] == 1


def test_a_store_without_an_answer_goes_again_after_the_next_acknowledged_one(
    world: World,
) -> None:
    stores = DeviceStores(world.device())
    lost = measurement_of(HR, 1)
    stores.request(lost)
    stores.on_lost(lost)
    assert len(stores.backlog) == 1
    answer = stores.on_answer(_answer(world, stores, measurement_of(HR, 2)))
    assert isinstance(answer, StoreAcknowledged)
    assert [r.measurement for r in answer.retries] == [lost]
    assert (len(stores.backlog), stores.backlog.counts["retried"]) == (0, 1)


def test_a_receipt_that_is_not_ours_is_a_refusal(world: World) -> None:
    w = world
    stores = DeviceStores(w.device())
    other = DeviceStores(w.device("iomt://facility-a/hr-2"))
    theirs = _answer(w, other, measurement_of(HR, 1))
    stores.request(measurement_of(HR, 2))
    answer = stores.on_answer(theirs)
    assert isinstance(answer, StoreRefused)
    assert isinstance(answer.error, ReceiptMismatchError)
    assert isinstance(stores.on_answer(b"\x00garbage"), StoreRefused)
    assert stores.counts == {"acknowledged": 0, "refused": 2}
    assert len(stores.backlog) == 0  # a refusal is final: nothing kept for a retry


def test_a_refusal_is_final_and_a_removal_forgets_the_key_once(world: World) -> None:
    stores = DeviceStores(world.device())
    for _ in range(3):
        stores.request(measurement_of(HR, 1))
    refused = stores.on_refused(TransportError("bolster/store: busy"))
    assert isinstance(refused, StoreRefused) and stores.active
    assert stores.on_refused(DeviceRemovedError("store: removed")) == StoreRemoved(now=True)
    assert stores.device.state is DeviceState.REMOVED
    assert stores.on_refused(DeviceRemovedError("store: removed")) == StoreRemoved(now=False)
    assert stores.counts["refused"] == 3 and stores.backlog.in_flight == 0
    assert stores.on_reading(HR, 2) is None
    with pytest.raises(BiomtStateError):  # and not counted in flight
        stores.request(measurement_of(HR, 3))
    assert stores.backlog.in_flight == 0
