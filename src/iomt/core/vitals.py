"""Plausible, seeded synthetic vital signs for simulated IoMT devices.

The paper's simulator has heart-rate sensors and blood-pressure cuffs. Readings here
follow a mean-reverting random walk around a per-patient baseline (an Ornstein-Uhlenbeck
step), so consecutive readings look like a real monitor's and the same seed always gives
the same series. Values stay inside physiological limits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import IntEnum

from iomt.errors import ConfigurationError


class VitalKind(IntEnum):
    """Matches iomt_interfaces/msg/Vitals KIND_* constants."""

    HEART_RATE = 0
    BLOOD_PRESSURE = 1

    @classmethod
    def parse(cls, value: str | int) -> VitalKind:
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper().replace("-", "_")]
        except KeyError:
            raise ConfigurationError(
                f"unknown vital kind {value!r}: heart_rate | blood_pressure"
            ) from None


@dataclass(frozen=True, slots=True)
class Reading:
    kind: VitalKind
    seq: int
    heart_rate_bpm: float = 0.0
    systolic_mmhg: float = 0.0
    diastolic_mmhg: float = 0.0


class VitalsGenerator:
    """Deterministic series of readings for one device."""

    def __init__(self, kind: VitalKind, seed: int) -> None:
        self.kind = kind
        self._rng = random.Random(seed)
        rng = self._rng
        self._hr_base = rng.uniform(58, 92)
        self._sys_base = rng.uniform(105, 145)
        self._dia_base = self._sys_base * rng.uniform(0.58, 0.68)
        self._hr, self._sys, self._dia = self._hr_base, self._sys_base, self._dia_base
        self._seq = 0

    def next(self) -> Reading:
        rng = self._rng
        self._seq += 1
        if self.kind is VitalKind.HEART_RATE:
            self._hr += 0.2 * (self._hr_base - self._hr) + rng.gauss(0, 2.0)
            self._hr = min(max(self._hr, 40.0), 180.0)
            return Reading(self.kind, self._seq, heart_rate_bpm=round(self._hr, 1))
        self._sys += 0.2 * (self._sys_base - self._sys) + rng.gauss(0, 3.0)
        self._dia += 0.2 * (self._dia_base - self._dia) + rng.gauss(0, 2.0)
        self._sys = min(max(self._sys, 80.0), 200.0)
        self._dia = min(max(self._dia, 45.0), 120.0, self._sys - 15.0)
        return Reading(
            self.kind,
            self._seq,
            systolic_mmhg=float(round(self._sys)),  # whole mmHg, as a float field's value
            diastolic_mmhg=float(round(self._dia)),
        )
