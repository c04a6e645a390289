"""iomt's nodes on real rclpy: the ``rclpy`` runtime.

The same node classes that run on the embedded Cyclone runtime run here unchanged, each
backed by a real ``rclpy.node.Node`` on whatever RMW the machine's ROS 2 uses
(``RMW_IMPLEMENTATION``; Fast DDS by default). Everything a stock ROS 2 peer does with
them then goes through ROS 2 itself — including services, which cannot cross between the
embedded runtime and Fast DDS (rmw_fastrtps carries a request's identity in the RTPS
message, rmw_cyclonedds in the payload; see docs/ros2.md).

Messages stay iomt's generated wire types inside the nodes; this module converts at its
edge through CDR, which both sides share byte for byte: topics go out and come in raw
(``publish(bytes)``, ``raw=True`` subscriptions: no conversion at all), service requests and
responses are converted with ``rclpy.serialization``. The rclpy message classes come from
the ROS 2 package ``iomt_interfaces``, which must be built and on the Python path
(``scripts/ros2.sh`` does it from PyPI wheels; a ROS 2 workspace does it with colcon).

Only importable where rclpy is: ``iomt launch ... --runtime rclpy`` imports it on demand.
"""

from __future__ import annotations

import array
import importlib
import itertools
import logging
import operator
import os
import threading
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import rclpy
import rclpy.context
import rclpy.executors
import rclpy.node
import rclpy.qos
import rclpy.signals

from iomt.errors import (
    ConfigurationError,
    RemoteProtocolError,
    ReplyRejectedError,
    ServiceTimeoutError,
    TransportError,
)
from iomt.msg import ServiceType, message_info, service_info
from iomt.runtime import api
from iomt.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from iomt.runtime.task import Future

log = logging.getLogger(__name__)

MsgT = TypeVar("MsgT")


# -- types ---------------------------------------------------------------------------------------


def ros_message_class(msg_type: Any) -> Any:
    """The rclpy class of an iomt wire type (``iomt_interfaces.msg.Vitals`` for ``Vitals``)."""
    package, kind, name = message_info(msg_type).name.split("/")
    return _import(package, kind, name)


def ros_service_class(srv_type: Any) -> Any:
    package, kind, name = service_info(srv_type).name.split("/")
    return _import(package, kind, name)


def _import(package: str, kind: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"rclpy runtime: {package}/{kind}/{name} is not importable ({exc}); build the ROS 2 "
            f"package {package} (scripts/ros2.sh, or colcon build) and source its setup file"
        ) from exc


def to_ros(msg: Any, ros_class: Any) -> Any:
    """iomt wire type -> rclpy message (field by field; see _Converter)."""
    return _converter(type(msg), ros_class).to_ros(msg)


def from_ros(ros_msg: Any, msg_type: Any) -> Any:
    """rclpy message -> iomt wire type; RemoteProtocolError if it does not fit."""
    try:
        return _converter(msg_type, type(ros_msg)).from_ros(ros_msg)
    except Exception as exc:  # a field the iomt type cannot hold: the peer sent it
        raise RemoteProtocolError(f"{msg_type.__name__}: {exc}") from exc


_OCTETS = ("sequence<uint8", "sequence<octet")
_REALS = frozenset({"float", "double", "long double"})
_INTEGERS = frozenset(
    {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "octet"}
)
_CONVERTERS: dict[tuple[Any, Any], _Converter] = {}


def _converter(msg_type: Any, ros_class: Any) -> _Converter:
    key = (msg_type, ros_class)
    found = _CONVERTERS.get(key)
    if found is None:
        found = _CONVERTERS[key] = _Converter(msg_type, ros_class)
    return found


