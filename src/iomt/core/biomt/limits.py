"""Flooding and replay protection: token buckets and a bounded nonce cache.

BIoMT's Observe threshold exists to "control the network overhead and reduce the likelihood
of certain security attacks (Flooding attack, denial of service)". Besides the per-
subscription minimal interval, each requester gets token buckets (one for the requests it
sends, one for the updates it receives): a burst is allowed, the sustained rate is bounded.
Time is the injected clock (nanoseconds).

:class:`NonceCache` remembers request nonces until their request could no longer pass the
clock-skew check, and fails closed when full.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RateLimitedError, ReplayError

__all__ = ["NonceCache", "RateLimiter", "TokenBucket"]

_NS = 1_000_000_000


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored; starts full."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, *, now: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def _refill(self, now: int) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate / _NS)
            self._last = now

    def take(self, now: int, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available."""
        self._refill(now)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after(self, now: int, cost: float = 1.0) -> int:
        """Nanoseconds until ``cost`` tokens are available."""
        self._refill(now)
        missing = max(0.0, cost - self._tokens)
        return int(missing * _NS / self.rate) + (1 if missing else 0)

    @property
    def tokens(self) -> float:
        return self._tokens


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate: float
    burst: float


class RateLimiter:
    """One token bucket per key (requester name, device pseudonym)."""

    __slots__ = ("_buckets", "limit")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str, now: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.limit.rate, self.limit.burst, now=now)
        return bucket

    def allow(self, key: str, now: int) -> bool:
        return self._bucket(key, now).take(now)

    def require(self, key: str, now: int) -> None:
        """Spend a token or raise :class:`RateLimitedError`."""
        bucket = self._bucket(key, now)
        if not bucket.take(now):
            raise RateLimitedError(
                f"{key!r} exceeds {self.limit.rate:g} requests/s",
                retry_after=bucket.retry_after(now),
            )


class NonceCache:
    """Seen ``(scope, nonce)`` pairs, each kept until ``until``; fails closed when full."""

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._seen: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: bytes, *, until: int, now: int) -> None:
        """Record ``key`` or raise :class:`ReplayError` if it is still recorded."""
        expiry = self._seen.get(key)
        if expiry is not None and expiry >= now:
            raise ReplayError("request nonce already used")
        if len(self._seen) >= self._capacity:
            self._seen = {k: v for k, v in self._seen.items() if v >= now}
            if len(self._seen) >= self._capacity:
                raise ReplayError("nonce cache full; refusing requests until entries expire")
        self._seen[key] = until
