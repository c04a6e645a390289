"""Cost metering outside the protocol code: operations and charged steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from iomt.core.biomt.costs import CostMeter, Phase
from iomt.core.biomt.metering import charged, meter_steps, metered


class _Ticks:
    """A timer that advances 1000 ns per read."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 1000
        return self.now


class _Service:
    def __init__(self, meter: CostMeter) -> None:
        self.meter = meter

    @metered("op")
    def op(self, fail: bool = False) -> str:
        self.crypto()
        if fail:
            raise ValueError("refused")
        return "done"

    @metered(lambda kind: f"op-{kind}")
    def named(self, kind: str) -> str:
        return kind

    @metered("always", phase=Phase.CRYPTO, failures=True)
    def always(self) -> None:
        raise ValueError("refused")

    @charged(Phase.CRYPTO)
    def crypto(self) -> None:
        self.ledger()

    @charged(Phase.LEDGER)
    def ledger(self) -> None:
        pass


def test_charged_steps_partition_the_operation_into_phases() -> None:
    meter = CostMeter(timer=_Ticks())
    assert _Service(meter).op() == "done"
    # reads: start; crypto in (policy 1), ledger in (crypto 1), ledger out (ledger 1),
    # crypto out (crypto 1), finish (policy 1)
    (sample,) = meter.samples("op")
    assert sample == {Phase.CRYPTO: 2000, Phase.LEDGER: 1000, Phase.POLICY: 2000, Phase.OTHER: 0}


def test_a_refused_operation_is_not_a_sample_unless_asked() -> None:
    meter = CostMeter(timer=_Ticks())
    service = _Service(meter)
    with pytest.raises(ValueError):
        service.op(fail=True)
    assert meter.samples("op") == []
    with pytest.raises(ValueError):
        service.always()
    assert meter.totals("always") == [1000]
    assert meter.summary("always").share(Phase.CRYPTO) == 1.0


def test_the_operation_name_may_come_from_the_call() -> None:
    meter = CostMeter(timer=_Ticks())
    assert _Service(meter).named("access") == "access"
    assert meter.operations() == ["op-access"]


def test_steps_outside_an_operation_and_a_disabled_meter_charge_nothing() -> None:
    meter = CostMeter(timer=_Ticks())
    service = _Service(meter)
    service.crypto()  # e.g. replay, outside any operation
    assert meter.operations() == []
    meter.enabled = False
    assert service.op() == "done"
    assert meter.operations() == []


def test_meter_steps_charges_the_steps_a_service_names() -> None:
    meter = CostMeter(timer=_Ticks())

    class _Protocol:
        PHASES: ClassVar[Mapping[str, Phase]] = {"_decode": Phase.OTHER}

        def decode(self) -> int:
            return self._decode(b"abc")

        def _decode(self, data: bytes) -> int:
            return len(data)

    class _Facade:
        def __init__(self) -> None:
            self.meter = meter
            self.protocol = _Protocol()
            meter_steps(self.protocol)

        @metered("decode")
        def decode(self) -> int:
            return self.protocol.decode()

    assert _Facade().decode() == 3
    (sample,) = meter.samples("decode")
    assert sample == {Phase.CRYPTO: 0, Phase.LEDGER: 0, Phase.POLICY: 2000, Phase.OTHER: 1000}
    assert _Protocol().decode() == 3  # the class itself is left as it is


def test_a_phase_is_a_dict_key_as_its_name() -> None:
    phases = dict.fromkeys(Phase, 0)
    phases[Phase.CRYPTO] += 1
    assert phases["crypto"] == 1
    assert len({Phase.CRYPTO, "crypto"}) == 1
