"""Synthetic vital signs: seeded, physiological, and typed as the Vitals message's fields."""

from __future__ import annotations

import pytest

from iomt.core.vitals import VitalKind, VitalsGenerator
from iomt.errors import ConfigurationError


@pytest.mark.parametrize("kind", list(VitalKind))
def test_every_reading_field_is_a_float_as_the_message_declares(kind: VitalKind) -> None:
    # float32 fields: rclpy's C layer aborts the process on an int there.
    for reading in (VitalsGenerator(kind, seed=5).next() for _ in range(50)):
        for value in (reading.heart_rate_bpm, reading.systolic_mmhg, reading.diastolic_mmhg):
            assert type(value) is float


def test_the_same_seed_gives_the_same_series_within_physiological_limits() -> None:
    a = VitalsGenerator(VitalKind.BLOOD_PRESSURE, seed=9)
    b = VitalsGenerator(VitalKind.BLOOD_PRESSURE, seed=9)
    series = [a.next() for _ in range(500)]
    assert series == [b.next() for _ in range(500)]
    for r in series:
        assert 80.0 <= r.systolic_mmhg <= 200.0
        assert 45.0 <= r.diastolic_mmhg <= r.systolic_mmhg - 15.0 + 0.5
        assert r.heart_rate_bpm == 0.0
    hr = [VitalsGenerator(VitalKind.HEART_RATE, seed=9).next() for _ in range(3)]
    assert all(40.0 <= r.heart_rate_bpm <= 180.0 for r in hr)


def test_an_unknown_kind_is_a_configuration_error() -> None:
    assert VitalKind.parse("blood-pressure") is VitalKind.BLOOD_PRESSURE
    with pytest.raises(ConfigurationError, match="unknown vital kind"):
        VitalKind.parse("glucose")
