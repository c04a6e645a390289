"""Small, exact summary statistics for reports (percentiles by the nearest-rank method)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(values_us: Iterable[float]) -> dict[str, Any]:
    v = sorted(x / 1000.0 for x in values_us)
    if not v:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None}
    return {
        "n": len(v),
        "p50": round(percentile(v, 50), 4),
        "p95": round(percentile(v, 95), 4),
        "p99": round(percentile(v, 99), 4),
        "mean": round(sum(v) / len(v), 4),
    }
