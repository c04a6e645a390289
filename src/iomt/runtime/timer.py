"""Timer: a periodic callback run by the executor (no threads of its own)."""

from __future__ import annotations

import time
from collections.abc import Callable

from iomt.clock import ClockS
from iomt.errors import ConfigurationError
from iomt.runtime import api


class Timer(api.Timer):
    def __init__(
        self,
        period_s: float,
        callback: Callable[[], None],
        *,
        clock: ClockS = time.monotonic,
    ) -> None:
        if period_s <= 0:
            raise ConfigurationError(f"timer period must be positive, got {period_s}")
        self.period_s = period_s
        self.callback = callback
        self._clock = clock
        self.next_call = clock() + period_s
        self.cancelled = False
        # Set by the executor that schedules this timer: called by reset() when the timer
        # is no longer in its schedule (it dropped it after a cancel).
        self.scheduled = False
        self.rearm: Callable[[Timer], None] | None = None

    def cancel(self) -> None:
        self.cancelled = True

    def reset(self) -> None:
        """Restart the period from now; a cancelled timer runs again."""
        self.cancelled = False
        self.next_call = self._clock() + self.period_s
        if not self.scheduled and self.rearm is not None:
            self.rearm(self)

    def time_until_next_call(self) -> float:
        return max(0.0, self.next_call - self._clock())

    def fire(self, now: float) -> None:
        # Skip missed periods instead of bursting to catch up after a stall.
        periods = max(1, int((now - self.next_call) // self.period_s) + 1)
        self.next_call += periods * self.period_s
        self.callback()