class _Converter:
    """Copies a message field by field between iomt's class and rclpy's generated one.

    Going through CDR (``serialize_message`` / ``deserialize_message``) costs about 150 µs a
    message here, and rclpy's constructors and property setters check every byte of a
    ``uint8[]`` in Python: a service answered this way took 1.3x a plain rclpy service.
    So the converter writes rclpy's slots (``_<field>``, what its setters store after
    checking) directly, with the values in the types those setters store
    (``array.array('B')`` for octets, lists for other sequences, nested messages
    converted recursively, ``float`` for real fields). The types matter: rclpy's C layer is
    built with assertions and aborts the process on an ``int`` in a float field (Python
    code writes them: ``round()`` returns one), so reals are coerced and integers pass
    ``operator.index`` (a float there is a ``TypeError``, not an abort). Both classes come
    from the same interface file, so the fields match; rclpy's C layer checks types and
    bounds again when it serializes.
    """

    def __init__(self, msg_type: Any, ros_class: Any) -> None:
        self.msg_type = msg_type
        self.ros_class = ros_class
        self.fields: list[tuple[str, str, Any]] = []  # (name, kind, nested converter)
        for name, field_type in ros_class.get_fields_and_field_types().items():
            nested_ros = _nested_class(field_type)
            if field_type.startswith(_OCTETS):
                self.fields.append((name, "octets", None))
            elif nested_ros is not None:
                nested_iomt = (
                    type(getattr(msg_type(), name)) if "sequence" not in field_type else None
                )
                kind = "messages" if field_type.startswith("sequence<") else "message"
                self.fields.append((name, kind, (nested_ros, nested_iomt, msg_type, name)))
            elif field_type.startswith("sequence<") and "string" in field_type:
                self.fields.append((name, "strings", None))
            elif field_type.startswith("sequence<") or "[" in field_type:
                self.fields.append((name, "checked", None))  # numeric arrays: via setters
            elif field_type in _REALS:
                self.fields.append((name, "real", None))
            elif field_type in _INTEGERS:
                self.fields.append((name, "integer", None))
            else:
                self.fields.append((name, "plain", None))

    def _nested(self, spec: Any, sample: Any = None) -> _Converter:
        nested_ros, nested_iomt, owner, name = spec
        if nested_iomt is None:  # a sequence's element type: from the iomt annotation
            nested_iomt = _sequence_element(owner, name) if sample is None else type(sample)
        return _converter(nested_iomt, nested_ros)

    def to_ros(self, msg: Any) -> Any:
        out = self.ros_class.__new__(self.ros_class)
        out._check_fields = False
        for name, kind, spec in self.fields:
            value = getattr(msg, name)
            if kind == "octets":
                setattr(out, "_" + name, array.array("B", value))
            elif kind == "message":
                setattr(out, "_" + name, self._nested(spec).to_ros(value))
            elif kind == "messages":
                setattr(out, "_" + name, [self._nested(spec, v).to_ros(v) for v in value])
            elif kind == "strings":
                setattr(out, "_" + name, list(value))
            elif kind == "checked":
                setattr(out, name, value)
            elif kind == "real":
                setattr(out, "_" + name, float(value))
            elif kind == "integer":
                setattr(out, "_" + name, operator.index(value))
            else:
                setattr(out, "_" + name, value)
        return out

    def from_ros(self, ros_msg: Any) -> Any:
        values: dict[str, Any] = {}
        for name, kind, spec in self.fields:
            value = getattr(ros_msg, "_" + name)
            if kind == "octets":
                values[name] = bytes(value)
            elif kind == "message":
                values[name] = self._nested(spec).from_ros(value)
            elif kind == "messages":
                converter = self._nested(spec)
                values[name] = [converter.from_ros(v) for v in value]
            elif kind in ("strings", "checked"):
                values[name] = list(value)
            else:
                values[name] = value
        return self.msg_type(**values)


def _nested_class(field_type: str) -> Any:
    """The rclpy class of a nested message field type (``pkg/Name``, ``sequence<pkg/Name>``)."""
    inner = field_type
    if inner.startswith("sequence<"):
        inner = inner[len("sequence<") :].rstrip(">").split(",")[0]
    inner = inner.split("[")[0]
    if "/" not in inner:
        return None
    package, name = inner.split("/")
    return _import(package, "msg", name)


