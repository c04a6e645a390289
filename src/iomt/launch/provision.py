"""A plan's keys: the run's keystore, made before any node of the plan starts.

The facility CA, an identity per node that loads one (``LaunchPlan.identities``), each
certificate certifying its node's role (a device's capability class too), and CP-ABE
attribute keys for providers. Used by the experiments and by the ROS 2 launch bridge.
"""

from __future__ import annotations

from pathlib import Path

from iomt.crypto.keystore import Keystore
from iomt.errors import ConfigurationError
from iomt.launch.service import make_private_dir
from iomt.topology import LaunchPlan
from iomt.topology.params import BolsterParams, DeviceParams

__all__ = ["identity_roles", "provision"]

Roles = tuple[tuple[str, ...], str | None]  # (certified roles, a device's capability class)


def identity_roles(plan: LaunchPlan) -> dict[str, Roles]:
    """Each identity's certified role (and a device's capability class), from the nodes the
    plan actually runs -- so a test that re-lays a ward out re-roles it too -- plus the
    clinical robots outside the plan (providers). A bolster in a cluster is certified a
    cluster head as well (it may be elected one)."""
    out: dict[str, Roles] = {}
    for process in plan.processes:
        for node in process.nodes:
            params = node.typed()
            roles = params.roles
            if not roles:
                continue
            if isinstance(params, BolsterParams) and params.cluster:
                roles = (*roles, "cluster-head")
            capability = params.capability if isinstance(params, DeviceParams) else None
            out[node.name] = (roles, capability)
    for robot in plan.facts.get("robots", ()):
        out.setdefault(str(robot), (("provider",), None))
    return out


def provision(plan: LaunchPlan) -> Keystore:
    """Create the run's keystore with every identity the plan's nodes will load."""
    if not plan.identities:
        raise ConfigurationError(f"topology {plan.topology} needs no keystore")
    path = Path(str(plan.facts["keystore"]))
    if path.exists():
        raise ConfigurationError(f"{path} exists: use a fresh run directory")
    make_private_dir(path.parent)
    ks = Keystore.create(path, facility=str(plan.facts["facility"]))
    roles = identity_roles(plan)
    for identity in plan.identities:
        # Devices sign with ECDSA P-256: its verification (~65 µs here) is cheaper than
        # Ed25519's (~100 µs), and converters and providers verify device signatures on
        # the request path (orders from devices that cannot encrypt, origin proofs).
        # Each certificate certifies the identity's role (a device's capability class).
        role, capability = roles.get(identity.name, ((), None))
        ks.add_identity(
            identity.name,
            algorithm="ecdsa-p256" if "device" in role else "ed25519",
            roles=role,
            capability=capability,
        )
        if identity.attributes:
            ks.add_attributes(identity.name, identity.attributes)
    return ks
