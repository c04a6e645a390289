"""Node: a named participant in the ROS graph, and the factory for its entities.

Shaped like ``rclpy.node.Node``: entities are created through ``create_*`` methods, names
follow ROS rules (relative names resolve in the node's namespace, ``~`` in the node's own),
and the node's readers and writers are announced on ``ros_discovery_info`` so ROS 2 tools
attribute them to it. Many nodes share one process, one Context and one Executor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from iomt.msg import ServiceType
from iomt.runtime import naming
from iomt.runtime.client import Client
from iomt.runtime.publisher import Publisher
from iomt.runtime.qos import QoSProfile, qos_profile_default, qos_profile_services_default
from iomt.runtime.service import Service
from iomt.runtime.subscription import Subscription
from iomt.runtime.timer import Timer
from iomt.runtime.waitable import Waitable

if TYPE_CHECKING:
    from iomt.runtime.context import Context
    from iomt.runtime.executor import Executor

MsgT = TypeVar("MsgT")


def _profile(qos: QoSProfile | int) -> QoSProfile:
    return qos_profile_default.with_depth(qos) if isinstance(qos, int) else qos


class Node:
    def __init__(self, node_name: str, *, context: Context, namespace: str = "/") -> None:
        self.context = context
        self._name = naming.validate_node_name(node_name)
        self._namespace = naming.validate_namespace(namespace)
        self._logger = logging.getLogger(
            "iomt.node" + self.get_fully_qualified_name().replace("/", ".")
        )
        self.publishers: list[Publisher[Any]] = []
        self.waitables: list[Waitable] = []
        self.timers: list[Timer] = []
        self._executor: Executor | None = None
        self._key = id(self)
        context.add_node(self._key, self._namespace, self._name)

    # -- identity ---------------------------------------------------------------------------

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return naming.node_fqn(self._namespace, self._name)

    def get_logger(self) -> logging.Logger:
        return self._logger

    def now_ns(self) -> int:
        return time.time_ns()

    def resolve_name(self, name: str) -> str:
        return naming.expand_topic_name(name, node_name=self._name, namespace=self._namespace)

    # -- entities ---------------------------------------------------------------------------

    def create_publisher(
        self, msg_type: type[MsgT], topic: str, qos_profile: QoSProfile | int = 10
    ) -> Publisher[MsgT]:
        fq = self.resolve_name(topic)
        pub = Publisher(self, msg_type, fq, naming.topic_to_dds(fq), _profile(qos_profile))
        self.publishers.append(pub)
        self.context.add_endpoint(self._key, pub.gid, is_writer=True)
        return pub

    def create_subscription(
        self,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[MsgT], None],
        qos_profile: QoSProfile | int = 10,
        *,
        raw: bool = False,
    ) -> Subscription[MsgT]:
        fq = self.resolve_name(topic)
        sub = Subscription(
            self, msg_type, fq, naming.topic_to_dds(fq), callback, _profile(qos_profile), raw=raw
        )
        self.context.add_endpoint(self._key, sub.gid, is_writer=False)
        self._add_waitable(sub)
        return sub

    def create_service(
        self,
        srv_type: ServiceType[Any, Any, Any, Any],
        srv_name: str,
        callback: Callable[..., Any],
        *,
        qos_profile: QoSProfile = qos_profile_services_default,
        deferred: bool = False,
    ) -> Service:
        fq = self.resolve_name(srv_name)
        srv = Service(
            self, srv_type, fq, naming.service_to_dds(fq), callback, qos_profile, deferred=deferred
        )
        with self.context.graph_batch():
            self.context.add_endpoint(self._key, srv.reader_gid, is_writer=False)
            self.context.add_endpoint(self._key, srv.writer_gid, is_writer=True)
        self._add_waitable(srv)
        return srv

    def create_client(
        self,
        srv_type: ServiceType[Any, Any, Any, Any],
        srv_name: str,
        *,
        qos_profile: QoSProfile = qos_profile_services_default,
    ) -> Client:
        fq = self.resolve_name(srv_name)
        cli = Client(self, srv_type, fq, naming.service_to_dds(fq), qos_profile)
        with self.context.graph_batch():
            self.context.add_endpoint(self._key, cli.writer_gid, is_writer=True)
            self.context.add_endpoint(self._key, cli.reader_gid, is_writer=False)
        self._add_waitable(cli)
        return cli

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(timer_period_sec, callback)
        self.timers.append(timer)
        if self._executor is not None:
            self._executor.add_timer(timer)
        return timer

    def _add_waitable(self, waitable: Waitable) -> None:
        self.waitables.append(waitable)
        if self._executor is not None:
            self._executor.add_waitable(waitable)

    def _set_executor(self, executor: Executor | None) -> None:
        self._executor = executor

    # -- lifetime ---------------------------------------------------------------------------

    def destroy_node(self) -> None:
        if self._executor is not None:
            self._executor.remove_node(self)
        for timer in self.timers:
            timer.cancel()
        for waitable in self.waitables:
            waitable.destroy()
        for pub in self.publishers:
            pub.destroy()
        self.waitables.clear()
        self.publishers.clear()
        self.context.remove_node(self._key)
