"""The injected clock and randomness of the BIoMT core.

Every protocol object takes ``clock`` (nanoseconds since the Unix epoch, as ROS ``Time`` and
the ledger use; ``time.time_ns`` in production) and ``rng`` (``rng(n)`` returns ``n`` random
bytes; ``os.urandom`` in production). Tests inject fakes to drive time and make keys
reproducible; nothing in the core reads the wall clock or the OS RNG by itself.
"""

from __future__ import annotations

from collections.abc import Callable

from iomt.clock import ClockNs

__all__ = ["MILLISECOND", "SECOND", "ClockNs", "Rng"]

Rng = Callable[[int], bytes]

SECOND = 1_000_000_000
MILLISECOND = 1_000_000
