"""What a node sees of the middleware: one interface, two implementations.

iomt's nodes are written against these classes, shaped like rclpy's (``create_publisher``,
``create_service``, ``call_async``, ``Future``). Two runtimes implement them:

* the embedded runtime (``iomt.runtime.context.Context`` and its entities): ROS 2's wire
  conventions spoken directly on Eclipse Cyclone DDS; needs no ROS installation; the default;
* ``iomt.runtime.rclpy_runtime``: the same node code on real rclpy, with whatever RMW the
  machine's ROS 2 uses (a stock ROS 2 peer's services then work both ways).

A node never learns which runtime it runs on; messages stay iomt's generated wire types on
both (the rclpy runtime converts at its edge, by CDR).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from iomt.msg import ServiceType
    from iomt.runtime.node import Node
    from iomt.runtime.qos import QoSProfile
    from iomt.runtime.task import Future

MsgT = TypeVar("MsgT")


class Publisher(ABC, Generic[MsgT]):
    topic_name: str
    msg_type: type[MsgT]

    @abstractmethod
    def publish(self, msg: MsgT) -> None:
        """Send ``msg``; raises ``TransportError`` when the middleware refuses it."""

    @abstractmethod
    def publish_raw(self, cdr: bytes) -> None:
        """Send an already-serialized message (CDR with its encapsulation header)."""

    @abstractmethod
    def get_subscription_count(self) -> int:
        """Readers currently matched."""

    @abstractmethod
    def destroy(self) -> None: ...


class Subscription(ABC, Generic[MsgT]):
    topic_name: str
    msg_type: type[MsgT]
    dropped: int

    @abstractmethod
    def get_publisher_count(self) -> int: ...

    @abstractmethod
    def destroy(self) -> None: ...


class Responder(ABC):
    """Answers one request of a deferred service, once."""

    @property
    def source(self) -> object | None:
        """Who wrote the request, as the middleware (not the request) says: the embedded
        runtime gives the DDS instance handle of the requesting writer, which a peer cannot
        set from the request's content; ``None`` where the runtime cannot tell (rclpy hands
        a callback no request header). For per-peer work bounds, never for authentication."""
        return None

    @abstractmethod
    def send(self, response: Any) -> None:
        """Send the response; a second call raises ``TransportError``."""


class Service(ABC):
    service_name: str
    dropped: int

    @abstractmethod
    def destroy(self) -> None: ...


Accept = Callable[[Any], bool]
"""A call's acceptance check: True for a reply that proves it comes from the server called
and answers this request; False (or an exception) for anything else."""


class Client(ABC):
    service_name: str
    #: replies that named one of our pending calls but failed its acceptance check
    rejected: int = 0

    @abstractmethod
    def call_async(self, request: Any, accept: Accept | None = None) -> Future[Any]:
        """Send ``request``; the Future completes with the response (or an error).

        With ``accept``, only a reply the check accepts completes the call. Anyone on the
        bus can read a request and write a reply with its header (client id and sequence
        number), so a service whose replies carry proofs passes a check of them. The
        embedded runtime drops a reply the check refuses (counted in ``rejected``, logged)
        and keeps waiting for the server's, until the caller's own timeout. The rclpy
        runtime cannot keep waiting (rclpy completes the call with the first reply naming
        it): there a refused reply fails the call with ``ReplyRejectedError`` -- never is
        it accepted.
        """

    @abstractmethod
    def call(self, request: Any, timeout_s: float = 5.0, accept: Accept | None = None) -> Any:
        """Send and wait; ``ServiceTimeoutError`` at the deadline (``accept``: as for
        ``call_async``)."""

    @abstractmethod
    def cancel(self, future: Future[Any]) -> None:
        """Forget a pending call: its response, if it comes, is dropped."""

    @abstractmethod
    def service_is_ready(self) -> bool: ...

    @property
    @abstractmethod
    def matched(self) -> bool:
        """A server has been discovered (sticky: a request now reaches someone)."""

    def wait_for_service(self, timeout_s: float | None = None) -> bool:
        import time  # noqa: PLC0415

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.service_is_ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    @abstractmethod
    def destroy(self) -> None: ...


class Timer(ABC):
    period_s: float

    @abstractmethod
    def cancel(self) -> None: ...

    @abstractmethod
    def reset(self) -> None: ...


class Executor(ABC):
    """Runs the callbacks of many nodes on one thread."""

    @abstractmethod
    def add_node(self, node: Node) -> None: ...

    @abstractmethod
    def remove_node(self, node: Node) -> None: ...

    @abstractmethod
    def spin_once(self, timeout_s: float | None = None) -> None: ...

    @abstractmethod
    def wake(self) -> None:
        """Make a blocked ``spin_once`` return (callable from signal handlers)."""

    @abstractmethod
    def shutdown(self, timeout_s: float = 2.0) -> None: ...


class RuntimeContext(ABC):
    """A process's connection to the middleware, and the factory of its nodes' entities."""

    domain_id: int

    @property
    @abstractmethod
    def ok(self) -> bool: ...

    @abstractmethod
    def shutdown(self) -> None: ...

    @abstractmethod
    def create_executor(self) -> Executor: ...

    # -- the nodes' entities (called by Node; nodes call Node.create_*) ----------------------

    @abstractmethod
    def attach_node(self, node: Node) -> None:
        """``node`` exists: make it visible in the ROS graph."""

    @abstractmethod
    def detach_node(self, node: Node) -> None: ...

    @abstractmethod
    def create_publisher(
        self, node: Node, msg_type: type[MsgT], topic: str, qos: QoSProfile
    ) -> Publisher[MsgT]: ...

    @abstractmethod
    def create_subscription(
        self,
        node: Node,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[Any], None],
        qos: QoSProfile,
        *,
        raw: bool,
    ) -> Subscription[MsgT]: ...

    @abstractmethod
    def create_service(
        self,
        node: Node,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        callback: Callable[..., Any],
        qos: QoSProfile,
        *,
        deferred: bool,
    ) -> Service: ...

    @abstractmethod
    def create_client(
        self, node: Node, srv_type: ServiceType[Any, Any, Any, Any], name: str, qos: QoSProfile
    ) -> Client: ...

    @abstractmethod
    def create_timer(self, node: Node, period_s: float, callback: Callable[[], None]) -> Timer: ...

    @contextlib.contextmanager
    def graph_batch(self) -> Iterator[None]:
        """Announce the graph once after creating many entities (where that matters)."""
        yield
