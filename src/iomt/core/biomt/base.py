"""The paper's "base" for Fig. 3: the same data handling, no cryptography and no ledger.

BIoMT compares each transaction type's delay with "the state-of-the-art network deployment
techniques, with no cryptography deployed". :class:`BaseBolster` is that base, run in the
same process as the real :class:`~iomt.core.biomt.bolster.Bolster` so an experiment measures
the overhead in one run: a Store decodes the same measurement bytes and keeps them in a
dict; an Access looks up a device's records in a time range; an Observe subscription is
matched by the same :class:`~iomt.core.biomt.observe.ObserveEngine` (thresholds, intervals,
rate limits) and its updates are plain. No authentication, no policy, no encryption, no
log: it is a yardstick, never a deployment mode.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .clock import SECOND, ClockNs
from .costs import NULL_METER, CostMeter, Phase
from .limits import RateLimit
from .messages import DataRecord, Measurement, Threshold, UpdateReason
from .observe import ObserveEngine, SubscriptionState

__all__ = ["BaseBolster", "PlainUpdate"]


@dataclass(frozen=True, slots=True)
class PlainUpdate:
    observer: str
    device: str
    seq: int
    reason: UpdateReason
    measurement_bytes: bytes


@dataclass(slots=True)
class _Series:
    times: list[int] = field(default_factory=list)
    records: list[tuple[int, bytes]] = field(default_factory=list)


class BaseBolster:
    """Plain store / lookup / observe with the bolster's data handling and nothing else."""

    def __init__(
        self,
        *,
        clock: ClockNs,
        meter: CostMeter | None = None,
        update_rate: float = 20.0,
        update_burst: float = 40.0,
    ) -> None:
        self._clock = clock
        self.meter = NULL_METER if meter is None else meter
        self._series: dict[str, _Series] = {}
        self._seq = 0
        self._engine = ObserveEngine(RateLimit(update_rate, update_burst))
        self._next_sub = 0

    def store(self, device: str, payload: bytes) -> tuple[int, list[PlainUpdate]]:
        """Keep one measurement (encoded as the real Store's plaintext); return its sequence
        number and the plain updates due."""
        op = self.meter.start("store")
        now = self._clock()
        measurement = Measurement.from_bytes(payload)
        series = self._series.setdefault(device, _Series())
        seq = self._seq
        self._seq += 1
        series.times.append(max(now, series.times[-1]) if series.times else now)
        series.records.append((seq, payload))
        op.lap(Phase.LEDGER)
        deliveries = self._engine.on_data(device, measurement, now)
        updates = [
            PlainUpdate(d.subscription.requester, device, seq, d.reason, payload)
            for d in deliveries
        ]
        op.finish(Phase.POLICY)
        return seq, updates

    def access(
        self,
        requester: str,
        device: str,
        *,
        since: int = 0,
        until: int = (1 << 63) - 1,
        limit: int = 1000,
    ) -> list[DataRecord]:
        op = self.meter.start("access")
        series = self._series.get(device)
        out: list[DataRecord] = []
        if series is not None:
            lo = bisect.bisect_left(series.times, since)
            hi = min(bisect.bisect_left(series.times, until), lo + limit)
            out = [DataRecord(seq, Measurement.from_bytes(p)) for seq, p in series.records[lo:hi]]
        op.finish(Phase.LEDGER)
        return out

    def observe(
        self,
        requester: str,
        devices: tuple[str, ...],
        *,
        duration: int = 3600 * SECOND,
        interval: int = 0,
        threshold: Threshold | None = None,
    ) -> bytes:
        op = self.meter.start("observe")
        now = self._clock()
        self._next_sub += 1
        sub_id = self._next_sub.to_bytes(16, "big")
        self._engine.add(
            SubscriptionState(
                sub_id, requester, frozenset(devices), threshold, interval, now + duration
            )
        )
        op.finish(Phase.POLICY)
        return sub_id
