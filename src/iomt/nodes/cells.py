"""Registration cells: announcements are partitioned by area (radio locality, on DDS)."""

from __future__ import annotations

import math

REGISTRATION_PREFIX = "/iomt/registration"


def cell_of(x: float, y: float, size: float) -> tuple[int, int]:
    return math.floor(x / size), math.floor(y / size)


def cell_topic(cell: tuple[int, int]) -> str:
    """Registration topics are partitioned by area, so a device only hears (and pays for)
    announcements from cells its radio can reach — radio locality, on DDS."""
    cx, cy = cell
    return f"{REGISTRATION_PREFIX}/c{cx}_{cy}".replace("-", "m")


def nearby_cells(x: float, y: float, size: float) -> list[tuple[int, int]]:
    cx, cy = cell_of(x, y, size)
    return [(cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
