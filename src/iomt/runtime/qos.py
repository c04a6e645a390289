"""QoS profiles shaped like rclpy's, mapped to Cyclone DDS policies as rmw_cyclonedds does.

Defaults mirror rmw: topics RELIABLE, VOLATILE, KEEP_LAST 10; sensor data BEST_EFFORT,
KEEP_LAST 5. Services differ on purpose: KEEP_ALL (see ``qos_profile_services_default``).
Every endpoint is pinned to plain CDR (XCDR1) and keeps
``autodispose`` off, as rmw_cyclonedds_cpp does, so ROS 2 peers match our endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from cyclonedds.core import Policy, Qos
from cyclonedds.util import duration


class ReliabilityPolicy(Enum):
    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class DurabilityPolicy(Enum):
    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


class HistoryPolicy(Enum):
    KEEP_LAST = "keep_last"
    KEEP_ALL = "keep_all"


@dataclass(frozen=True, slots=True)
class QoSProfile:
    depth: int = 10
    reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE
    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE
    history: HistoryPolicy = HistoryPolicy.KEEP_LAST
    # How long a reliable write may block when the writer's history is full (KEEP_ALL).
    max_blocking_s: float = 0.1

    def with_depth(self, depth: int) -> QoSProfile:
        return replace(self, depth=depth)

    def to_dds(self, *, user_data: bytes = b"") -> Qos:
        policies: list[object] = []
        if self.reliability is ReliabilityPolicy.RELIABLE:
            policies.append(Policy.Reliability.Reliable(duration(seconds=self.max_blocking_s)))
        else:
            policies.append(Policy.Reliability.BestEffort)
        if self.durability is DurabilityPolicy.TRANSIENT_LOCAL:
            policies.append(Policy.Durability.TransientLocal)
        else:
            policies.append(Policy.Durability.Volatile)
        if self.history is HistoryPolicy.KEEP_ALL:
            policies.append(Policy.History.KeepAll)
        else:
            policies.append(Policy.History.KeepLast(self.depth))
        policies.append(Policy.DataRepresentation(use_cdrv0_representation=True))
        policies.append(Policy.WriterDataLifecycle(autodispose=False))
        if user_data:
            policies.append(Policy.Userdata(user_data))
        return Qos(*policies)


qos_profile_default = QoSProfile()
# rmw's services default is KEEP_LAST 10, which silently drops requests from a burst of more
# than ten concurrent calls before the server takes them. History is not a request/offered
# policy, so KEEP_ALL still matches every ROS 2 peer; it makes the server's request reader
# and the client's reply reader keep (and acknowledge) everything until it is taken.
qos_profile_services_default = QoSProfile(history=HistoryPolicy.KEEP_ALL)
qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
# Late joiners get the last value (ros_discovery_info, /tf_static style "latched" topics).
qos_profile_latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
