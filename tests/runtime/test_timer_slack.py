"""Long timers fire on a shared grid (fewer wake-ups for a process of many devices)."""

from __future__ import annotations

import pytest

from iomt.runtime.timer import SLACK_S, Timer


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _on_grid(t: float, phase: float) -> bool:
    steps = (t - phase) / SLACK_S
    return abs(steps - round(steps)) < 1e-6


@pytest.mark.parametrize("start", [100.0, 100.0137, 100.0999, 12345.678])
def test_timers_of_a_second_or_more_share_a_grid_and_keep_their_period(start: float) -> None:
    clock = _Clock(start)
    timers = [Timer(p, lambda: None, clock=clock, phase_s=0.03) for p in (1.0, 1.0, 2.0, 20.0)]
    for t in timers:
        assert _on_grid(t.next_call, 0.03)
        assert start + t.period_s <= t.next_call < start + t.period_s + SLACK_S
    t = timers[0]
    first = t.next_call
    for k in range(1, 50):
        clock.now = t.next_call
        t.fire(clock.now)
        assert t.next_call == pytest.approx(first + k * t.period_s)
        assert _on_grid(t.next_call, 0.03)


def test_short_timers_keep_exact_times() -> None:
    clock = _Clock(100.0137)
    t = Timer(0.25, lambda: None, clock=clock, phase_s=0.03)
    assert t.next_call == pytest.approx(100.2637)
    clock.now = 200.0001
    t.reset()
    assert t.next_call == pytest.approx(200.2501)


def test_a_reset_long_timer_lands_on_the_grid_again() -> None:
    clock = _Clock(50.0)
    t = Timer(1.0, lambda: None, clock=clock, phase_s=0.07)
    clock.now = 73.4512
    t.reset()
    assert _on_grid(t.next_call, 0.07)
    assert 74.4512 <= t.next_call < 74.4512 + SLACK_S


def test_a_stalled_long_timer_skips_missed_periods_and_stays_on_the_grid() -> None:
    clock = _Clock(10.0)
    fired: list[float] = []
    t = Timer(1.0, lambda: fired.append(clock.now), clock=clock, phase_s=0.0)
    clock.now = t.next_call + 3.5  # the executor was stalled for three and a half periods
    t.fire(clock.now)
    assert len(fired) == 1
    assert clock.now < t.next_call <= clock.now + 1.0 + SLACK_S
    assert _on_grid(t.next_call, 0.0)
