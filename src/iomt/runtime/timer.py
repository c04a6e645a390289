"""Timer: a periodic callback run by the executor (no threads of its own).

Timers of a second or more fire on a grid of :data:`SLACK_S` (20 ms), as the kernel's timer
slack does: a process of 200 devices, each sampling once a second and checking its
announcement's listeners once a second, is woken at most 50 times a second for a few
callbacks each instead of 400 times for one. Each wake-up is a context switch and a wait
set round trip. A callback runs at most one grid step late and keeps its period (the grid
divides whole seconds); the grid's phase is drawn once per process, so processes do not
all wake at the same instant. A 100 ms grid halved the idle 400-device ward's CPU but cost
throughput under load (bursts of 20 readings held requests back); 20 ms keeps the bursts
to a few callbacks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from iomt.clock import ClockS
from iomt.errors import ConfigurationError
from iomt.runtime import api

__all__ = ["SLACK_MIN_PERIOD_S", "SLACK_S", "Timer"]

#: the grid long timers fire on, seconds
SLACK_S = 0.02
#: timers with a shorter period (call deadlines, polls, first attempts) keep exact times
SLACK_MIN_PERIOD_S = 1.0
_PHASE = random.random() * SLACK_S  # spreads wake-ups; not a secret


class Timer(api.Timer):
    def __init__(
        self,
        period_s: float,
        callback: Callable[[], None],
        *,
        clock: ClockS = time.monotonic,
        phase_s: float = _PHASE,
    ) -> None:
        if period_s <= 0:
            raise ConfigurationError(f"timer period must be positive, got {period_s}")
        self.period_s = period_s
        self.callback = callback
        self._clock = clock
        self._slack = period_s >= SLACK_MIN_PERIOD_S
        self._phase = phase_s
        self.next_call = self._on_grid(clock() + period_s)
        self.cancelled = False
        # Set by the executor that schedules this timer: called by reset() when the timer
        # is no longer in its schedule (it dropped it after a cancel).
        self.scheduled = False
        self.rearm: Callable[[Timer], None] | None = None

    def _on_grid(self, t: float) -> float:
        """``t``, or for a long timer the next grid point at or after it."""
        if not self._slack:
            return t
        # the epsilon keeps a time already on the grid there despite float rounding
        steps = math.ceil((t - self._phase) / SLACK_S - 1e-6)
        return steps * SLACK_S + self._phase

    def cancel(self) -> None:
        self.cancelled = True

    def reset(self) -> None:
        """Restart the period from now; a cancelled timer runs again."""
        self.cancelled = False
        self.next_call = self._on_grid(self._clock() + self.period_s)
        if not self.scheduled and self.rearm is not None:
            self.rearm(self)

    def time_until_next_call(self) -> float:
        return max(0.0, self.next_call - self._clock())

    def fire(self, now: float) -> None:
        # Skip missed periods instead of bursting to catch up after a stall.
        periods = max(1, int((now - self.next_call) // self.period_s) + 1)
        self.next_call = self._on_grid(self.next_call + periods * self.period_s)
        self.callback()
