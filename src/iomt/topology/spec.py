"""What a launch consists of, as plain data: processes, each hosting some nodes.

A topology generator (pure, seeded) returns a ``LaunchPlan``; the ``iomt launch``
supervisor and the ROS 2 launch files only render it. Nothing here starts anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from iomt.errors import ConfigurationError
from iomt.topology.params import Params, params_type


@dataclass(frozen=True)
class NodeSpec:
    """One node: ``factory(context, name=..., namespace=..., **params.to_json())``.

    ``params`` may be given as a plain mapping (a command line's, a test's): it is parsed
    into the factory's parameter type (iomt.topology.params) here, so a plan never holds a
    node whose parameters its constructor would refuse."""

    factory: str
    name: str
    namespace: str = "/"
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        kind = params_type(self.factory, node=self.fqn)
        if not isinstance(self.params, kind):
            object.__setattr__(self, "params", kind.from_mapping(self.params, node=self.fqn))

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}"

    def typed(self) -> Params:
        """The parameters as their node kind's dataclass."""
        assert isinstance(self.params, Params)  # made so by __post_init__
        return self.params

    def to_json(self) -> dict[str, Any]:
        return {
            "factory": self.factory,
            "name": self.name,
            "namespace": self.namespace,
            "params": self.typed().to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NodeSpec:
        try:
            return cls(
                str(raw["factory"]),
                str(raw["name"]),
                str(raw.get("namespace", "/")),
                dict(raw.get("params", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"bad node spec {raw!r}: {exc}") from exc


@dataclass(frozen=True)
class Identity:
    """A keystore identity a plan's nodes load (or a robot outside the plan uses), with the
    attributes its CP-ABE key is issued for."""

    name: str
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessSpec:
    """One OS process (a component container) and the nodes it hosts."""

    name: str
    nodes: tuple[NodeSpec, ...]
    # A later stage joins DDS only when the one before is READY (a recorder first, so it
    # is listening before anyone talks); iomt launch starts its processes early, to import.
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
    # The keystore identities to provision before any node starts (iomt.launch.provision);
    # empty: the plan needs no keystore.
    identities: tuple[Identity, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for proc in self.processes:
            for node in proc.nodes:
                fqn = node.fqn
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


_GROUP_NUMBER = re.compile(r"_\d+$")


def process_kind(name: str) -> str:
    """``devices_3`` -> ``devices``; ``providers`` -> ``providers`` (the groups
    :func:`split_into_groups` numbers are one kind)."""
    return _GROUP_NUMBER.sub("", name)


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
