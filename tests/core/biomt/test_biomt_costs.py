"""Measurement hooks: per-phase costs of each transaction type, and the no-crypto base."""

from __future__ import annotations

import pytest
from biomt_world import SECOND, World, heart_rate

from iomt.core.biomt import AccessDeniedError, BaseBolster, CostMeter, Phase, Threshold


class StepTimer:
    """A deterministic timer: each reading advances by 1 µs."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def test_the_meter_splits_each_operation_into_phases() -> None:
    meter = CostMeter(timer=StepTimer())
    w = World(meter=meter)
    dev = w.device()
    for _ in range(3):
        w.store(dev, 70)
    w.bolster.access(w.physician.access("bolster-a", dev.pseudonym))
    w.bolster.observe(w.physician.observe("bolster-a", [dev.pseudonym], duration=SECOND))
    assert set(meter.operations()) >= {"origin", "store", "access", "observe"}
    for op in ("store", "access", "observe"):
        summary = meter.summary(op)
        assert summary.count >= 1
        assert summary.phases[Phase.CRYPTO] > 0
        assert summary.phases[Phase.LEDGER] > 0
        assert summary.phases[Phase.POLICY] > 0
    assert 0 < meter.summary("store").share(Phase.LEDGER) < 1
    # failed operations are not recorded
    before = meter.summary("access").count
    with pytest.raises(AccessDeniedError):
        w.bolster.access(w.insurer.access("bolster-a", dev.pseudonym))
    assert meter.summary("access").count == before


def test_laps_partition_the_total() -> None:
    meter = CostMeter(timer=StepTimer())
    op = meter.start("x")
    op.lap(Phase.CRYPTO)
    op.lap(Phase.LEDGER)
    op.lap(Phase.CRYPTO)
    op.finish(Phase.POLICY)
    (sample,) = meter.samples("x")
    assert sample == {Phase.CRYPTO: 2000, Phase.LEDGER: 1000, Phase.POLICY: 1000, Phase.OTHER: 0}
    assert meter.totals("x") == [4000]
    assert meter.summary("x").share(Phase.CRYPTO) == 0.5
    meter.enabled = False
    meter.start("y").finish()
    assert meter.samples("y") == []


def test_base_mode_does_the_same_data_handling_without_security() -> None:
    now = [0]
    base = BaseBolster(clock=lambda: now[0], meter=CostMeter())
    sub = base.observe(
        "dr-alice", ("dev-1",), interval=2 * SECOND, threshold=Threshold("bpm", 50, 120)
    )
    assert len(sub) == 16
    updates = []
    for bpm in (80, 81, 130):
        now[0] += SECOND // 2
        _, due = base.store("dev-1", heart_rate(bpm, now[0]).to_bytes())
        updates += due
    assert [u.reason.name for u in updates] == ["PERIODIC", "CROSSING"]
    records = base.access("dr-alice", "dev-1", since=SECOND)
    assert [r.measurement.value("bpm") for r in records] == [81, 130]
    assert base.meter.summary("store").count == 3
