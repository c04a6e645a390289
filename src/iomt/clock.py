"""The injected clocks, with their unit in their name.

Sans-IO objects never read time themselves; they are given a clock. Two units are in use,
and a float of seconds passed where nanoseconds are expected is off by 10**9 without any
type error, so each has its own name:

* :data:`ClockS` -- seconds as a float (``time.time``, ``time.monotonic``): tokens,
  sessions, the keystore, the sharing core, timers;
* :data:`ClockNs` -- nanoseconds as an int (``time.time_ns`` as ROS ``Time`` and the ledger
  use; ``time.perf_counter_ns`` for cost timers): the BIoMT core and the ledger.

Which origin (Unix epoch or an arbitrary monotonic one) a clock must have is stated where
it is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

__all__ = ["ClockNs", "ClockS"]

ClockS: TypeAlias = Callable[[], float]
ClockNs: TypeAlias = Callable[[], int]
