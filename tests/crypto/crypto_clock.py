"""An injectable clock for the security layer's tests (uniquely named: tests/ has no packages)."""

from __future__ import annotations


class FakeClock:
    """``clock()`` returns the current time; ``advance`` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
