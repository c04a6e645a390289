"""The ROS graph as ``ros2 node list`` / ``ros2 topic list -t`` / rqt_graph show it.

Read from DDS discovery alone, like the ROS 2 CLI daemon: the builtin DCPSParticipant,
DCPSPublication and DCPSSubscription topics give every endpoint (GUID, topic, type,
owning participant); each participant's ``ros_discovery_info`` sample says which of its
reader/writer GUIDs belong to which node. Endpoints no node claims (plain DDS
applications) are listed under the participant as ``(no node)``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cyclonedds.builtin import (
    BuiltinDataReader,
    BuiltinTopicDcpsParticipant,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
from cyclonedds.core import InstanceState, Policy
from cyclonedds.sub import DataReader

from iomt.msg import ParticipantEntitiesInfo
from iomt.runtime import naming
from iomt.runtime._dds import delete_entity
from iomt.runtime.context import DISCOVERY_INFO_TOPIC, Context
from iomt.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile

_BATCH = 4096
# ros_discovery_info is unkeyed: every participant writes the same instance, so the reader
# must keep all samples (rmw uses KEEP_ALL) and fold them per participant GID.
_INFO_READER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_ALL, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    gid: bytes
    participant: bytes
    dds_topic: str
    dds_type: str
    is_writer: bool


@dataclass
class NodeInfo:
    namespace: str
    name: str
    participant: bytes
    publishers: dict[str, set[str]] = field(default_factory=dict)  # topic -> types
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    services: dict[str, set[str]] = field(default_factory=dict)
    clients: dict[str, set[str]] = field(default_factory=dict)
    # Endpoints the node announced on ros_discovery_info that builtin-topic discovery has
    # not delivered yet (SEDP lags the node announcement for a moment).
    unresolved: int = 0

    @property
    def fqn(self) -> str:
        return (
            self.name if self.name.startswith("(") else naming.node_fqn(self.namespace, self.name)
        )


@dataclass
class GraphSnapshot:
    participants: dict[bytes, str]  # gid -> enclave/user data summary
    nodes: list[NodeInfo]

    def node_names(self) -> list[str]:
        return sorted(n.fqn for n in self.nodes if not n.name.startswith("("))

    def complete_node_names(self) -> list[str]:
        """Nodes whose every announced endpoint has been discovered."""
        return sorted(n.fqn for n in self.nodes if not n.name.startswith("(") and n.unresolved == 0)

    def topics(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            for role, table in (
                ("publishers", node.publishers),
                ("subscribers", node.subscriptions),
            ):
                for topic, types in table.items():
                    entry = out.setdefault(
                        topic, {"types": set(), "publishers": [], "subscribers": []}
                    )
                    entry["types"] |= types
                    entry[role].append(node.fqn)
        return dict(sorted(out.items()))

    def services(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            for role, table in (("servers", node.services), ("clients", node.clients)):
                for srv, types in table.items():
                    entry = out.setdefault(srv, {"types": set(), "servers": [], "clients": []})
                    entry["types"] |= types
                    entry[role].append(node.fqn)
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        def clean(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {
                k: {kk: sorted(vv) if isinstance(vv, set | list) else vv for kk, vv in v.items()}
                for k, v in d.items()
            }

        return {
            "participants": len(self.participants),
            "nodes": [
                {
                    "name": n.fqn,
                    "participant": uuid.UUID(bytes=n.participant).hex,
                    "publishers": {k: sorted(v) for k, v in sorted(n.publishers.items())},
                    "subscriptions": {k: sorted(v) for k, v in sorted(n.subscriptions.items())},
                    "services": {k: sorted(v) for k, v in sorted(n.services.items())},
                    "clients": {k: sorted(v) for k, v in sorted(n.clients.items())},
                }
                for n in sorted(self.nodes, key=lambda n: n.fqn)
            ],
            "topics": clean(self.topics()),
            "services": clean(self.services()),
        }


class GraphReader:
    """Keeps a live view of the graph; call ``update()`` (cheap, incremental) to refresh."""

    def __init__(self, context: Context) -> None:
        self.context = context
        dp = context.participant
        self._participants = BuiltinDataReader(dp, BuiltinTopicDcpsParticipant)
        self._publications = BuiltinDataReader(dp, BuiltinTopicDcpsPublication)
        self._subscriptions = BuiltinDataReader(dp, BuiltinTopicDcpsSubscription)
        self._info: DataReader[ParticipantEntitiesInfo] = DataReader(
            dp, context.discovery_info_topic, qos=_INFO_READER_QOS.to_dds()
        )
        self._participant_data: dict[bytes, str] = {}
        self._endpoints: dict[bytes, Endpoint] = {}
        self._node_info: dict[bytes, ParticipantEntitiesInfo] = {}
        self.changes = 0

    def update(self) -> int:
        """Fold in what discovery learned since the last call; returns the number of changes."""
        changes = 0
        for p in _take_all(self._participants):
            key = p.key.bytes
            if _alive(p):
                if key not in self._participant_data:
                    changes += 1
                self._participant_data[key] = _user_data(p.qos)
            else:
                changes += 1
                self._participant_data.pop(key, None)
                self._node_info.pop(key, None)
        for reader, is_writer in ((self._publications, True), (self._subscriptions, False)):
            for e in _take_all(reader):
                key = e.key.bytes
                if _alive(e):
                    if key not in self._endpoints:
                        changes += 1
                    self._endpoints[key] = Endpoint(
                        key, e.participant_key.bytes, e.topic_name, e.type_name, is_writer
                    )
                elif self._endpoints.pop(key, None) is not None:
                    changes += 1
        for info in self._info.take(_BATCH):
            sample_info = getattr(info, "sample_info", None)
            if sample_info is None or not sample_info.valid_data:
                continue
            gid = bytes(info.gid.data)
            self._node_info[gid] = info
            changes += 1
        self.changes += changes
        return changes

    def snapshot(self) -> GraphSnapshot:
        owner: dict[bytes, NodeInfo] = {}
        nodes: list[NodeInfo] = []
        for pgid, info in self._node_info.items():
            if pgid not in self._participant_data:
                continue
            for n in info.node_entities_info_seq:
                node = NodeInfo(str(n.node_namespace), str(n.node_name), pgid)
                nodes.append(node)
                for g in list(n.reader_gid_seq) + list(n.writer_gid_seq):
                    gid = bytes(g.data)
                    owner[gid] = node
                    if gid not in self._endpoints:
                        node.unresolved += 1
        orphans: dict[bytes, NodeInfo] = {}
        for ep in self._endpoints.values():
            if ep.dds_topic == DISCOVERY_INFO_TOPIC:
                continue
            owned = owner.get(ep.gid)
            node = (
                owned
                if owned is not None
                else orphans.setdefault(ep.participant, NodeInfo("/", "(no node)", ep.participant))
            )
            _attribute(node, ep)
        nodes.extend(o for o in orphans.values() if _has_ros_endpoints(o))
        return GraphSnapshot(dict(self._participant_data), nodes)

    def wait_until(
        self, predicate: Callable[[GraphSnapshot], bool], timeout_s: float, poll_s: float = 0.05
    ) -> GraphSnapshot:
        """Poll discovery until ``predicate(snapshot)`` holds or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.update()
            snap = self.snapshot()
            if predicate(snap) or time.monotonic() >= deadline:
                return snap
            time.sleep(poll_s)

    def settle(self, quiet_s: float = 0.5, timeout_s: float = 5.0) -> GraphSnapshot:
        """Poll until discovery has been quiet for ``quiet_s`` (or ``timeout_s`` passed)."""
        deadline = time.monotonic() + timeout_s
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            if self.update():
                last_change = time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                break
            time.sleep(0.05)
        return self.snapshot()

    def close(self) -> None:
        for r in (self._participants, self._publications, self._subscriptions, self._info):
            delete_entity(r)


def _attribute(node: NodeInfo, ep: Endpoint) -> None:
    demangled = naming.demangle_topic(ep.dds_topic)
    if demangled is None:
        return
    kind, name = demangled
    ros_type = naming.dds_type_to_ros(ep.dds_type)
    if kind is naming.EndpointKind.TOPIC:
        table = node.publishers if ep.is_writer else node.subscriptions
    elif kind is naming.EndpointKind.SERVICE_REQUEST:
        table = node.clients if ep.is_writer else node.services
    else:
        table = node.services if ep.is_writer else node.clients
    table.setdefault(name, set()).add(ros_type)


def _has_ros_endpoints(node: NodeInfo) -> bool:
    return bool(node.publishers or node.subscriptions or node.services or node.clients)


def _take_all(reader: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        batch = reader.take(_BATCH)
        out.extend(batch)
        if len(batch) < _BATCH:
            return out


def _alive(sample: Any) -> bool:
    info = getattr(sample, "sample_info", None)
    return info is None or info.instance_state == InstanceState.Alive


def _user_data(qos: Any) -> str:
    try:
        return bytes(qos[Policy.Userdata].data).decode("utf-8", "replace")
    except Exception:
        return ""
