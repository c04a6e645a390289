"""Store and Access end to end through the bolster core, on both ledger backends."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import (
    AccessDeniedError,
    BolsterConfig,
    KeyExpiredError,
    Measurement,
    Outcome,
    RateLimitedError,
    ReceiptMismatchError,
    ReplayError,
    RequestAuthenticationError,
    StaleRequestError,
    UnknownDeviceError,
    UnknownRequesterError,
)
from iomt.core.biomt.bodies import AccessBody, StoreBody, decode_body
from iomt.core.biomt.keys import StorageKeys, body_aad
from iomt.core.biomt.sealing import open_sealed, response_aad
from iomt.crypto.errors import DecryptionError
from iomt.crypto.keys import EccCurve, EccPrivateKey
from iomt.ledger import TxType


def _body(world: World, seq: int) -> object:
    tx = world.bolster.ledger.get_transaction(seq)
    keys = StorageKeys(world.identity.storage_secret)
    return decode_body(
        keys.open_body(tx.body, body_aad(tx.tx_type, tx.seq, tx.generator_id, tx.time))
    )


def test_store_end_to_end(any_world: World) -> None:
    w = any_world
    dev = w.device()
    w.clock.advance(SECOND)
    request = dev.store_request(heart_rate(71.5, w.clock()))
    result = w.bolster.store(request)
    dev.check_store_receipt(result.receipt)
    tx = result.receipt.transaction
    assert (tx.tx_type, tx.generator_id, tx.signature) == (
        TxType.STORE,
        dev.pseudonym,
        request.auth_tag,
    )
    body = _body(w, tx.seq)
    assert isinstance(body, StoreBody) and body.counter == 1
    # the reading is neither in the Store body nor readable in local storage
    value = struct.pack(">d", 71.5)
    assert value not in tx.body
    record = w.bolster.local_storage.get(dev.pseudonym, tx.seq)
    assert value not in record.data
    assert result.updates == ()


def test_store_is_replay_protected(world: World) -> None:
    dev = world.device()
    request = dev.store_request(heart_rate(70, world.clock()))
    world.bolster.store(request)
    size = world.bolster.ledger.size
    with pytest.raises(ReplayError) as info:
        world.bolster.store(request)
    assert info.value.last_counter == 1
    assert world.bolster.ledger.size == size


def test_a_device_that_lost_its_counter_can_resync(world: World) -> None:
    dev = world.device()
    for _ in range(3):
        world.store(dev, 70)
    dev._counter = 0  # what a reflash without state would do
    with pytest.raises(ReplayError) as info:
        world.bolster.store(dev.store_request(heart_rate(70, world.clock())))
    dev.resume(info.value.last_counter)
    world.store(dev, 71)


def test_store_authentication(world: World) -> None:
    dev = world.device()
    request = dev.store_request(heart_rate(70, world.clock()))
    ct = bytearray(request.ciphertext)
    ct[0] ^= 1
    with pytest.raises(RequestAuthenticationError):
        world.bolster.store(dataclasses.replace(request, ciphertext=bytes(ct)))
    # associated data covers the counter and time: they cannot be changed either
    with pytest.raises(RequestAuthenticationError):
        world.bolster.store(dataclasses.replace(request, counter=99))
    with pytest.raises(RequestAuthenticationError):
        world.bolster.store(dataclasses.replace(request, bolster_id="bolster-b"))
    other = world.device("iomt://facility-a/hr-2")
    with pytest.raises(RequestAuthenticationError):
        world.bolster.store(dataclasses.replace(request, device=other.pseudonym))
    with pytest.raises(UnknownDeviceError):
        world.bolster.store(dataclasses.replace(request, device="dev-unknown"))
    assert world.bolster.store(request).receipt.counter == 1


def test_store_after_key_expiry_is_refused() -> None:
    w = World(config=BolsterConfig(key_lifetime=10 * SECOND, max_block_age=None))
    dev = w.device()
    request = dev.store_request(heart_rate(70, w.clock()))
    w.clock.advance(11 * SECOND)
    with pytest.raises(KeyExpiredError):
        w.bolster.store(request)
    with pytest.raises(KeyExpiredError):
        dev.store_request(heart_rate(70, w.clock()))


def test_device_detects_a_receipt_for_someone_else(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/hr-2")
    ra = world.bolster.store(a.store_request(heart_rate(70, world.clock()))).receipt
    b.store_request(heart_rate(70, world.clock()))
    with pytest.raises(ReceiptMismatchError):
        b.check_store_receipt(dataclasses.replace(ra, device=b.pseudonym))


def _stored(world: World, n: int = 5):  # type: ignore[no-untyped-def]
    dev = world.device()
    for i in range(n):
        world.clock.advance(SECOND)
        world.store(dev, 60 + i)
    return dev


def test_access_granted_to_a_permitted_role_and_logged(any_world: World) -> None:
    w = any_world
    dev = _stored(w)
    req = w.physician.access("bolster-a", dev.pseudonym)
    result = w.bolster.access(req)
    payload = w.physician.open_access(req, result, bolster=w.bolster.verifier)
    assert [r.measurement.value("bpm") for r in payload.records] == [60, 61, 62, 63, 64]
    assert payload.redirects == ()
    body = _body(w, result.transaction.seq)
    assert isinstance(body, AccessBody)
    assert (body.requester, body.role, body.outcome, body.records) == (
        "dr-alice",
        "physician",
        Outcome.GRANTED,
        5,
    )
    # who asked is pseudonymous in the clear metadata
    assert result.transaction.generator_id == w.bolster.requester_pseudonym("dr-alice")
    assert b"dr-alice" not in result.transaction.to_bytes()


def test_access_range_and_limit(world: World) -> None:
    dev = _stored(world, 6)
    t0 = world.bolster.ledger.get_transaction(1).time
    req = world.physician.access("bolster-a", dev.pseudonym, since=t0 + 2 * SECOND, limit=2)
    payload = world.physician.open_access(
        req, world.bolster.access(req), bolster=world.bolster.verifier
    )
    assert [r.measurement.value("bpm") for r in payload.records] == [62, 63]
    req = world.physician.access("bolster-a", dev.pseudonym, until=t0 + SECOND)
    payload = world.physician.open_access(
        req, world.bolster.access(req), bolster=world.bolster.verifier
    )
    assert [r.measurement.value("bpm") for r in payload.records] == [60]


def test_owner_may_read_own_device_others_may_not(world: World) -> None:
    dev = _stored(world, 2)
    req = world.patient.access("bolster-a", dev.pseudonym)
    assert (
        len(
            world.patient.open_access(
                req, world.bolster.access(req), bolster=world.bolster.verifier
            ).records
        )
        == 2
    )
    with pytest.raises(AccessDeniedError):
        world.bolster.access(world.other_patient.access("bolster-a", dev.pseudonym))


def test_denied_access_is_logged_for_the_patient(any_world: World) -> None:
    w = any_world
    dev = _stored(w, 1)
    size = w.bolster.ledger.size
    with pytest.raises(AccessDeniedError) as info:
        w.bolster.access(w.insurer.access("bolster-a", dev.pseudonym))
    assert w.bolster.ledger.size == size + 1
    tx = info.value.transaction
    assert tx is not None and info.value.receipt is not None
    assert tx.tx_type is TxType.ACCESS
    body = _body(w, tx.seq)
    assert isinstance(body, AccessBody) and body.outcome is Outcome.DENIED
    # the patient sees who asked for what
    hreq = w.patient.history("bolster-a", dev.pseudonym)
    history = w.patient.open_history(hreq, w.bolster.history(hreq))
    denied = [e for e in history.entries if e.outcome is Outcome.DENIED]
    assert [(e.actor, e.role, e.tx_type) for e in denied] == [
        ("insurer-x", "insurer", TxType.ACCESS)
    ]
    # someone else may not read the patient's history
    with pytest.raises(AccessDeniedError):
        w.bolster.history(w.physician.history("bolster-a", dev.pseudonym))


def test_unauthenticated_access_is_refused_and_not_logged(world: World) -> None:
    dev = _stored(world, 1)
    size = world.bolster.ledger.size
    req = world.physician.access("bolster-a", dev.pseudonym)
    forged = dataclasses.replace(req, device="dev-other")
    with pytest.raises(RequestAuthenticationError):
        world.bolster.access(forged)
    with pytest.raises(UnknownRequesterError):
        world.bolster.access(dataclasses.replace(req, requester="mallory"))
    world.clock.advance(world.config.max_clock_skew + 1)
    with pytest.raises(StaleRequestError):
        world.bolster.access(req)
    assert world.bolster.ledger.size == size


def test_access_request_cannot_be_replayed(world: World) -> None:
    dev = _stored(world, 1)
    req = world.physician.access("bolster-a", dev.pseudonym)
    world.bolster.access(req)
    with pytest.raises(ReplayError):
        world.bolster.access(req)


def test_access_result_opens_only_for_the_requester(world: World) -> None:
    dev = _stored(world, 1)
    req = world.physician.access("bolster-a", dev.pseudonym)
    result = world.bolster.access(req)
    stranger = EccPrivateKey.generate(EccCurve.X25519)
    aad = response_aad("bolster-a", "dr-alice", dev.pseudonym, result.transaction.seq, req.nonce)
    with pytest.raises(DecryptionError):
        open_sealed(stranger, result.sealed, aad)
    # and the requester's own key opens it only once (one-time response keys)
    world.physician.open_access(req, result, bolster=world.bolster.verifier)
    with pytest.raises(ReplayError):
        world.physician.open_access(req, result, bolster=world.bolster.verifier)


def test_requests_are_rate_limited_before_they_are_logged() -> None:
    w = World(config=BolsterConfig(request_rate=1.0, request_burst=3, max_block_age=None))
    dev = _stored(w, 1)
    for _ in range(3):
        w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))
    size = w.bolster.ledger.size
    with pytest.raises(RateLimitedError) as info:
        w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))
    assert info.value.retry_after > 0
    assert w.bolster.ledger.size == size
    # another requester has its own bucket; time refills
    w.bolster.access(w.patient.access("bolster-a", dev.pseudonym))
    w.clock.advance(info.value.retry_after)
    w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))


def test_measurement_validation() -> None:
    with pytest.raises(ValueError):
        Measurement("Heart Rate", 0, (("bpm", 1.0),))
    with pytest.raises(ValueError):
        Measurement("hr", 0, (("bpm", float("nan")),))
    with pytest.raises(ValueError):
        Measurement("hr", 0, ())
    with pytest.raises(ValueError):
        Measurement("hr", 0, (("bpm", 1.0), ("bpm", 2.0)))


def test_a_flooding_device_is_rate_limited() -> None:
    w = World(config=BolsterConfig(store_rate=1.0, store_burst=2, max_block_age=None))
    dev = w.device()
    w.store(dev, 70)
    w.store(dev, 71)
    size = w.bolster.ledger.size
    with pytest.raises(RateLimitedError):
        w.bolster.store(dev.store_request(heart_rate(72, w.clock())))
    assert w.bolster.ledger.size == size
    w.clock.advance(SECOND)
    w.store(dev, 73)


def test_history_of_all_my_devices_by_name_or_pseudonym(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/bp-2")
    world.device("iomt://facility-a/hr-3", owner="patient-9")
    world.store(a, 70)
    world.store(b, 120)
    for subject in ("patient-7", world.bolster.requester_pseudonym("patient-7")):
        req = world.patient.history("bolster-a", subject)
        h = world.patient.open_history(req, world.bolster.history(req))
        assert set(h.devices) == {a.pseudonym, b.pseudonym}
        assert {e.device for e in h.entries} == {a.pseudonym, b.pseudonym}
        assert [e.tx_type for e in h.entries].count(TxType.STORE) == 2
    admin = world.admin.history("bolster-a", "patient-9")
    assert len(world.admin.open_history(admin, world.bolster.history(admin)).devices) == 1
