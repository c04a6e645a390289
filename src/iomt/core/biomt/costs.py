"""Measurement hooks: where a bolster's time goes, per transaction type (the paper's Fig. 3/4).

BIoMT reports the delay each transaction type adds over a base with no cryptography, and the
bolster's power. :class:`CostMeter` lets an experiment see both inside the core: each
operation is split into phases --

* ``crypto`` -- AEAD, signatures, ECIES, key derivation;
* ``ledger`` -- appending to the ledger and reading it (SQLite commits live here);
* ``policy`` -- authentication bookkeeping that is not cryptography: registry look-ups,
  replay and rate checks, the privacy-header decision, Observe matching;
* ``other`` -- decoding and building values.

A phase is charged by :meth:`OpTimer.lap`: the time since the previous lap goes to the named
phase, so phases never overlap and they sum to the operation's total. The timer is
injectable (``time.perf_counter_ns`` by default); a bolster built without a meter uses
:data:`NULL_METER`, whose laps cost one attribute look-up.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from iomt.clock import ClockNs

__all__ = ["NULL_METER", "CostMeter", "CostSummary", "OpTimer", "Phase"]


class Phase(StrEnum):
    CRYPTO = "crypto"
    LEDGER = "ledger"
    POLICY = "policy"
    OTHER = "other"

    # every lap indexes a dict by phase: hash as the str it is (Enum's own hash is Python code)
    __hash__ = str.__hash__


_PHASES = tuple(Phase)


class OpTimer:
    """Times one operation; ``lap(phase)`` charges the time since the last lap."""

    __slots__ = ("_meter", "_name", "_phases", "_start", "_t", "_timer")

    def __init__(self, meter: CostMeter, name: str, timer: ClockNs) -> None:
        self._meter = meter
        self._name = name
        self._timer = timer
        self._phases = dict.fromkeys(_PHASES, 0)
        self._start = self._t = timer()

    def lap(self, phase: Phase) -> None:
        t = self._timer()
        self._phases[phase] += t - self._t
        self._t = t

    def finish(self, phase: Phase = Phase.OTHER) -> None:
        """Charge the tail to ``phase`` and record the operation (failed ones are not)."""
        self.lap(phase)
        self._meter._record(self._name, self._phases)


class _NullTimer(OpTimer):
    __slots__ = ()

    def __init__(self) -> None:
        pass

    def lap(self, phase: Phase) -> None:
        return None

    def finish(self, phase: Phase = Phase.OTHER) -> None:
        return None


_NULL_TIMER = _NullTimer()


@dataclass(frozen=True, slots=True)
class CostSummary:
    """Medians over the kept samples of one operation, in nanoseconds."""

    operation: str
    count: int
    total: float
    phases: dict[str, float]

    def share(self, phase: Phase | str) -> float:
        """Fraction of the median total spent in ``phase`` (by phase medians)."""
        whole = sum(self.phases.values())
        return self.phases.get(str(phase), 0.0) / whole if whole else 0.0


class CostMeter:
    """Keeps the last ``keep`` samples of each operation's phase breakdown."""

    __slots__ = ("_counts", "_keep", "_samples", "_timer", "enabled")

    def __init__(self, *, timer: ClockNs = time.perf_counter_ns, keep: int = 4096):
        self._timer = timer
        self._keep = keep
        self._samples: dict[str, deque[dict[Phase, int]]] = {}
        self._counts: dict[str, int] = {}
        self.enabled = True

    def start(self, operation: str) -> OpTimer:
        if not self.enabled:
            return _NULL_TIMER
        return OpTimer(self, operation, self._timer)

    def _record(self, operation: str, phases: dict[Phase, int]) -> None:
        q = self._samples.get(operation)
        if q is None:
            q = self._samples[operation] = deque(maxlen=self._keep)
        q.append(phases)
        self._counts[operation] = self._counts.get(operation, 0) + 1

    def operations(self) -> list[str]:
        return sorted(self._samples)

    def samples(self, operation: str) -> list[dict[Phase, int]]:
        return list(self._samples.get(operation, ()))

    def totals(self, operation: str) -> list[int]:
        return [sum(s.values()) for s in self._samples.get(operation, ())]

    def summary(self, operation: str) -> CostSummary:
        samples = self._samples.get(operation)
        if not samples:
            return CostSummary(operation, 0, 0.0, {str(p): 0.0 for p in _PHASES})
        return CostSummary(
            operation,
            self._counts[operation],
            statistics.median(sum(s.values()) for s in samples),
            {str(p): statistics.median(s[p] for s in samples) for p in _PHASES},
        )

    def reset(self) -> None:
        self._samples.clear()
        self._counts.clear()


NULL_METER = CostMeter()
NULL_METER.enabled = False