def _sequence_element(owner: Any, field: str) -> Any:
    """The iomt class of the elements of ``owner.field`` (a sequence of messages)."""
    hints = typing.get_type_hints(owner, include_extras=True)
    hint = hints[field]
    for candidate in (*typing.get_args(hint), *getattr(hint, "__metadata__", ())):
        inner = getattr(candidate, "subtype", None) or candidate
        if isinstance(inner, type) and hasattr(inner, "__idl_typename__"):
            return inner
    raise ConfigurationError(f"{owner.__name__}.{field}: cannot find its element type")


def ros_qos(qos: QoSProfile) -> rclpy.qos.QoSProfile:
    return rclpy.qos.QoSProfile(
        history=(
            rclpy.qos.HistoryPolicy.KEEP_ALL
            if qos.history is HistoryPolicy.KEEP_ALL
            else rclpy.qos.HistoryPolicy.KEEP_LAST
        ),
        depth=qos.depth,
        reliability=(
            rclpy.qos.ReliabilityPolicy.RELIABLE
            if qos.reliability is ReliabilityPolicy.RELIABLE
            else rclpy.qos.ReliabilityPolicy.BEST_EFFORT
        ),
        durability=(
            rclpy.qos.DurabilityPolicy.TRANSIENT_LOCAL
            if qos.durability is DurabilityPolicy.TRANSIENT_LOCAL
            else rclpy.qos.DurabilityPolicy.VOLATILE
        ),
    )


# -- entities ------------------------------------------------------------------------------------


class RclpyPublisher(api.Publisher[MsgT]):
    def __init__(self, ros_node: Any, msg_type: type[MsgT], topic: str, qos: QoSProfile) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self._pub = ros_node.create_publisher(ros_message_class(msg_type), topic, ros_qos(qos))
        self._ros_node = ros_node

    def publish(self, msg: MsgT) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(
                f"{self.topic_name} takes {self.msg_type.__name__}, not {type(msg).__name__}"
            )
        self.publish_raw(msg.serialize())  # type: ignore[attr-defined]

    def publish_raw(self, cdr: bytes) -> None:
        try:
            self._pub.publish(bytes(cdr))
        except Exception as exc:
            raise TransportError(f"publish on {self.topic_name} failed: {exc}") from exc

    def get_subscription_count(self) -> int:
        return int(self._pub.get_subscription_count())

    def destroy(self) -> None:
        self._ros_node.destroy_publisher(self._pub)


class RclpySubscription(api.Subscription[MsgT]):
    def __init__(
        self,
        ros_node: Any,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[Any], None],
        qos: QoSProfile,
        *,
        raw: bool,
    ) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self.dropped = 0
        self._callback = callback
        self._raw = raw
        self._ros_node = ros_node
        self._sub = ros_node.create_subscription(
            ros_message_class(msg_type), topic, self._on_data, ros_qos(qos), raw=True
        )

    def _on_data(self, cdr: bytes) -> None:
        if self._raw:
            msg: Any = cdr
        else:
            try:
                msg = self.msg_type.deserialize(cdr)  # type: ignore[attr-defined]
            except Exception as exc:
                self.dropped += 1
                log.warning(
                    "%s: dropped malformed sample (%d bytes): %s", self.topic_name, len(cdr), exc
                )
                return
        try:
            self._callback(msg)
        except Exception:
            log.exception("%s: subscription callback failed", self.topic_name)

    def get_publisher_count(self) -> int:
        return (
            int(self._sub.get_publisher_count()) if hasattr(self._sub, "get_publisher_count") else 0
        )

    def destroy(self) -> None:
        self._ros_node.destroy_subscription(self._sub)


class RclpyResponder(api.Responder):
    """Answers one request of a deferred service, whenever ``send`` is called.

    rclpy sends a service's response when its callback returns, with the request header
    it took. A deferred callback returns this responder instead; the service's
    ``send_response`` (see RclpyService) then keeps the header here, and whichever of the
    two comes second -- the header or ``send`` -- sends the response. No coroutine waits in
    between: rclpy resumes pending coroutines on every spin, so a ward of deferred
    services would keep its executors busy.
    """

    def __init__(self, service: RclpyService) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._header: Any = None
        self._response: Any = None
        self._sent = False

    def send(self, response: Any) -> None:
        ros_response = to_ros(response, self._service.ros_response_class)
        with self._lock:
            if self._sent or self._response is not None:
                raise TransportError("response already sent for this request")
            self._response = ros_response
            header = self._header
        if header is not None:
            self._deliver()

    def bind(self, header: Any) -> None:
        with self._lock:
            self._header = header
            ready = self._response is not None
        if ready:
            self._deliver()

    def _deliver(self) -> None:
        with self._lock:
            if self._sent:
                return
            self._sent = True
        self._service.send(self._response, self._header)


