"""Topologies as data: pure, seeded generators of launch plans (see ``registry``)."""

from iomt.topology.registry import WARD_NAMESPACES, available, load
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec

__all__ = ["WARD_NAMESPACES", "LaunchPlan", "NodeSpec", "ProcessSpec", "available", "load"]
