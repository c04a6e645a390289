"""What a launch consists of, as plain data: processes, each hosting some nodes.

A topology generator (pure, seeded) returns a ``LaunchPlan``; the ``iomt launch``
supervisor and the ROS 2 launch files only render it. Nothing here starts anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from iomt.errors import ConfigurationError


@dataclass(frozen=True)
class NodeSpec:
    """One node: ``factory(context, name=..., namespace=..., **params)``."""

    factory: str
    name: str
    namespace: str = "/"
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {
            "factory": self.factory,
            "name": self.name,
            "namespace": self.namespace,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class ProcessSpec:
    """One OS process (a component container) and the nodes it hosts."""

    name: str
    nodes: tuple[NodeSpec, ...]
    # Processes start stage by stage, each stage READY before the next (a recorder first,
    # so it is listening before anyone talks).
    stage: int = 0
    # None: the runtime the launch chose; "embedded" pins a process to Cyclone DDS (the bag
    # recorder reads raw DDS, so it records a ward on either runtime from there).
    runtime: str | None = None
    # Whether a supervisor restarts this process after a crash (its nodes rejoin with the
    # same names, keys and on-disk state). False for what cannot resume, such as a bag
    # recorder (a bag cannot be appended to after a crash).
    restart: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "stage": self.stage,
            "nodes": [n.to_json() for n in self.nodes],
        }
        if self.runtime is not None:
            out["runtime"] = self.runtime
        if not self.restart:
            out["restart"] = False
        return out


@dataclass(frozen=True)
class LaunchPlan:
    topology: str
    description: str
    processes: tuple[ProcessSpec, ...]
    # Free-form facts about the topology that reports quote (device counts, seed, ...).
    facts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for proc in self.processes:
            for node in proc.nodes:
                fqn = f"{node.namespace.rstrip('/')}/{node.name}"
                if fqn in seen:
                    raise ConfigurationError(f"topology {self.topology}: duplicate node {fqn}")
                seen.add(fqn)

    @property
    def node_count(self) -> int:
        return sum(len(p.nodes) for p in self.processes)

    def process(self, name: str) -> ProcessSpec:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise ConfigurationError(f"topology {self.topology} has no process {name!r}")


def split_into_groups(
    nodes: list[NodeSpec], max_per_process: int, prefix: str
) -> list[ProcessSpec]:
    """Pack nodes into containers of at most ``max_per_process`` (many nodes per process
    is what scales on DDS: one participant per process, see docs/runtime.md)."""
    if max_per_process < 1:
        raise ConfigurationError("max_per_process must be at least 1")
    return [
        ProcessSpec(f"{prefix}{i // max_per_process}", tuple(nodes[i : i + max_per_process]))
        for i in range(0, len(nodes), max_per_process)
    ]
