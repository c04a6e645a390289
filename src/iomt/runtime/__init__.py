"""The node runtime: ROS 2's programming model, on Cyclone DDS (embedded, the default) or on
real rclpy (``iomt.runtime.rclpy_runtime``).

Nodes see the interface of ``iomt.runtime.api``; ``Context`` is the embedded runtime, which
speaks ROS 2's wire conventions directly on Cyclone DDS. This is the only layer that imports
cyclonedds' entity API (and rclpy).
"""

from iomt.runtime.api import (
    Accept,
    Client,
    Publisher,
    Responder,
    RuntimeContext,
    Service,
    Subscription,
    Timer,
)
from iomt.runtime.context import Context
from iomt.runtime.executor import Executor
from iomt.runtime.node import Node
from iomt.runtime.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_default,
    qos_profile_latched,
    qos_profile_sensor_data,
    qos_profile_services_default,
)
from iomt.runtime.service import RequestHeader
from iomt.runtime.task import Future

__all__ = [
    "Accept",
    "Client",
    "Context",
    "DurabilityPolicy",
    "Executor",
    "Future",
    "HistoryPolicy",
    "Node",
    "Publisher",
    "QoSProfile",
    "ReliabilityPolicy",
    "RequestHeader",
    "Responder",
    "RuntimeContext",
    "Service",
    "Subscription",
    "Timer",
    "qos_profile_default",
    "qos_profile_latched",
    "qos_profile_sensor_data",
    "qos_profile_services_default",
]
