"""Observe: subscriptions, thresholds, intervals, per-observer rate limits."""

from __future__ import annotations

import dataclasses

import pytest
from biomt_world import SECOND, World, heart_rate
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.core.biomt import (
    BolsterConfig,
    Measurement,
    ObserveDeniedError,
    Outcome,
    ReplayError,
    RequestAuthenticationError,
    Threshold,
    UpdateReason,
)
from iomt.core.biomt.limits import RateLimit, TokenBucket
from iomt.core.biomt.observe import ObserveEngine, SubscriptionState
from iomt.ledger import TxType


def _subscribe(world: World, devices: list[str], **kw: object):  # type: ignore[no-untyped-def]
    req = world.physician.observe("bolster-a", devices, duration=3600 * SECOND, **kw)  # type: ignore[arg-type]
    sub = world.bolster.observe(req)
    return sub, world.physician.open_subscription(req, sub, bolster=world.bolster.verifier)


def test_observe_with_threshold_and_policy_interval(any_world: World) -> None:
    w = any_world
    dev = w.device()
    sub, observer = _subscribe(w, [dev.pseudonym], threshold=Threshold("bpm", 50, 120))
    assert sub.transaction.tx_type is TxType.OBSERVE
    assert sub.interval == 2 * SECOND  # the privacy header's observe_interval is the floor
    got: list[tuple[UpdateReason, float]] = []

    def store(bpm: float) -> None:
        result = w.bolster.store(dev.store_request(heart_rate(bpm, w.clock())))
        for update in result.updates:
            m = observer.open(update)
            got.append((update.reason, m.value("bpm") or 0.0))

    store(80)  # first reading: periodic
    w.clock.advance(SECOND // 2)
    store(81)  # inside the band, interval not elapsed: nothing
    w.clock.advance(SECOND // 2)
    store(130)  # crossing out of the band: at once
    w.clock.advance(SECOND // 2)
    store(131)  # still outside, interval not elapsed: nothing
    w.clock.advance(SECOND // 2)
    store(90)  # crossing back in
    w.clock.advance(2 * SECOND)
    store(91)  # periodic again
    assert got == [
        (UpdateReason.PERIODIC, 80),
        (UpdateReason.CROSSING, 130),
        (UpdateReason.CROSSING, 90),
        (UpdateReason.PERIODIC, 91),
    ]


def test_group_observe_and_update_numbering(world: World) -> None:
    a = world.device("iomt://facility-a/hr-1")
    b = world.device("iomt://facility-a/hr-2")
    sub, observer = _subscribe(world, [a.pseudonym, b.pseudonym])
    assert set(sub.devices) == {a.pseudonym, b.pseudonym}
    updates = []
    for dev in (a, b):
        updates += world.bolster.store(dev.store_request(heart_rate(70, world.clock()))).updates
    assert [u.device for u in updates] == [a.pseudonym, b.pseudonym]
    assert [u.number for u in updates] == [0, 1]
    for u in updates:
        observer.open(u)
    with pytest.raises(ReplayError):
        observer.open(updates[0])


def test_updates_are_authenticated(world: World) -> None:
    dev = world.device()
    _, observer = _subscribe(world, [dev.pseudonym])
    (update,) = world.bolster.store(dev.store_request(heart_rate(70, world.clock()))).updates
    with pytest.raises(RequestAuthenticationError):
        observer.open(dataclasses.replace(update, reason=UpdateReason.CROSSING))
    observer.open(update)


def test_observer_rate_limit_drops_and_counts() -> None:
    w = World(config=BolsterConfig(update_rate=1.0, update_burst=2, max_block_age=None))
    devices = [w.device(f"iomt://facility-a/hr-{i}") for i in range(4)]
    _, observer = _subscribe(w, [d.pseudonym for d in devices])
    delivered = []
    for d in devices:
        delivered += w.bolster.store(d.store_request(heart_rate(70, w.clock()))).updates
    assert len(delivered) == 2  # the burst; two more were due but dropped
    w.clock.advance(3 * SECOND)
    (late,) = w.bolster.store(devices[0].store_request(heart_rate(71, w.clock()))).updates
    assert late.dropped == 2
    for u in (*delivered, late):
        observer.open(u)


def test_observe_denied_is_logged(world: World) -> None:
    dev = world.device()
    req = world.insurer.observe("bolster-a", [dev.pseudonym], duration=SECOND)
    with pytest.raises(ObserveDeniedError) as info:
        world.bolster.observe(req)
    assert info.value.transaction is not None
    assert info.value.transaction.tx_type is TxType.OBSERVE
    hreq = world.patient.history("bolster-a", dev.pseudonym)
    entries = world.patient.open_history(hreq, world.bolster.history(hreq)).entries
    assert [(e.actor, e.outcome) for e in entries if e.tx_type is TxType.OBSERVE] == [
        ("insurer-x", Outcome.DENIED)
    ]


def test_a_group_with_one_forbidden_device_is_denied_whole(world: World) -> None:
    mine = world.device("iomt://facility-a/hr-1", owner="patient-7")
    theirs = world.device("iomt://facility-a/hr-2", owner="patient-9")
    req = world.patient.observe("bolster-a", [mine.pseudonym, theirs.pseudonym], duration=SECOND)
    with pytest.raises(ObserveDeniedError):
        world.bolster.observe(req)
    ok = world.patient.observe("bolster-a", [mine.pseudonym], duration=SECOND)
    assert world.bolster.observe(ok).devices == (mine.pseudonym,)


def test_subscriptions_expire(world: World) -> None:
    dev = world.device()
    req = world.physician.observe("bolster-a", [dev.pseudonym], duration=5 * SECOND)
    world.bolster.observe(req)
    assert world.bolster.store(dev.store_request(heart_rate(70, world.clock()))).updates
    world.clock.advance(6 * SECOND)
    assert world.bolster.store(dev.store_request(heart_rate(70, world.clock()))).updates == ()
    assert world.bolster.subscriptions() == []


def test_token_bucket() -> None:
    b = TokenBucket(2.0, 3, now=0)
    assert [b.take(0) for _ in range(4)] == [True, True, True, False]
    assert b.retry_after(0) == SECOND // 2 + 1
    assert b.take(SECOND // 2 + 1)
    assert not b.take(SECOND // 2 + 1)
    with pytest.raises(ValueError):
        TokenBucket(0, 1, now=0)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3 * SECOND), st.floats(30, 200, allow_nan=False)),
        min_size=1,
        max_size=60,
    ),
    interval=st.integers(0, 2 * SECOND),
)
def test_engine_periodic_updates_respect_the_interval(
    steps: list[tuple[int, float]], interval: int
) -> None:
    """Property: between two PERIODIC updates at least ``interval`` passes, and every
    crossing of the band is delivered (the rate limit is generous here)."""
    engine = ObserveEngine(RateLimit(1e9, 1e9))
    sub = SubscriptionState(
        b"s" * 16, "obs", frozenset({"d"}), Threshold("bpm", 60, 100), interval, 1 << 62
    )
    engine.add(sub)
    now, last_periodic, outside = 0, None, False
    for dt, bpm in steps:
        now += dt
        out = engine.on_data("d", Measurement("hr", now, (("bpm", bpm),)), now)
        crossed = (not 60 <= bpm <= 100) != outside
        outside = not 60 <= bpm <= 100
        reasons = [d.reason for d in out]
        if crossed:
            assert reasons == [UpdateReason.CROSSING]
        if reasons == [UpdateReason.PERIODIC]:
            assert last_periodic is None or now - last_periodic >= interval
        if reasons:
            last_periodic = now
