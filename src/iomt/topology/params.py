"""Which parameters each node factory takes: :data:`PARAMS`, checked when a ``LaunchPlan``
is built (iomt.topology.spec).

The kinds of the nodes in ``iomt.nodes`` are declared there (iomt.nodes.params), beside the
nodes that take them, each setting with one type and one default; the recorder's kind is
declared here. Re-exported so that plans name every kind from one module.
"""

from __future__ import annotations

import dataclasses

from iomt.errors import ConfigurationError
from iomt.nodes.params import (
    AccessRule,
    AdminParams,
    BolsterParams,
    CapabilityClass,
    CentralParams,
    CloudParams,
    Cluster,
    DeviceBiomt,
    DeviceParams,
    MasterParams,
    Params,
    PhysicianBiomt,
    ProviderParams,
    Retention,
    Synchronous,
    VitalKindName,
    VitalsMonitorParams,
    VitalsSensorParams,
    WalletBiomt,
    WalletDevice,
    WalletParams,
    parse_value,
)

__all__ = [
    "PARAMS",
    "AccessRule",
    "AdminParams",
    "BolsterParams",
    "CapabilityClass",
    "CentralParams",
    "CloudParams",
    "Cluster",
    "DeviceBiomt",
    "DeviceParams",
    "MasterParams",
    "Params",
    "PhysicianBiomt",
    "ProviderParams",
    "RecorderParams",
    "Retention",
    "Synchronous",
    "VitalKindName",
    "VitalsMonitorParams",
    "VitalsSensorParams",
    "WalletBiomt",
    "WalletDevice",
    "WalletParams",
    "params_type",
    "parse_value",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecorderParams(Params):
    """The bag recorder (iomt.capture.recorder, a node of the capture layer above this one,
    which takes these as its ``config``)."""

    output: str
    topics: tuple[str, ...] | None = None
    services: bool = True
    # [ros name, pkg/msg|srv/Type]: subscribed to before the ward starts
    expect: tuple[tuple[str, str], ...] = ()
    # After a wake-up the recorder lets samples gather this long before it takes them: one
    # wake-up per batch instead of one per sample (a third of its CPU at 400 devices). Its
    # readers keep every sample (KEEP_ALL); a message's log time is when it was taken.
    batch_ms: float = 10.0


#: node factory (``package.module:callable``) -> the type of its parameters
PARAMS: dict[str, type[Params]] = {
    "iomt.nodes.device:device_node": DeviceParams,
    "iomt.nodes.wallet:wallet_node": WalletParams,
    "iomt.nodes.provider:provider_node": ProviderParams,
    "iomt.nodes.central:central_node": CentralParams,
    "iomt.nodes.bolster:bolster_node": BolsterParams,
    "iomt.nodes.cloud:cloud_node": CloudParams,
    "iomt.nodes.biomt_admin:admin_node": AdminParams,
    "iomt.nodes.biomt_master:master_node": MasterParams,
    "iomt.capture.recorder:recorder_node": RecorderParams,
    "iomt.nodes.examples:vitals_sensor": VitalsSensorParams,
    "iomt.nodes.examples:vitals_monitor": VitalsMonitorParams,
}


def params_type(factory: str, *, node: str = "") -> type[Params]:
    try:
        return PARAMS[factory]
    except KeyError:
        where = f"node {node}: " if node else ""
        raise ConfigurationError(
            f"{where}unknown node factory {factory!r}; known: {', '.join(sorted(PARAMS))}"
        ) from None
