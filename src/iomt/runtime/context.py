"""Context: one DDS domain participant per process, shared by every node in it.

This mirrors rmw_cyclonedds_cpp: a process has one participant (Cyclone runs about five
threads per domain regardless), its nodes are purely a ROS-level notion announced on
``ros_discovery_info``, and all of them share topics, the participant's GUID prefix and
a per-context counter for client/service ids.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.topic import Topic

from iomt.errors import ConfigurationError, TransportError
from iomt.msg import Gid, NodeEntitiesInfo, ParticipantEntitiesInfo, ServiceType, encode
from iomt.runtime import api, naming
from iomt.runtime import config as dds_config
from iomt.runtime._dds import delete_entity, write_raw
from iomt.runtime.client import DdsClient
from iomt.runtime.executor import Executor
from iomt.runtime.publisher import DdsPublisher
from iomt.runtime.qos import DurabilityPolicy, QoSProfile, qos_profile_latched
from iomt.runtime.service import DdsService
from iomt.runtime.shared import SharedClient, SharedPublisher, SharedReader, SharedSubscription
from iomt.runtime.subscription import DdsSubscription
from iomt.runtime.timer import Timer

MsgT = TypeVar("MsgT")

log = logging.getLogger(__name__)

DISCOVERY_INFO_TOPIC = "ros_discovery_info"

# Announce the graph at most this often: every announcement carries all of the process's
# endpoints, so announcing per endpoint costs O(n^2) when a node creates n of them.
GRAPH_COALESCE_S = 0.05


@dataclass
class _Shared:
    """A shared endpoint and how many handles each node holds on it."""

    entity: DdsClient | SharedReader | DdsPublisher[Any]
    holders: dict[int, int] = field(default_factory=dict)


@dataclass
class _NodeEntities:
    namespace: str
    name: str
    # gid bytes -> its message, built once (the graph is re-announced often).
    readers: dict[bytes, Gid] = field(default_factory=dict)
    writers: dict[bytes, Gid] = field(default_factory=dict)
    # This node's NodeEntitiesInfo as CDR, kept until the node changes: re-announcing the
    # graph after one endpoint was added re-encodes that node only, not the whole process.
    cdr: bytes | None = None

    def encoded(self) -> bytes:
        if self.cdr is None:
            info = NodeEntitiesInfo(
                node_namespace=self.namespace,
                node_name=self.name,
                reader_gid_seq=list(self.readers.values()),
                writer_gid_seq=list(self.writers.values()),
            )
            # Every field is 1- or 4-byte aligned and the struct ends 4-aligned, so its
            # encoding at any 4-aligned offset of the enclosing sample is the same bytes.
            self.cdr = encode(info)[_CDR_HEADER:]
        return self.cdr


_CDR_HEADER = 4


def encode_participant_info(gid: bytes, nodes: list[_NodeEntities]) -> bytes:
    """``ParticipantEntitiesInfo`` as a little-endian CDR sample, from cached node parts."""
    return b"".join(
        [b"\x00\x01\x00\x00", gid, struct.pack("<I", len(nodes)), *(n.encoded() for n in nodes)]
    )


class Context(api.RuntimeContext):
    """The embedded runtime: owns the DomainParticipant and the process's entry in the ROS
    graph, and makes the nodes' entities directly on Cyclone DDS."""

    def __init__(
        self,
        *,
        domain_id: int | None = None,
        dds_config_name: str | None = None,
        enclave: str = "/",
    ) -> None:
        settings = dds_config.resolve(domain_id, dds_config_name)
        self.domain_id = settings.domain_id
        self.config_source = settings.config_source
        self._lock = threading.RLock()
        try:
            # A Domain created with explicit XML must exist before the participant.
            self._domain = (
                Domain(self.domain_id, settings.config_xml) if settings.config_xml else None
            )
            self.participant = DomainParticipant(
                self.domain_id, qos=Qos(Policy.Userdata(f"enclave={enclave};".encode()))
            )
        except Exception as exc:  # cyclonedds raises DDSException or plain errors
            raise TransportError(f"cannot create DDS participant: {exc}") from exc
        self.gid: bytes = self.participant.guid.bytes
        self._topics: dict[tuple[str, type], Topic[Any]] = {}
        self._client_service_ids = 0
        self._nodes: dict[int, _NodeEntities] = {}
        self._shared: dict[tuple[Any, ...], _Shared] = {}
        self._batch_depth = 0
        self._graph_dirty = False
        self._flush_pending = False
        self._last_publish = 0.0
        self._shutdown = False
        info_qos = qos_profile_latched.to_dds()
        self.discovery_info_topic: Topic[ParticipantEntitiesInfo] = Topic(
            self.participant, DISCOVERY_INFO_TOPIC, ParticipantEntitiesInfo, qos=info_qos
        )
        self._info_writer: DataWriter[ParticipantEntitiesInfo] = DataWriter(
            self.participant, self.discovery_info_topic, qos=info_qos
        )
        self._publish_graph()

    # -- topics and ids -------------------------------------------------------------------

    def topic(self, dds_name: str, data_type: type, qos: QoSProfile) -> Topic[Any]:
        key = (dds_name, data_type)
        with self._lock:
            topic = self._topics.get(key)
            if topic is None:
                try:
                    topic = Topic(self.participant, dds_name, data_type, qos=qos.to_dds())
                except Exception as exc:
                    raise TransportError(f"cannot create topic {dds_name!r}: {exc}") from exc
                self._topics[key] = topic
            return topic

    def next_client_service_id(self) -> bytes:
        """16 bytes: the participant's GUID prefix and a big-endian counter (as rmw)."""
        with self._lock:
            self._client_service_ids += 1
            counter = self._client_service_ids
        return self.gid[:12] + counter.to_bytes(4, "big")

    # -- the nodes' entities -----------------------------------------------------------------

    def create_executor(self) -> Executor:
        return Executor(self)

    def attach_node(self, node: api.NodeHandle) -> None:
        self.add_node(node._key, node.get_namespace(), node.get_name())

    def detach_node(self, node: api.NodeHandle) -> None:
        self.remove_node(node._key)

    def create_publisher(
        self,
        node: api.NodeHandle,
        msg_type: type[MsgT],
        topic: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> api.Publisher[MsgT]:
        dds_topic = naming.topic_to_dds(topic)
        if shared:
            if qos.durability is DurabilityPolicy.TRANSIENT_LOCAL:
                raise ConfigurationError(
                    f"{topic}: a transient-local publisher is not shared (its history "
                    "would hold every node's samples together)"
                )
            key = ("publisher", topic, msg_type, qos)
            base = self._share(
                key, node, lambda: DdsPublisher(self, msg_type, topic, dds_topic, qos)
            )
            assert isinstance(base, DdsPublisher)
            self.add_endpoint(node._key, base.gid, is_writer=True)
            return SharedPublisher(base, lambda: self._unshare(key, node._key))
        pub = DdsPublisher(self, msg_type, topic, dds_topic, qos)
        self.add_endpoint(node._key, pub.gid, is_writer=True)
        return pub

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
        if shared:
            key = ("subscription", topic, msg_type, qos, raw)
            dds_topic = naming.topic_to_dds(topic)
            reader = self._share(
                key, node, lambda: SharedReader(self, msg_type, topic, dds_topic, qos, raw=raw)
            )
            assert isinstance(reader, SharedReader)
            handle: SharedSubscription[MsgT] = SharedSubscription(
                reader, callback, lambda: self._unshare(key, node._key)
            )
            reader.join(handle)
            self.add_endpoint(node._key, reader.gid, is_writer=False)
            node._add_waitable(reader)
            node._add_waitable(reader.replay)
            return handle
        sub = DdsSubscription(
            self, msg_type, topic, naming.topic_to_dds(topic), callback, qos, raw=raw
        )
        self.add_endpoint(node._key, sub.gid, is_writer=False)
        node._add_waitable(sub)
        return sub

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
        srv = DdsService(
            self, srv_type, name, naming.service_to_dds(name), callback, qos, deferred=deferred
        )
        with self.graph_batch():
            self.add_endpoint(node._key, srv.reader_gid, is_writer=False)
            self.add_endpoint(node._key, srv.writer_gid, is_writer=True)
        node._add_waitable(srv)
        return srv

    def create_client(
        self,
        node: api.NodeHandle,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        qos: QoSProfile,
        *,
        shared: bool = False,
    ) -> api.Client:
        handle: api.Client
        if shared:
            key = ("client", name, srv_type, qos)
            base = self._share(
                key, node, lambda: DdsClient(self, srv_type, name, naming.service_to_dds(name), qos)
            )
            assert isinstance(base, DdsClient)
            cli = base
            handle = SharedClient(base, lambda: self._unshare(key, node._key))
        else:
            cli = DdsClient(self, srv_type, name, naming.service_to_dds(name), qos)
            handle = cli
        with self.graph_batch():
            self.add_endpoint(node._key, cli.writer_gid, is_writer=True)
            self.add_endpoint(node._key, cli.reader_gid, is_writer=False)
        node._add_waitable(cli)
        return handle

    def create_timer(
        self, node: api.NodeHandle, period_s: float, callback: Callable[[], None]
    ) -> api.Timer:
        timer = Timer(period_s, callback)
        node._add_timer(timer)
        return timer

    # -- endpoints the process's nodes share (iomt.runtime.shared) -------------------------------

    def _share(
        self,
        key: tuple[Any, ...],
        node: api.NodeHandle,
        make: Callable[[], DdsClient | SharedReader | DdsPublisher[Any]],
    ) -> DdsClient | SharedReader | DdsPublisher[Any]:
        with self._lock:
            entry = self._shared.get(key)
            if entry is None:
                entry = self._shared[key] = _Shared(make())
                if not isinstance(entry.entity, DdsPublisher):  # the executor's waitables
                    entry.entity.shared = True
            entry.holders[node._key] = entry.holders.get(node._key, 0) + 1
            return entry.entity

    def _unshare(self, key: tuple[Any, ...], node_key: int) -> None:
        """A node let go of a handle: the node stops listing the endpoint once it holds no
        other handle on it, and the endpoint goes with the last holder."""
        with self._lock:
            entry = self._shared.get(key)
            if entry is None:
                return
            left = entry.holders.get(node_key, 0) - 1
            if left > 0:
                entry.holders[node_key] = left
                return
            entry.holders.pop(node_key, None)
            entity = entry.entity
            gids = (
                (entity.writer_gid, entity.reader_gid)
                if isinstance(entity, DdsClient)
                else (entity.gid,)
            )
            for gid in gids:
                self.remove_endpoint(node_key, gid)
            if entry.holders:
                return
            del self._shared[key]
        entity.destroy()

    def shared_endpoints(self) -> int:
        """How many shared endpoints the process has (clients and readers)."""
        with self._lock:
            return len(self._shared)

    # -- the graph as ROS 2 tools see it ------------------------------------------------------

    def add_node(self, key: int, namespace: str, name: str) -> None:
        with self._lock:
            self._nodes[key] = _NodeEntities(namespace, name)
            self._graph_changed()

    def remove_node(self, key: int) -> None:
        with self._lock:
            self._nodes.pop(key, None)
            self._graph_changed()

    def add_endpoint(self, key: int, gid: bytes, *, is_writer: bool) -> None:
        with self._lock:
            node = self._nodes[key]
            (node.writers if is_writer else node.readers)[gid] = Gid(data=gid)
            node.cdr = None
            self._graph_changed()

    def remove_endpoint(self, key: int, gid: bytes) -> None:
        with self._lock:
            node = self._nodes.get(key)
            if node is None:
                return
            node.readers.pop(gid, None)
            node.writers.pop(gid, None)
            node.cdr = None
            self._graph_changed()

    @contextlib.contextmanager
    def graph_batch(self) -> Iterator[None]:
        """Announce the graph once after creating many nodes/entities, not per entity."""
        with self._lock:
            self._batch_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._graph_dirty:
                    self._graph_changed()

    def _graph_changed(self) -> None:
        # Called with the lock held.
        if self._batch_depth:
            self._graph_dirty = True
            return
        now = time.monotonic()
        if not self._flush_pending and now - self._last_publish >= GRAPH_COALESCE_S:
            self._publish_graph()
            return
        self._graph_dirty = True
        if not self._flush_pending:
            self._flush_pending = True
            flush = threading.Timer(self._last_publish + GRAPH_COALESCE_S - now, self._flush)
            flush.daemon = True
            flush.start()

    def _flush(self) -> None:
        with self._lock:
            self._flush_pending = False
            if self._graph_dirty:
                self._publish_graph()

    def _publish_graph(self) -> None:
        if self._shutdown:
            return
        sample = encode_participant_info(self.gid, list(self._nodes.values()))
        self._graph_dirty = False
        self._last_publish = time.monotonic()
        try:
            write_raw(self._info_writer, sample)
        except Exception as exc:
            log.warning("could not publish %s: %s", DISCOVERY_INFO_TOPIC, exc)

    # -- lifetime ---------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return not self._shutdown

    def shutdown(self) -> None:
        with self._lock:
            if self._shutdown:
                return
            self._nodes.clear()
            self._publish_graph()
            self._shutdown = True
        delete_entity(self.participant)
        if self._domain is not None:
            delete_entity(self._domain)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