class RclpyService(api.Service):
    """A real rclpy service; a deferred one answers through an RclpyResponder."""

    def __init__(
        self,
        ros_node: Any,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        callback: Callable[..., Any],
        qos: QoSProfile,
        *,
        deferred: bool,
    ) -> None:
        self.service_name = name
        self.dropped = 0
        self._types: Any = srv_type
        self._ros = ros_service_class(srv_type)
        self.ros_response_class = self._ros.Response
        self._callback = callback
        self._ros_node = ros_node
        handler = self._on_deferred if deferred else self._on_request
        self._srv = ros_node.create_service(self._ros, name, handler, qos_profile=ros_qos(qos))
        if deferred:
            # rclpy's executor calls srv.send_response(callback's return value, header):
            # for a responder, that is where the header is learned, not where it is sent.
            self._send_response = self._srv.send_response
            self._srv.send_response = self._bind_or_send

    def _bind_or_send(self, response: Any, header: Any) -> None:
        if isinstance(response, RclpyResponder):
            response.bind(header)
        else:
            self._send_response(response, header)

    def send(self, ros_response: Any, header: Any) -> None:
        try:
            self._send_response(ros_response, header)
        except Exception as exc:  # the client left, the context shut down
            log.warning("%s: reply failed: %s", self.service_name, exc)

    def _request(self, ros_request: Any) -> Any:
        try:
            return from_ros(ros_request, self._types.Request)
        except RemoteProtocolError:
            self.dropped += 1
            raise

    def _on_request(self, ros_request: Any, _ros_response: Any) -> Any:
        # An exception here leaves the request unanswered; RclpyExecutor logs it.
        response = self._callback(self._request(ros_request), self._types.Response())
        if not isinstance(response, self._types.Response):
            raise TransportError(
                f"{self.service_name}: callback returned {type(response).__name__}, not a "
                f"{self._types.Response.__name__}"
            )
        return to_ros(response, self._ros.Response)

    def _on_deferred(self, ros_request: Any, _ros_response: Any) -> RclpyResponder:
        responder = RclpyResponder(self)
        self._callback(self._request(ros_request), responder)
        return responder

    def destroy(self) -> None:
        self._ros_node.destroy_service(self._srv)


