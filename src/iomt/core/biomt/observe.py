"""Device monitoring (Observe): which observer gets which update when new data is stored.

The paper: "medical residents can request to monitor a certain or a group of devices ...
The bolster defines a threshold for the periodic data update to control the network
overhead and reduce the likelihood of certain security attacks (Flooding attack, denial of
service)", and devices "communicate their measurements only when the threshold is reached".
:class:`ObserveEngine` decides, for each stored measurement, which subscriptions are due:

* **crossing** -- the subscription has a :class:`~iomt.core.biomt.messages.Threshold` band
  on one value and the reading moved from inside to outside the band or back (the first
  reading outside counts as a crossing): delivered at once, an alarm does not wait;
* **periodic** -- at least ``interval`` has passed since the last update for that device
  (the interval is at least the privacy header's ``observe_interval`` for the role);
* otherwise nothing is sent.

A due update still needs a token from its observer's update bucket (shared by all of the
observer's subscriptions); one that finds none is dropped and counted, and the next update
delivered says how many were dropped. Subscriptions end at ``expires_at`` or when their
last device is removed. The engine is pure bookkeeping; the bolster encrypts what it
returns (and the no-crypto base mode does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .limits import RateLimit, RateLimiter
from .messages import Measurement, Threshold, UpdateReason

__all__ = ["Delivery", "ObserveEngine", "SubscriptionState"]


@dataclass(slots=True, eq=False)
class SubscriptionState:
    """A live subscription (mutable bookkeeping, owned by the engine)."""

    subscription_id: bytes
    requester: str
    devices: frozenset[str]
    threshold: Threshold | None
    interval: int
    expires_at: int
    key: object = None  # the bolster's AEAD for this subscription (None in base mode)
    number: int = 0
    dropped: int = 0
    last_sent: dict[str, int] = field(default_factory=dict)
    outside: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One update to send: to whom, about which device, why, and how many were dropped."""

    subscription: SubscriptionState
    device: str
    number: int
    reason: UpdateReason
    dropped: int


class ObserveEngine:
    """Subscriptions by device, thresholds, intervals and per-observer update limits."""

    __slots__ = ("_by_device", "_limiter", "_subs")

    def __init__(self, update_limit: RateLimit) -> None:
        self._subs: dict[bytes, SubscriptionState] = {}
        self._by_device: dict[str, set[bytes]] = {}
        self._limiter = RateLimiter(update_limit)

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[SubscriptionState]:
        return iter(list(self._subs.values()))

    def get(self, subscription_id: bytes) -> SubscriptionState | None:
        return self._subs.get(subscription_id)

    def add(self, sub: SubscriptionState) -> None:
        self._subs[sub.subscription_id] = sub
        for d in sub.devices:
            self._by_device.setdefault(d, set()).add(sub.subscription_id)

    def discard(self, subscription_id: bytes) -> None:
        sub = self._subs.pop(subscription_id, None)
        if sub is None:
            return
        for d in sub.devices:
            ids = self._by_device.get(d)
            if ids is not None:
                ids.discard(subscription_id)
                if not ids:
                    del self._by_device[d]

    def drop_device(self, device: str) -> None:
        """A removed device leaves every subscription; empty subscriptions end."""
        for sid in list(self._by_device.pop(device, ())):
            sub = self._subs[sid]
            sub.devices = sub.devices - {device}
            if not sub.devices:
                self._subs.pop(sid, None)

    def expire(self, now: int) -> int:
        """End subscriptions past their expiry; return how many ended."""
        ended = [sid for sid, s in self._subs.items() if s.expires_at <= now]
        for sid in ended:
            self.discard(sid)
        return len(ended)

    def on_data(self, device: str, measurement: Measurement, now: int) -> list[Delivery]:
        """The updates due for a new measurement of ``device`` at time ``now``."""
        ids = self._by_device.get(device)
        if not ids:
            return []
        out: list[Delivery] = []
        for sid in sorted(ids):
            sub = self._subs[sid]
            if sub.expires_at <= now:
                self.discard(sid)
                continue
            crossing = False
            if sub.threshold is not None:
                outside = sub.threshold.outside(measurement)
                if outside is not None:
                    crossing = outside != sub.outside.get(device, False)
                    sub.outside[device] = outside
            last = sub.last_sent.get(device)
            periodic = last is None or now - last >= sub.interval
            if not (crossing or periodic):
                continue
            if not self._limiter.allow(sub.requester, now):
                sub.dropped += 1
                continue
            out.append(
                Delivery(
                    sub,
                    device,
                    sub.number,
                    UpdateReason.CROSSING if crossing else UpdateReason.PERIODIC,
                    sub.dropped,
                )
            )
            sub.number += 1
            sub.dropped = 0
            sub.last_sent[device] = now
        return out
