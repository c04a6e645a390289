"""The cloud layer: anonymization, sync, eviction, redirect, block-addressed access."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from pathlib import Path

import pytest
from biomt_world import SECOND, World, heart_rate
from hypothesis import example, given, settings
from hypothesis import strategies as st

from iomt.core.biomt import (
    BolsterConfig,
    Cloud,
    CloudAddress,
    CloudBlockNotFoundError,
    CloudSyncStatus,
    IdentifiedRecord,
    Measurement,
    RequestAuthenticationError,
    Retention,
    UnknownBolsterError,
    anonymize,
)
from iomt.core.biomt.cloud import HOUR
from iomt.core.biomt.keys import StorageKeys
from iomt.crypto.signing import Ed25519Signer


def _identifiers(record: IdentifiedRecord) -> list[bytes]:
    """Every way an identifier or the exact time could appear in serialized output."""
    t = record.measurement.time
    stamp = dt.datetime.fromtimestamp(t / 1e9, dt.UTC)
    out = [
        record.device.encode(),
        record.device_uri.encode(),
        record.owner.encode(),
        struct.pack(">Q", t),
        struct.pack(">Q", record.stored_at),
        struct.pack(">Q", t // 1_000_000),  # ms
        str(t).encode(),
        str(t // 10**9).encode(),
        str(t // 10**6).encode(),
        stamp.isoformat().encode(),
        stamp.strftime("%Y-%m-%dT%H:%M").encode(),
    ]
    if t // 10**9 % 3600:  # whole-second time not on the hour boundary
        out.append(struct.pack(">Q", t // 10**9))
    # A packed time that is mostly zero bytes (hypothesis likes t = 2**60: 10 00 00 00 00 00
    # 00 00) is spelled by any length prefix of 16 before a zero field: not an identifier.
    return [needle for needle in out if sum(1 for b in needle if b) >= 3]


def _scan(data: bytes, record: IdentifiedRecord) -> None:
    for needle in _identifiers(record):
        assert needle not in data, f"identifier {needle!r} leaked"
    # no fragment of the URI or owner either (e.g. a serial number inside the URI), looked
    # for outside the format's own constants and the fields an anonymized record keeps
    # (hypothesis once named an owner "anonym", found in the record's type tag)
    public = data
    for constant in (
        b"iomt/biomt/anonymized-record/v1",
        b"anon-",
        record.measurement.kind.encode(),
        *(name.encode() for name, _value in record.measurement.values),
    ):
        public = public.replace(constant, b"")
    for word in (record.device_uri.rsplit("/", 1)[-1], record.owner):
        if len(word) >= 4:
            assert word.encode() not in public


_ADDRESS = CloudAddress(bytes(range(32)), 7, bytes(range(32, 64)))
_KEYS = StorageKeys(bytes(32))


def _identified(
    uri: str, owner: str, device: str, t: int, kind: str, values: dict[str, float]
) -> IdentifiedRecord:
    return IdentifiedRecord(
        device,
        uri,
        owner,
        42,
        t + 123_456_789,
        Measurement(kind, t, tuple(values.items())),
        _ADDRESS,
    )


def test_anonymized_records_carry_no_identifier() -> None:
    record = _identified(
        "iomt://st-marys/icu/bed-12/hr-0042",
        "patient-7",
        "dev-0123456789abcdef0123456789abcdef",
        1_700_000_123_456_789_012,
        "heart_rate",
        {"bpm": 72.0},
    )
    anon = anonymize(
        record, cloud_pseudonym=_KEYS.cloud_pseudonym(_ADDRESS.ledger_id, record.device)
    )
    assert anon.period_start == 1_700_000_123 // 3600 * 3600
    assert anon.values == (("bpm", 72.0),)
    assert anon.kind == "heart_rate"
    _scan(anon.to_bytes(), record)
    assert anon.cloud_pseudonym != record.device
    # stable per device, different for another device
    assert anon.cloud_pseudonym == _KEYS.cloud_pseudonym(_ADDRESS.ledger_id, record.device)
    assert anon.cloud_pseudonym != _KEYS.cloud_pseudonym(_ADDRESS.ledger_id, "dev-other")


def test_names_outside_the_vocabulary_do_not_leave() -> None:
    record = _identified(
        "iomt://x/y",
        "patient-7",
        "dev-1",
        10**18,
        "patient_john_doe",
        {"john_doe": 1.0, "bpm": 2.0},
    )
    anon = anonymize(record, cloud_pseudonym="anon-00", decimals=0)
    assert anon.kind == "other"
    assert dict(anon.values) == {"bpm": 2.0, "other": 1.0}
    assert b"john" not in anon.to_bytes()


_name = st.text(
    alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=6, max_size=20
)


@settings(max_examples=100, deadline=None)
@given(
    uri_tail=_name,
    owner=_name,
    device=_name,
    t=st.integers(10**18, 2 * 10**18),
    value=st.floats(0, 300, allow_nan=False),
    kind=st.sampled_from(["heart_rate", "blood_pressure", "spo2"]),
)
@example("aaaaaa", "aaaaaa", "aaaaaa", 2**60, 1.1754943508222875e-38, "heart_rate")  # false alarm
def test_anonymize_never_leaks_identifiers(
    uri_tail: str, owner: str, device: str, t: int, value: float, kind: str
) -> None:
    record = _identified(
        f"iomt://f/{uri_tail}", f"pt-{owner}", f"dev-{device}", t, kind, {"value": value}
    )
    anon = anonymize(
        record, cloud_pseudonym=_KEYS.cloud_pseudonym(_ADDRESS.ledger_id, record.device)
    )
    _scan(anon.to_bytes(), record)


def _cloud(world: World) -> Cloud:
    cloud = Cloud(
        "cloud-1",
        Ed25519Signer.from_private_bytes(world.rng(32)),
        anchor=world.ca.anchor,
        users=world.users,
        clock=world.clock,
        rng=world.rng,
    )
    cloud.register_bolster(world.bolster.credentials)
    return cloud


def _evicting_world(tmp_path: Path | None = None) -> tuple[World, Cloud]:
    w = World(
        db=tmp_path,
        config=BolsterConfig(
            retention=Retention.EVICT_AFTER_SYNC, max_block_transactions=4, max_block_age=None
        ),
    )
    cloud = _cloud(w)
    w.bolster._cloud.verifier = cloud.verifier
    return w, cloud


def _sync(w: World, cloud: Cloud) -> int:
    evicted = 0
    for batch in w.bolster.cloud_batches():
        evicted += w.bolster.cloud_synced(cloud.put(batch))
    return evicted


def test_sync_evict_and_redirect_to_the_cloud(tmp_path: Path) -> None:
    w, cloud = _evicting_world(tmp_path / "b.db")
    dev = w.device()
    for i in range(9):
        w.clock.advance(61 * SECOND)
        w.store(dev, 60 + i)
    evicted = _sync(w, cloud)
    assert evicted == 8  # two full blocks of 4; the 9th reading is in the open block
    assert _sync(w, cloud) == 0
    # everything pushed to the cloud is anonymized
    for batch in cloud.blocks():
        assert dev.pseudonym.encode() not in batch.to_bytes()
        assert b"hr-1" not in batch.to_bytes()
    # Access: one reading from local storage, the rest redirected by block number + hash
    req = w.physician.access("bolster-a", dev.pseudonym)
    payload = w.physician.open_access(req, w.bolster.access(req), bolster=w.bolster.verifier)
    assert [r.measurement.value("bpm") for r in payload.records] == [68]
    assert len(payload.redirects) == 2
    values = []
    for address in payload.redirects:
        creq = w.physician.cloud("cloud-1", address)
        data = w.physician.open_cloud(creq, cloud.get(creq))
        values += [
            dict(r.values)["bpm"]
            for r in data.records
            if r.cloud_pseudonym == payload.cloud_pseudonym
        ]
    assert sorted(values) == [60 + i for i in range(8)]
    # restart: evicted blocks are not pushed again (they would be partial)
    bolster = w.restart()
    bolster._cloud.verifier = cloud.verifier
    assert bolster.cloud_batches() == []
    w.close()


def test_sync_status_follows_sealing_and_acks() -> None:
    w, cloud = _evicting_world()
    dev = w.device()
    # what is sealed at the start has no Store data: a sync round finds that out
    assert w.bolster.cloud_status().synced == 0
    assert w.bolster.cloud_batches() == []
    start = w.bolster.cloud_status()
    assert start.synced == start.sealed == start.transactions > 0
    for _ in range(9):
        w.store(dev, 70)
    status = w.bolster.cloud_status()
    assert status.transactions == start.transactions + 9
    assert status.sealed == start.transactions + 8  # two full blocks of 4, one open
    assert status.synced == start.synced  # the cloud holds neither block yet
    (first, second) = w.bolster.cloud_batches()
    # an ack for the second block alone does not move the leading synced prefix
    w.bolster.cloud_synced(cloud.put(second))
    assert w.bolster.cloud_status().synced == start.synced
    w.bolster.cloud_synced(cloud.put(first))
    assert w.bolster.cloud_status().synced == status.sealed
    assert CloudSyncStatus.from_bytes(status.to_bytes()) == status


def test_cloud_requires_block_number_hash_and_credential(world: World) -> None:
    cloud = _cloud(world)
    world.bolster._cloud.verifier = cloud.verifier
    dev = world.device()
    for _ in range(8):
        world.store(dev, 70)
    (batch, *_) = world.bolster.cloud_batches()
    cloud.put(batch)
    good = CloudAddress(batch.ledger_id, batch.block_index, batch.block_hash)
    wrong = dataclasses.replace(good, block_hash=bytes(32))
    with pytest.raises(CloudBlockNotFoundError):
        cloud.get(world.physician.cloud("cloud-1", wrong))
    req = world.physician.cloud("cloud-1", good)
    forged = dataclasses.replace(req, requester="insurer-x")
    with pytest.raises(RequestAuthenticationError):
        cloud.get(forged)
    assert len(world.physician.open_cloud(req, cloud.get(req)).records) == len(batch.records)


def test_cloud_accepts_only_signed_batches_from_known_bolsters(world: World) -> None:
    cloud = _cloud(world)
    dev = world.device()
    for _ in range(8):
        world.store(dev, 70)
    batch = world.bolster.cloud_batches()[0]
    with pytest.raises(RequestAuthenticationError):
        cloud.put(dataclasses.replace(batch, records=batch.records[1:]))
    with pytest.raises(UnknownBolsterError):
        cloud.put(dataclasses.replace(batch, bolster_id="bolster-z"))
    first = cloud.put(batch)
    assert cloud.put(batch) == first  # idempotent
    # a different block at the same height from the same bolster is equivocation
    other = dataclasses.replace(batch, block_hash=bytes(32), records=())
    other = dataclasses.replace(other, signature=world.identity.signer.sign(other.signed_bytes()))
    with pytest.raises(RequestAuthenticationError, match="another block hash"):
        cloud.put(other)


def test_bolster_evicts_only_on_a_signed_ack() -> None:
    w, cloud = _evicting_world()
    dev = w.device()
    for _ in range(8):
        w.store(dev, 70)
    batch = w.bolster.cloud_batches()[0]
    ack = cloud.put(batch)
    with pytest.raises(RequestAuthenticationError):
        w.bolster.cloud_synced(dataclasses.replace(ack, records=0))
    rogue = Ed25519Signer.generate()
    fake = dataclasses.replace(ack, signature=rogue.sign(ack.signed_bytes()))
    with pytest.raises(RequestAuthenticationError):
        w.bolster.cloud_synced(fake)
    assert len(w.bolster.local_storage.records(dev.pseudonym)) == 8
    assert w.bolster.cloud_synced(ack) == len(batch.records)


def test_coarsened_time(world: World) -> None:
    m = heart_rate(70, 5 * HOUR + 17 * SECOND)
    record = IdentifiedRecord("dev-x", "iomt://u", "p", 1, 0, m, _ADDRESS)
    anon = anonymize(record, cloud_pseudonym="anon-x", period=HOUR)
    assert (anon.period_start, anon.period_seconds) == (5 * 3600, 3600)
    with pytest.raises(ValueError):
        anonymize(record, cloud_pseudonym="anon-x", period=SECOND // 2)
