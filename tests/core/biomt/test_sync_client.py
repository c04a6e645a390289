"""The bolster's side of cloud sync, without DDS: one round of pushes at a time, acks
applied (and evicting per retention), refusals and silence counted, blocks not acked
offered again."""

from __future__ import annotations

import dataclasses

from biomt_world import World

from iomt.core.biomt import BolsterConfig, Cloud, CloudAck, CloudBatch, Retention
from iomt.core.biomt.sync_client import CloudSyncClient, PushBatch, SyncFailed
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import IomtError, ServiceTimeoutError


def _world() -> tuple[World, Cloud]:
    w = World(
        config=BolsterConfig(
            retention=Retention.EVICT_AFTER_SYNC, max_block_transactions=4, max_block_age=None
        )
    )
    cloud = Cloud(
        "cloud-1",
        Ed25519Signer.from_private_bytes(w.rng(32)),
        anchor=w.ca.anchor,
        users=w.users,
        clock=w.clock,
        rng=w.rng,
    )
    cloud.register_bolster(w.bolster.credentials)
    w.bolster._cloud.verifier = cloud.verifier
    return w, cloud


def test_sealed_blocks_are_pushed_acked_and_evicted() -> None:
    w, cloud = _world()
    dev = w.device()
    for _ in range(8):
        w.store(dev, 70)
    sync = CloudSyncClient(w.bolster, max_blocks=4)
    pushes = sync.tick()
    assert len(pushes) == 2 and all(isinstance(p, PushBatch) for p in pushes)
    assert sync.busy and sync.tick() == []  # one round at a time
    for p in pushes:
        assert sync.on_ack(cloud.put(p.batch).to_bytes()) == []
    assert not sync.busy
    assert sync.counts == {"pushed": 2, "acked": 2, "evicted": 8, "failed": 0}
    assert sync.tick() == []  # nothing left to push
    w.close()


def test_a_refused_or_unanswered_push_is_counted_and_its_block_offered_again() -> None:
    w, cloud = _world()
    dev = w.device()
    for _ in range(4):
        w.store(dev, 70)
    sync = CloudSyncClient(w.bolster)
    (push,) = sync.tick()
    lost = ServiceTimeoutError("cloud/put: no response in time")
    assert sync.on_lost(lost) == [SyncFailed(lost, refused=False)]
    (again,) = sync.tick()
    assert again == push
    ack = cloud.put(again.batch)
    forged = dataclasses.replace(ack, records=0).to_bytes()  # the bolster checks the ack
    (failure,) = sync.on_ack(forged)
    assert failure.refused and isinstance(failure.error, IomtError)
    assert len(sync.tick()) == 1
    assert sync.on_ack(b"not an ack")[0].refused
    assert sync.counts == {"pushed": 3, "acked": 0, "evicted": 0, "failed": 3}
    assert len(w.bolster.local_storage.records(dev.pseudonym)) == 4  # nothing evicted
    w.close()


class _Source:
    def __init__(self, batches: list[CloudBatch]) -> None:
        self.batches = batches

    def cloud_batches(self, *, max_blocks: int = 16) -> list[CloudBatch]:
        return self.batches[:max_blocks]

    def cloud_synced(self, ack: CloudAck) -> int:
        raise AssertionError("not called")


def test_a_round_ends_when_every_push_is_answered() -> None:
    source = _Source([object(), object(), object()])  # type: ignore[list-item]
    sync = CloudSyncClient(source, max_blocks=2)
    assert len(sync.tick()) == 2
    sync.on_refused(IomtError("refused"))
    assert sync.busy and sync.tick() == []
    sync.on_lost(ServiceTimeoutError("late"))
    assert not sync.busy and len(sync.tick()) == 2
