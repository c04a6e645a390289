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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from iomt.msg import ServiceType
    from iomt.runtime.qos import QoSProfile
    from iomt.runtime.task import Future
    from iomt.runtime.waitable import Waitable

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


class NodeHandle(Protocol):
    """What a runtime sees of a node (``iomt.runtime.node.Node`` is one), so that the
    runtimes depend on this and not on the class that makes its entities through them.

    The name and namespace place it in the ROS graph, and a context files what it holds for
    the node under its key. The other underscored hooks serve the embedded runtime: its
    Context hands a node the entities its Executor waits on, and its Executor tells a node
    which executor runs it. The rclpy runtime needs none of them.
    """

    def get_name(self) -> str: ...

    def get_namespace(self) -> str: ...

    @property
    def _key(self) -> int:
        """Unique among the context's live nodes."""
        ...

    @property
    def waitables(self) -> Sequence[Waitable]: ...

    @property
    def timers(self) -> Sequence[Timer]: ...

    def _add_waitable(self, waitable: Waitable) -> None: ...

    def _add_timer(self, timer: Timer) -> None: ...

    def _set_executor(self, executor: Executor | None) -> None: ...


class Executor(ABC):
    """Runs the callbacks of many nodes on one thread."""

    @abstractmethod
    def add_node(self, node: NodeHandle) -> None: ...

    @abstractmethod
    def remove_node(self, node: NodeHandle) -> None: ...

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
    def attach_node(self, node: NodeHandle) -> None:
        """``node`` exists: make it visible in the ROS graph."""

    @abstractmethod
    def detach_node(self, node: NodeHandle) -> None: ...

    @abstractmethod
    def create_publisher(
        self,
        node: NodeHandle,
        msg_type: type[MsgT],
        topic: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> Publisher[MsgT]:
        """``shared``: the process's nodes may share one endpoint (a runtime may ignore it)."""

    @abstractmethod
    def create_subscription(
        self,
        node: NodeHandle,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[Any], None],
        qos: QoSProfile,
        *,
        raw: bool,
        shared: bool = False,
    ) -> Subscription[MsgT]:
        """``shared``: the process's nodes may share one endpoint (a runtime may ignore it)."""

    @abstractmethod
    def create_service(
        self,
        node: NodeHandle,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        callback: Callable[..., Any],
        qos: QoSProfile,
        *,
        deferred: bool,
    ) -> Service: ...

    @abstractmethod
    def create_client(
        self,
        node: NodeHandle,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> Client:
        """``shared``: the process's nodes may share one endpoint (a runtime may ignore it)."""

    @abstractmethod
    def create_timer(
        self, node: NodeHandle, period_s: float, callback: Callable[[], None]
    ) -> Timer: ...

    @contextlib.contextmanager
    def graph_batch(self) -> Iterator[None]:
        """Announce the graph once after creating many entities (where that matters)."""
        yield
