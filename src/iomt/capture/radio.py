"""The ward's radio graph, for measuring how far a reading travelled.

Bilal & Hassan's devices talk to the devices within radio range (Alg. 2.1); iomt's
devices run on one DDS domain, so "hops" are not something the network shows: they are a
fact of the topology. A :class:`RadioMap` holds each device's position and radio range, as
the topology gave them to the device nodes, and links two devices when each is within
the other's range — the rule by which ``iomt.core.registration.NeighbourTable`` registers
a 1-hop neighbour. :meth:`RadioMap.hops` is the length of the shortest path between two
devices on that graph.

Anything not on the map (providers, wallets, servers) is reached over the facility
network, not by radio: its hop distance is ``None``.

The experiment driver writes the run's map next to the bag (``radio.json``, schema
``iomt.capture.radio/1``), and ``audit(bag, radio=...)`` / ``iomt bag audit --radio FILE``
report the hop distance of every reading-bearing transmission (docs/capture.md).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.spec import LaunchPlan

__all__ = ["RADIO_SCHEMA", "RadioMap", "Station"]

RADIO_SCHEMA = "iomt.capture.radio/1"
#: the device node's default radio range (``iomt.nodes.device.DeviceNode``)
DEFAULT_RANGE_M = 10.0


@dataclass(frozen=True, slots=True)
class Station:
    """A device on the radio graph."""

    x: float
    y: float
    radio_range: float


@dataclass(frozen=True)
class RadioMap:
    """Device URI -> position and radio range; links and hop distances between them."""

    stations: Mapping[str, Station]
    _adjacency: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for uri, s in self.stations.items():
            if not (math.isfinite(s.x) and math.isfinite(s.y) and s.radio_range >= 0):
                raise ConfigurationError(f"radio map: bad position or range for {uri}")
        uris = sorted(self.stations)
        adjacency: dict[str, list[str]] = {u: [] for u in uris}
        for i, a in enumerate(uris):
            for b in uris[i + 1 :]:
                if self.linked(a, b):
                    adjacency[a].append(b)
                    adjacency[b].append(a)
        object.__setattr__(self, "_adjacency", adjacency)

    def __contains__(self, uri: object) -> bool:
        return uri in self.stations

    def linked(self, a: str, b: str) -> bool:
        """Each end within the other's range (registration's rule for a 1-hop link)."""
        sa, sb = self.stations[a], self.stations[b]
        return math.hypot(sa.x - sb.x, sa.y - sb.y) <= min(sa.radio_range, sb.radio_range)

    def hops(self, a: str, b: str) -> int | None:
        """Radio hops from ``a`` to ``b``: 0 for the same device, None when either is not
        on the map or no path joins them."""
        if a not in self.stations or b not in self.stations:
            return None
        if a == b:
            return 0
        seen = {a}
        queue: deque[tuple[str, int]] = deque([(a, 0)])
        while queue:
            here, dist = queue.popleft()
            for nxt in self._adjacency[here]:
                if nxt == b:
                    return dist + 1
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, dist + 1))
        return None

    # -- from a launch plan, to and from JSON ---------------------------------------------

    @classmethod
    def from_plan(cls, plan: LaunchPlan) -> RadioMap:
        """Every node of ``plan`` with a position (``x``, ``y`` params: the devices), by
        its URI ``iomt://<namespace>/<name>``, with its ``radio_range``."""
        stations: dict[str, Station] = {}
        for proc in plan.processes:
            for node in proc.nodes:
                p = node.params
                if "x" not in p or "y" not in p:
                    continue
                uri = f"iomt://{node.namespace.strip('/')}/{node.name}"
                stations[uri] = Station(
                    float(p["x"]), float(p["y"]), float(p.get("radio_range", DEFAULT_RANGE_M))
                )
        return cls(stations)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RADIO_SCHEMA,
            "stations": {
                uri: {"x": s.x, "y": s.y, "radio_range": s.radio_range}
                for uri, s in sorted(self.stations.items())
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RadioMap:
        if doc.get("schema") != RADIO_SCHEMA:
            raise ConfigurationError(f"not a radio map ({RADIO_SCHEMA}): {doc.get('schema')!r}")
        try:
            return cls(
                {
                    str(uri): Station(float(s["x"]), float(s["y"]), float(s["radio_range"]))
                    for uri, s in doc["stations"].items()
                }
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"malformed radio map: {exc!r}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> RadioMap:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read radio map {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigurationError(f"{path} is not a radio map")
        return cls.from_json(doc)