class RclpyClient(api.Client):
    _seq = itertools.count(1)

    def __init__(
        self, ros_node: Any, srv_type: ServiceType[Any, Any, Any, Any], name: str, qos: QoSProfile
    ) -> None:
        self.service_name = name
        self._types: Any = srv_type
        self._ros = ros_service_class(srv_type)
        self._ros_node = ros_node
        self._client = ros_node.create_client(self._ros, name, qos_profile=ros_qos(qos))
        self._pending: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._seen_ready = False
        self.rejected = 0

    def call_async(self, request: Any, accept: api.Accept | None = None) -> Future[Any]:
        """As the embedded runtime's, except that a reply ``accept`` refuses fails the call
        (``ReplyRejectedError``): rclpy completes a call with the first reply that names
        it and forgets the request, so there is nothing left to wait on."""
        if not isinstance(request, self._types.Request):
            raise TypeError(
                f"{self.service_name} takes {self._types.Request.__name__}, "
                f"not {type(request).__name__}"
            )
        future: Future[Any] = Future()
        future.seq = next(self._seq)
        try:
            ros_future = self._client.call_async(to_ros(request, self._ros.Request))
        except Exception as exc:
            raise TransportError(f"{self.service_name}: request failed: {exc}") from exc
        with self._lock:
            self._pending[future.seq] = ros_future
        ros_future.add_done_callback(lambda done: self._complete(future, done, accept))
        return future

    def _complete(self, future: Future[Any], ros_future: Any, accept: api.Accept | None) -> None:
        with self._lock:
            self._pending.pop(future.seq, None)
        if ros_future.cancelled():
            future.cancel()
            return
        try:
            response = from_ros(ros_future.result(), self._types.Response)
        except Exception as exc:
            future.set_exception(
                TransportError(f"{self.service_name}: malformed reply to {future.seq}: {exc}")
            )
            return
        if accept is not None:
            try:
                ok = accept(response)
                why = ""
            except Exception as exc:
                ok, why = False, f": {exc}"
            if not ok:
                self.rejected += 1
                log.warning("%s: reply to %d refused%s", self.service_name, future.seq, why)
                future.set_exception(
                    ReplyRejectedError(
                        f"{self.service_name}: the reply to {future.seq} failed its acceptance "
                        f"check{why} (rclpy cannot wait for another)"
                    )
                )
                return
        future.set_result(response)

    def call(self, request: Any, timeout_s: float = 5.0, accept: api.Accept | None = None) -> Any:
        """Blocking call, from any thread but the executor's (as in rclpy)."""
        future = self.call_async(request, accept)
        if not future.wait(timeout_s):
            self.cancel(future)
            raise ServiceTimeoutError(
                f"service {self.service_name}: no response within {timeout_s:g} s"
            )
        return future.result(0)

    def cancel(self, future: Future[Any]) -> None:
        with self._lock:
            ros_future = self._pending.pop(future.seq, None)
        if ros_future is not None:
            self._client.remove_pending_request(ros_future)
        future.cancel()

    def service_is_ready(self) -> bool:
        return bool(self._client.service_is_ready())

    @property
    def matched(self) -> bool:
        if not self._seen_ready:
            self._seen_ready = self.service_is_ready()
        return self._seen_ready

    def destroy(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for ros_future in pending.values():
            self._client.remove_pending_request(ros_future)
        self._ros_node.destroy_client(self._client)


class RclpyTimer(api.Timer):
    def __init__(self, ros_node: Any, period_s: float, callback: Callable[[], None]) -> None:
        if period_s <= 0:
            raise ConfigurationError(f"timer period must be positive, got {period_s}")
        self.period_s = period_s
        self._timer = ros_node.create_timer(period_s, callback)

    def cancel(self) -> None:
        self._timer.cancel()

    def reset(self) -> None:
        self._timer.reset()


# -- context and executor ------------------------------------------------------------------------


class RclpyExecutor(api.Executor):
    """rclpy's SingleThreadedExecutor; a failing callback is logged, never fatal (as on the
    embedded runtime: one node's bug must not stop every node of the process)."""

    def __init__(self, context: RclpyContext) -> None:
        self.context = context
        self._executor = rclpy.executors.SingleThreadedExecutor(context=context.rclpy_context)
        self._shutdown = threading.Event()
        self.thread: threading.Thread | None = None

    def add_node(self, node: api.NodeHandle) -> None:
        self._executor.add_node(self.context.ros_node(node))

    def remove_node(self, node: api.NodeHandle) -> None:
        ros_node = self.context.ros_node_or_none(node)
        if ros_node is not None:
            self._executor.remove_node(ros_node)

    def spin_once(self, timeout_s: float | None = None) -> None:
        try:
            self._executor.spin_once(timeout_sec=timeout_s)
        except Exception:
            log.exception("callback failed")

    def spin(self) -> None:
        while not self._shutdown.is_set() and self.context.ok:
            self.spin_once(0.5)

    def spin_in_thread(self, name: str = "iomt-executor") -> threading.Thread:
        self.thread = threading.Thread(target=self.spin, name=name, daemon=True)
        self.thread.start()
        return self.thread

    def wake(self) -> None:
        self._executor.wake()

    def shutdown(self, timeout_s: float = 2.0) -> None:
        self._shutdown.set()
        self.wake()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout_s)
        self._executor.shutdown(timeout_sec=timeout_s)


