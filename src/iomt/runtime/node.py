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
from iomt.runtime.api import Client, Publisher, Service, Subscription, Timer
from iomt.runtime.qos import QoSProfile, qos_profile_default, qos_profile_services_default

if TYPE_CHECKING:
    from iomt.runtime.api import Executor, RuntimeContext
    from iomt.runtime.waitable import Waitable

MsgT = TypeVar("MsgT")


def _profile(qos: QoSProfile | int) -> QoSProfile:
    return qos_profile_default.with_depth(qos) if isinstance(qos, int) else qos


class Node:
    #: How long the loop hosting this node pauses after each spin, so that samples gather
    #: and one wake-up takes many (a process's loop pauses for the longest its nodes ask).
    #: 0 for everything on a request path; a bag recorder asks for a few milliseconds.
    spin_pause_s: float = 0.0

    def warming_up(self) -> bool:
        """True while the node is not yet ready for the work its process announces READY
        for (a device of the centralized baseline, until the server answered its first
        upload): the container holds READY back until no node is, within a bound."""
        return False

    def __init__(self, node_name: str, *, context: RuntimeContext, namespace: str = "/") -> None:
        self.context = context
        self._name = naming.validate_node_name(node_name)
        self._namespace = naming.validate_namespace(namespace)
        self._logger = logging.getLogger(
            "iomt.node" + self.get_fully_qualified_name().replace("/", ".")
        )
        self.publishers: list[Publisher[Any]] = []
        self.services: list[Service] = []
        self.clients: list[Client] = []
        self.subscriptions: list[Subscription[Any]] = []
        # What the embedded runtime's executor waits on (the rclpy runtime keeps its own).
        self.waitables: list[Waitable] = []
        self.timers: list[Timer] = []
        self._executor: Executor | None = None
        self._key = id(self)
        context.attach_node(self)

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
        self,
        msg_type: type[MsgT],
        topic: str,
        qos_profile: QoSProfile | int = 10,
        *,
        shared: bool = False,
    ) -> Publisher[MsgT]:
        """``shared=True`` lets the process's nodes that publish alike on a volatile topic
        share one DDS writer (``iomt.runtime.shared``)."""
        pub = self.context.create_publisher(
            self, msg_type, self.resolve_name(topic), _profile(qos_profile), shared=shared
        )
        self.publishers.append(pub)
        return pub

    def create_subscription(
        self,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[MsgT], None],
        qos_profile: QoSProfile | int = 10,
        *,
        raw: bool = False,
        shared: bool = False,
    ) -> Subscription[MsgT]:
        """``raw=True`` hands the callback the CDR bytes instead of a message (recorders);
        ``shared=True`` lets the process's nodes that subscribe alike share one DDS reader
        (``iomt.runtime.shared``)."""
        sub = self.context.create_subscription(
            self,
            msg_type,
            self.resolve_name(topic),
            callback,
            _profile(qos_profile),
            raw=raw,
            shared=shared,
        )
        self.subscriptions.append(sub)
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
        """``callback(request, response) -> response``; with ``deferred=True``,
        ``callback(request, responder)`` answers later with ``responder.send(response)``."""
        srv = self.context.create_service(
            self, srv_type, self.resolve_name(srv_name), callback, qos_profile, deferred=deferred
        )
        self.services.append(srv)
        return srv

    def create_client(
        self,
        srv_type: ServiceType[Any, Any, Any, Any],
        srv_name: str,
        *,
        qos_profile: QoSProfile = qos_profile_services_default,
        shared: bool = False,
    ) -> Client:
        """``shared=True`` lets the process's nodes that call the same service share one DDS
        client (``iomt.runtime.shared``); each call stays this node's."""
        cli = self.context.create_client(
            self, srv_type, self.resolve_name(srv_name), qos_profile, shared=shared
        )
        self.clients.append(cli)
        return cli

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None]) -> Timer:
        timer = self.context.create_timer(self, timer_period_sec, callback)
        self.timers.append(timer)
        return timer

    # -- the embedded runtime's executor ------------------------------------------------------

    def _add_waitable(self, waitable: Waitable) -> None:
        self.waitables.append(waitable)
        if self._executor is not None:
            self._executor.add_waitable(waitable)  # type: ignore[attr-defined]

    def _add_timer(self, timer: Timer) -> None:
        if self._executor is not None:
            self._executor.add_timer(timer)  # type: ignore[attr-defined]

    def _set_executor(self, executor: Executor | None) -> None:
        self._executor = executor

    # -- lifetime ---------------------------------------------------------------------------

    def destroy_node(self) -> None:
        if self._executor is not None:
            self._executor.remove_node(self)
        for timer in self.timers:
            timer.cancel()
        entities: list[Any] = [*self.subscriptions, *self.services, *self.clients]
        known = {id(e) for e in entities}
        # Waitables a node made itself (a recorder's raw readers) go too; shared ones go
        # with their last handle (in entities).
        entities += [w for w in self.waitables if id(w) not in known and not w.shared]
        for entity in (*entities, *self.publishers):
            entity.destroy()
        for group in (self.subscriptions, self.services, self.clients, self.publishers):
            group.clear()
        self.waitables.clear()
        self.context.detach_node(self)
