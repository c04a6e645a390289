"""What a bolster node measures (the Fig. 3/4 stand-in), kept out of its handlers: each
service handler's thread CPU time and wall time and its outcomes, per operation, and the
core's :class:`~iomt.core.biomt.CostMeter` phases, as the node's results record has them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from iomt.core.biomt import CostMeter
from iomt.msg import BolsterService
from iomt.runtime import Responder

__all__ = ["Handler", "ServiceCosts", "phases"]

Handler = Callable[[Any, Responder], int | None]

_R = BolsterService.Response
STATUS_NAMES = {
    _R.STATUS_DENIED: "denied",
    _R.STATUS_REFUSED: "refused",
    _R.STATUS_REMOVED: "removed",
    _R.STATUS_UNAVAILABLE: "unavailable",
    _R.STATUS_MALFORMED: "malformed",
    _R.STATUS_NO_SESSION: "no-session",
}


class ServiceCosts:
    def __init__(self) -> None:
        self.cpu_ns: dict[str, list[int]] = {}
        self.wall_ns: dict[str, list[int]] = {}
        self.outcomes: dict[str, dict[str, int]] = {}

    def timed(self, op: str, handler: Handler) -> Handler:
        """``handler``, measured; it returns the refusal status it sent (None: answered)."""
        cpu = self.cpu_ns.setdefault(op, [])
        wall = self.wall_ns.setdefault(op, [])
        outcomes = self.outcomes.setdefault(op, {})

        def run(request: Any, responder: Responder) -> int | None:
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            status = handler(request, responder)
            cpu.append(time.thread_time_ns() - c0)
            wall.append(time.perf_counter_ns() - w0)
            key = "ok" if status is None else STATUS_NAMES.get(status, str(status))
            outcomes[key] = outcomes.get(key, 0) + 1
            return status

        return run

    def add_cpu(self, op: str, ns: int) -> None:
        self.cpu_ns.setdefault(op, []).append(ns)

    def summary(self) -> dict[str, Any]:
        return {
            "cpu_us": {op: [n // 1000 for n in v] for op, v in self.cpu_ns.items() if v},
            "wall_us": {op: [n // 1000 for n in v] for op, v in self.wall_ns.items() if v},
            "outcomes": {op: v for op, v in self.outcomes.items() if v},
        }


def phases(meter: CostMeter) -> dict[str, Any]:
    """The meter's per-operation medians and phases, in microseconds."""
    out = {}
    for op in meter.operations():
        s = meter.summary(op)
        out[op] = {
            "count": s.count,
            "median_us": s.total / 1000,
            **{f"{k}_us": v / 1000 for k, v in s.phases.items()},
        }
    return out
