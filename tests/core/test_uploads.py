"""What a device keeps until it is acknowledged, without DDS. The centralized baseline's
uploads: every reading is sent once and kept until stored; retries are clocked by
acknowledgements, one at a time; a refusal is final; a full backlog drops its oldest. A
BIoMT device's Stores: a bounded number in flight, unanswered ones retried one per
acknowledgement."""

from __future__ import annotations

from iomt.core.uploads import (
    Dropped,
    RetryStore,
    SendUpload,
    StoreBacklog,
    Stored,
    UploadBacklog,
    UploadRefused,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def _sent(actions: list[object]) -> list[int]:
    return [a.seq for a in actions if isinstance(a, SendUpload)]


def test_a_new_reading_is_sent_and_kept_until_stored() -> None:
    clock = Clock()
    backlog: UploadBacklog[str] = UploadBacklog(clock=clock)
    assert backlog.add(1, "r1") == [SendUpload(1, "r1")]
    assert len(backlog) == 1 and backlog.in_flight == 1 and 1 in backlog
    clock.now += 5_000
    assert backlog.on_stored(1) == [Stored(1, 5_000)]  # transfer time from the first try
    assert len(backlog) == 0 and backlog.in_flight == 0 and backlog.retried == 0


def test_lost_uploads_wait_for_an_acknowledgement_before_a_retry() -> None:
    clock = Clock()
    backlog: UploadBacklog[str] = UploadBacklog(clock=clock)
    for seq in (1, 2, 3):
        backlog.add(seq, f"r{seq}")
    backlog.on_lost(1)
    backlog.on_lost(2)
    assert backlog.retried == 0 and len(backlog) == 3  # no retries into the void
    clock.now += 100
    actions = backlog.on_stored(3)
    assert actions[0] == Stored(3, 100)
    assert actions[1:] == [SendUpload(1, "r1", retry=True)]  # the oldest, one at a time
    assert backlog.retried == 1
    # reading 2 waits for the retry to be answered, even after another acknowledgement
    backlog.add(4, "r4")
    assert _sent(backlog.on_stored(4)) == []
    assert _sent(backlog.on_stored(1)) == [2]
    assert _sent(backlog.on_stored(2)) == []
    assert len(backlog) == 0 and backlog.retried == 2


def test_a_lost_retry_lets_the_next_acknowledgement_retry_again() -> None:
    backlog: UploadBacklog[str] = UploadBacklog(clock=Clock())
    backlog.add(1, "r1")
    backlog.on_lost(1)
    backlog.add(2, "r2")
    assert _sent(backlog.on_stored(2)) == [1]
    backlog.on_lost(1)
    backlog.add(3, "r3")
    assert _sent(backlog.on_stored(3)) == [1]
    assert backlog.retried == 2


def test_a_refusal_is_final() -> None:
    backlog: UploadBacklog[str] = UploadBacklog(clock=Clock())
    backlog.add(1, "r1")
    assert backlog.on_refused(1) == [UploadRefused(1)]
    assert len(backlog) == 0 and backlog.in_flight == 0
    backlog.add(2, "r2")
    assert _sent(backlog.on_stored(2)) == []  # nothing to retry


def test_a_full_backlog_drops_its_oldest_reading() -> None:
    backlog: UploadBacklog[str] = UploadBacklog(clock=Clock(), capacity=2)
    backlog.add(1, "r1")
    backlog.add(2, "r2")
    assert backlog.add(3, "r3") == [SendUpload(3, "r3"), Dropped(1, 2)]
    assert backlog.dropped == 1 and 1 not in backlog and len(backlog) == 2
    # the dropped one's late answer changes nothing
    assert backlog.on_stored(1) == []
    assert backlog.on_refused(1) == []
    assert len(backlog) == 2


def test_stores_past_the_in_flight_limit_are_skipped() -> None:
    stores: StoreBacklog[str] = StoreBacklog(max_in_flight=2)
    for _ in range(2):
        assert stores.may_send()
        stores.sent()
    assert not stores.may_send() and stores.counts["skipped"] == 1
    stores.on_refused()
    assert stores.may_send() and stores.in_flight == 1


def test_unanswered_stores_are_retried_one_per_acknowledgement() -> None:
    stores: StoreBacklog[str] = StoreBacklog(max_in_flight=4)
    for _ in range(3):
        stores.sent()
    stores.on_lost("m1")
    stores.on_lost("m2")
    assert len(stores) == 2 and stores.counts["failed"] == 2
    assert stores.on_stored() == [RetryStore("m1")]  # the oldest, one
    stores.sent()  # the retry goes out
    assert stores.on_stored() == [RetryStore("m2")]
    stores.sent()
    assert stores.on_stored() == [] and len(stores) == 0
    assert stores.counts == {"failed": 2, "skipped": 0, "retried": 2, "dropped": 0}
    assert stores.in_flight == 0


def test_no_retry_for_a_device_that_may_not_store_or_has_no_room() -> None:
    stores: StoreBacklog[str] = StoreBacklog(max_in_flight=1)
    stores.sent()
    stores.on_lost("m1")
    stores.sent()
    assert stores.on_stored(active=False) == []  # removed meanwhile: kept, not sent
    stores.sent()
    stores.sent()  # two out (a retry in flight and a new one)
    assert stores.on_stored() == []  # still one out: no room
    assert stores.on_stored() == [RetryStore("m1")]


def test_a_full_store_backlog_drops_its_oldest() -> None:
    stores: StoreBacklog[str] = StoreBacklog(capacity=2)
    for m in ("m1", "m2", "m3"):
        stores.sent()
        stores.on_lost(m)
    assert len(stores) == 2 and stores.counts["dropped"] == 1
    stores.sent()
    assert stores.on_stored() == [RetryStore("m2")]
