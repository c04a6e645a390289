"""The bolster's local storage audited against its ledger: a changed, deleted or inserted
record is found; what a Remove or an eviction of a whole synced block deleted is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from biomt_world import World
from test_biomt_cloud import _evicting_world, _sync

from iomt.core.biomt import BodyUnreadableError, Retention, audit_local_storage
from iomt.core.biomt.clock import SECOND
from iomt.ledger import (
    LocalRecordExtraError,
    LocalRecordMissingError,
    LocalRecordTamperedError,
    StoredRecord,
)


def _stored(w: World, readings: int = 6) -> list[str]:
    devices = [w.device(f"iomt://facility-a/hr-{i}") for i in range(2)]
    for i in range(readings):
        w.clock.advance(61 * SECOND)
        for dev in devices:
            w.store(dev, 60 + i)
    return [d.pseudonym for d in devices]


def test_an_untouched_local_storage_audits(any_world: World) -> None:
    _stored(any_world)
    report = audit_local_storage(any_world.storage, any_world.identity.storage_secret)
    assert (report.stores, report.present, report.removed, report.evicted) == (12, 12, 0, 0)


def test_a_flipped_bit_is_found(any_world: World) -> None:
    devices = _stored(any_world)
    records = any_world.storage.iter_records(devices[1])
    victim = list(records)[3]
    data = bytearray(victim.data)
    data[len(data) // 2] ^= 0x01
    any_world.storage.delete_records(devices[1], [victim.seq])
    any_world.storage.put_record(StoredRecord(victim.device_id, victim.seq, bytes(data)))
    with pytest.raises(LocalRecordTamperedError) as err:
        audit_local_storage(any_world.storage, any_world.identity.storage_secret)
    assert err.value.seq == victim.seq


def test_deleted_records_are_found(any_world: World) -> None:
    devices = _stored(any_world)
    gone = [r.seq for r in any_world.storage.iter_records(devices[0])][1:4]
    any_world.storage.delete_records(devices[0], gone)
    with pytest.raises(LocalRecordMissingError) as err:
        audit_local_storage(any_world.storage, any_world.identity.storage_secret)
    assert err.value.seq == gone[0]
    # the same with every record of the store gone (the outside test deleted 840)
    for d in devices:
        any_world.storage.delete_records(d)
    with pytest.raises(LocalRecordMissingError):
        audit_local_storage(any_world.storage, any_world.identity.storage_secret)


def test_a_record_moved_or_inserted_is_found(any_world: World) -> None:
    devices = _stored(any_world)
    first = next(iter(any_world.storage.iter_records(devices[0])))
    # the same bytes under another Store's number: the digest that Store names differs
    other = next(iter(any_world.storage.iter_records(devices[1])))
    any_world.storage.delete_records(devices[1], [other.seq])
    any_world.storage.put_record(StoredRecord(devices[1], other.seq, first.data))
    with pytest.raises(LocalRecordTamperedError):
        audit_local_storage(any_world.storage, any_world.identity.storage_secret)
    w2 = World()
    _stored(w2)
    w2.storage.put_record(StoredRecord("dev-nobody", 3, b"x" * 40))
    with pytest.raises(LocalRecordExtraError):
        audit_local_storage(w2.storage, w2.identity.storage_secret)


def test_what_a_remove_deleted_is_accounted_for(world: World) -> None:
    devices = _stored(world)
    world.bolster.remove(world.admin.remove("bolster-a", devices[0], reason="broken"))
    report = audit_local_storage(world.storage, world.identity.storage_secret)
    assert (report.present, report.removed) == (6, 6)


def test_eviction_of_whole_synced_blocks_is_accounted_for(tmp_path: Path) -> None:
    w, cloud = _evicting_world(tmp_path / "b.db")
    dev = w.device()
    for i in range(9):
        w.clock.advance(61 * SECOND)
        w.store(dev, 60 + i)
    assert _sync(w, cloud) == 8
    secret = w.identity.storage_secret
    report = audit_local_storage(w.storage, secret, retention=Retention.EVICT_AFTER_SYNC)
    assert (report.present, report.evicted, report.evicted_blocks) == (1, 8, 2)
    # with a "keep" retention the same gap is a deletion
    with pytest.raises(LocalRecordMissingError):
        audit_local_storage(w.storage, secret, retention=Retention.KEEP)
    # an eviction takes a whole block: the open block's last record is not evictable
    last = list(w.storage.iter_records(dev.pseudonym))[-1]
    w.storage.delete_records(dev.pseudonym, [last.seq])
    with pytest.raises(LocalRecordMissingError):
        audit_local_storage(w.storage, secret, retention=Retention.EVICT_AFTER_SYNC)
    w.close()


def test_the_wrong_secret_is_not_mistaken_for_tampering(world: World) -> None:
    _stored(world)
    with pytest.raises(BodyUnreadableError):
        audit_local_storage(world.storage, bytes(32))
