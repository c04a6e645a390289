"""The node runtime: ROS 2's programming model and wire conventions on Cyclone DDS.

This is the only layer that imports cyclonedds' entity API. See DESIGN.md, "Middleware".
"""

from iomt.runtime.client import Client
from iomt.runtime.context import Context
from iomt.runtime.executor import Executor
from iomt.runtime.node import Node
from iomt.runtime.publisher import Publisher
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
from iomt.runtime.service import RequestHeader, Responder, Service
from iomt.runtime.subscription import Subscription
from iomt.runtime.task import Future
from iomt.runtime.timer import Timer

__all__ = [
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
    "Service",
    "Subscription",
    "Timer",
    "qos_profile_default",
    "qos_profile_latched",
    "qos_profile_sensor_data",
    "qos_profile_services_default",
]
