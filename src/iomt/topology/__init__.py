"""Topologies as data: pure, seeded generators of launch plans (see ``registry``)."""

from iomt.topology.registry import available, load
from iomt.topology.spec import LaunchPlan, NodeSpec, ProcessSpec

__all__ = ["LaunchPlan", "NodeSpec", "ProcessSpec", "available", "load"]