class RclpyContext(api.RuntimeContext):
    """An rclpy context of its own (``rclpy.init(context=...)``), one rclpy node per iomt node.

    ``dds_config``: ``loopback`` (default) keeps discovery on this host
    (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` unless the environment says otherwise);
    ``lan`` leaves ROS 2's defaults. Other DDS settings are the RMW's own (e.g. a Fast DDS
    XML profile in ``FASTDDS_DEFAULT_PROFILES_FILE``).
    """

    def __init__(self, *, domain_id: int | None = None, dds_config: str | None = None) -> None:
        if dds_config not in (None, "loopback", "lan"):
            raise ConfigurationError(
                f"rclpy runtime: --dds-config {dds_config!r} is a Cyclone DDS setting; use "
                "loopback or lan, and configure the RMW through its own environment variables"
            )
        if dds_config in (None, "loopback"):
            os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        if domain_id is None:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
        self.domain_id = domain_id
        self.rclpy_context = rclpy.context.Context()
        try:
            # The container handles SIGINT/SIGTERM itself (and stops its nodes in order).
            rclpy.init(
                context=self.rclpy_context,
                domain_id=domain_id,
                signal_handler_options=rclpy.signals.SignalHandlerOptions.NO,
            )
        except Exception as exc:
            raise TransportError(f"rclpy.init failed: {exc}") from exc
        self._nodes: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._shut = False

    @property
    def ok(self) -> bool:
        return not self._shut and bool(self.rclpy_context.ok())

    def shutdown(self) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            nodes, self._nodes = list(self._nodes.values()), {}
        for ros_node in nodes:
            ros_node.destroy_node()
        if self.rclpy_context.ok():
            rclpy.shutdown(context=self.rclpy_context)

    def __enter__(self) -> RclpyContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def create_executor(self) -> RclpyExecutor:
        return RclpyExecutor(self)

    # -- nodes ----------------------------------------------------------------------------

    def ros_node(self, node: api.NodeHandle) -> Any:
        return self._nodes[node._key]

    def ros_node_or_none(self, node: api.NodeHandle) -> Any:
        return self._nodes.get(node._key)

    def attach_node(self, node: api.NodeHandle) -> None:
        ros_node = rclpy.node.Node(
            node.get_name(),
            namespace=node.get_namespace(),
            context=self.rclpy_context,
            # iomt's nodes have no ROS parameters; six parameter services per node would be
            # most of a ward's graph.
            start_parameter_services=False,
        )
        with self._lock:
            self._nodes[node._key] = ros_node

    def detach_node(self, node: api.NodeHandle) -> None:
        with self._lock:
            ros_node = self._nodes.pop(node._key, None)
        if ros_node is not None:
            ros_node.destroy_node()

    def create_publisher(
        self,
        node: api.NodeHandle,
        msg_type: type[MsgT],
        topic: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> api.Publisher[MsgT]:
        return RclpyPublisher(self.ros_node(node), msg_type, topic, qos)

    def create_subscription(
        self,
        node: api.NodeHandle,
        msg_type: type[MsgT],
        topic: str,
        callback: Callable[[Any], None],
        qos: QoSProfile,
        *,
        raw: bool,
        shared: bool = False,
    ) -> api.Subscription[MsgT]:
        # rclpy makes an endpoint per node; there is nothing to share at this level
        return RclpySubscription(self.ros_node(node), msg_type, topic, callback, qos, raw=raw)

    def create_service(
        self,
        node: api.NodeHandle,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        callback: Callable[..., Any],
        qos: QoSProfile,
        *,
        deferred: bool,
    ) -> api.Service:
        return RclpyService(self.ros_node(node), srv_type, name, callback, qos, deferred=deferred)

    def create_client(
        self,
        node: api.NodeHandle,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> api.Client:
        return RclpyClient(self.ros_node(node), srv_type, name, qos)

    def create_timer(
        self, node: api.NodeHandle, period_s: float, callback: Callable[[], None]
    ) -> api.Timer:
        return RclpyTimer(self.ros_node(node), period_s, callback)
