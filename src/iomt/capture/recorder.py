"""The bag recorder: every iomt topic and service, as it crossed the wire, into rosbag2.

What ``ros2 bag record --all --all-services`` does on a ROS 2 Jazzy machine, for a graph
that has no rcl: the :class:`Recorder` node watches DDS discovery (the builtin
DCPSPublication topic) and, as writers appear, subscribes *raw* to each ROS topic
(``rt/…``) whose type is an iomt type or any ROS 2 Jazzy type rosbags knows, and to each
iomt service's request and reply topics (``rq/…Request``, ``rr/…Reply``). Topic samples are
written to the bag byte for byte as they arrived (CDR, encapsulation header included — a
malformed sample is traffic too and is stored as it came), stamped with the receive time.

Services go where Jazzy puts them: channel ``/<service>/_service_event``, type
``<pkg>/srv/<Name>_Event`` (see :mod:`iomt.capture.interfaces`). Each request on the wire
becomes a ``REQUEST_RECEIVED`` event stamped with its receive time, each reply a
``RESPONSE_SENT`` event stamped with the writer's source timestamp — the two events a
Jazzy server's introspection publishes — with ``client_gid`` and ``sequence_number`` from
rmw's request header, so requests and replies pair up. An rq/rr sample that does not
decode cannot be put in an event; it is kept whole on
``/<service>/_malformed_samples`` as a ``std_msgs/msg/UInt8MultiArray`` whose single
dimension's label is the DDS topic it arrived on.

Bags are MCAP, metadata.yaml version 9, written by rosbags; each connection carries its
``ros2msg`` definition, RIHS01 hash and the QoS profiles its writers offered. Readers are
KEEP_ALL (reliable when every writer is), so a sample is never overwritten before it is
taken -- which lets the recorder wake once per batch: after a wake-up it lets samples
gather for ``batch_ms`` (10 ms) before taking them, so a message's log time is when it was
taken, at most that much after it arrived. What DDS still reports lost, what could not
be written, and the topics that could not be recorded are counted and left in
metadata.yaml's ``custom_data`` under ``iomt.recorder`` (shown by ``iomt bag info``). A
bag is complete after a clean stop: :meth:`Recorder.close` (also run by ``destroy_node``)
takes what is still queued, then writes the MCAP summary and metadata.yaml.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iomt.capture.bag import RECORDER_CUSTOM_DATA_KEY
from iomt.capture.errors import BagWriteError
from iomt.capture.interfaces import (
    REQUEST_RECEIVED,
    RESPONSE_SENT,
    SERVICE_EVENT_SUFFIX,
    CaptureTypes,
    ChannelType,
    dds_type_to_ros,
)
from iomt.capture.qos import offered_qos, recording_profile
from iomt.errors import ConfigurationError, ProtocolError
from iomt.runtime import Context, Executor, Node, ReliabilityPolicy
from iomt.runtime import naming as ros_naming
from iomt.runtime.tap import DiscoveredWriter, PublicationWatcher, RawReader
from iomt.topology.params import RecorderParams

__all__ = [
    "MALFORMED_SUFFIX",
    "BagWriter",
    "Recorder",
    "RecorderStats",
    "record",
    "recorder_node",
]

log = logging.getLogger(__name__)
#: the longest a recorder may let samples gather after a wake-up (RecorderParams.batch_ms)
MAX_BATCH_MS = 1000.0

#: Channel suffix for rq/rr samples that could not be turned into service events.
MALFORMED_SUFFIX = "/_malformed_samples"
_RAW_TYPE = "std_msgs/msg/UInt8MultiArray"


@dataclass
class RecorderStats:
    """What the recorder did, and everything it could not record."""

    messages: int = 0  # messages written (topic samples + service events + malformed)
    service_events: int = 0
    malformed_service_samples: int = 0  # kept whole on <service>/_malformed_samples
    lost_samples: int = 0  # DDS SAMPLE_LOST on our readers (best-effort gaps)
    write_errors: int = 0  # samples taken but not written (storage failure)
    unmatched_writers: int = 0  # best-effort writers on a topic read reliably: not received
    skipped_topics: dict[str, str] = field(default_factory=dict)  # DDS topic -> reason

    @property
    def dropped(self) -> int:
        return self.lost_samples + self.write_errors

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "service_events": self.service_events,
            "malformed_service_samples": self.malformed_service_samples,
            "dropped": self.dropped,
            "lost_samples": self.lost_samples,
            "write_errors": self.write_errors,
            "unmatched_writers": self.unmatched_writers,
            "skipped_topics": dict(sorted(self.skipped_topics.items())),
        }


def _writer_class() -> type[Any]:
    """rosbags' rosbag2 ``Writer``, with the per-connection costs made independent of how
    many connections the bag already has.

    Stock ``add_connection`` compares the new connection with every existing one and builds
    a YAML emitter to serialize its offered QoS profiles (~5 ms each); ``write`` looks the
    connection up in a list. A ward's recorder opens a connection per service it hears
    (over a thousand at 400 devices), so both grew with the ward. Here duplicates are found
    in a dict, each distinct list of QoS profiles is serialized once (the same YAML text,
    with the same emitter settings), and writes check the connection by identity. What ends
    up in the bag is what the stock writer writes (tested).
    """
    from io import StringIO  # noqa: PLC0415

    from rosbags.interfaces import (  # noqa: PLC0415
        Connection,
        ConnectionExtRosbag2,
        MessageDefinition,
        MessageDefinitionFormat,
    )
    from rosbags.rosbag2 import CompressionMode, Writer, WriterError  # noqa: PLC0415
    from rosbags.rosbag2.metadata import dump_qos_v9  # noqa: PLC0415
    from ruamel.yaml import YAML  # noqa: PLC0415

    class _Writer(Writer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._keys: set[tuple[str, str, str, tuple[Any, ...]]] = set()
            self._ids: set[int] = set()
            self._dumped: dict[tuple[Any, ...], str] = {}

        def add_connection(
            self,
            topic: str,
            msgtype: str,
            *,
            typestore: Any = None,
            msgdef: str | None = None,
            rihs01: str | None = None,
            serialization_format: str = "cdr",
            offered_qos_profiles: Sequence[Any] = (),
        ) -> Any:
            if not self.storage or self.version < 9 or msgdef is None or not rihs01:
                return super().add_connection(
                    topic,
                    msgtype,
                    typestore=typestore,
                    msgdef=msgdef,
                    rihs01=rihs01,
                    serialization_format=serialization_format,
                    offered_qos_profiles=offered_qos_profiles,
                )
            profiles = tuple(offered_qos_profiles)
            key = (topic, msgtype, serialization_format, profiles)
            if key in self._keys:
                raise WriterError(f"Connection can only be added once: {topic} {msgtype}.")
            idl = msgdef.startswith("=" * 80 + "\nIDL: ")
            connection = Connection(
                id=len(self.connections) + 1,
                topic=topic,
                msgtype=msgtype,
                msgdef=MessageDefinition(
                    MessageDefinitionFormat.IDL if idl else MessageDefinitionFormat.MSG, msgdef
                ),
                digest=rihs01,
                msgcount=0,
                ext=ConnectionExtRosbag2(
                    serialization_format=serialization_format,
                    offered_qos_profiles=list(profiles),
                ),
                owner=self,
            )
            dumped = self._dumped.get(profiles)
            if dumped is None:
                stream = StringIO()
                yaml = YAML(typ="safe")
                yaml.default_flow_style = False
                yaml.dump(dump_qos_v9(list(profiles)), stream)
                dumped = self._dumped[profiles] = stream.getvalue().strip()
            if msgtype not in self.added_types:
                self.storage.add_msgtype(connection)
                self.added_types.add(msgtype)
            self.storage.add_connection(connection, dumped)
            self.connections.append(connection)
            self.counts[connection.id] = 0
            self._keys.add(key)
            self._ids.add(id(connection))
            return connection

        def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
            if (
                not self.storage
                or id(connection) not in self._ids
                or self.compression_mode is CompressionMode.MESSAGE
            ):
                super().write(connection, timestamp, data)
                return
            self.storage.write(connection, timestamp, data)
            self.counts[connection.id] += 1
            self.min_timestamp = min(timestamp, self.min_timestamp)
            self.max_timestamp = max(timestamp, self.max_timestamp)

        def close(self) -> None:
            # Stock close() emits metadata.yaml node by node: ~1 ms per connection (4 s
            # at 400 devices, on the ward's stopping time). The same text, each distinct
            # connection entry emitted once (tested against the stock writer).
            if (
                not self.storage
                or self.version < 9
                or self.compression_mode is not CompressionMode.NONE
                or not all(isinstance(c.ext, ConnectionExtRosbag2) for c in self.connections)
            ):
                super().close()
                return
            duration = max(0, self.max_timestamp - self.min_timestamp)
            start = self.min_timestamp
            count = sum(self.counts.values())
            name = self.storage.path.name
            info: dict[str, Any] = {
                "version": self.version,
                "storage_identifier": self.storage_plugin.name.lower(),
                "relative_file_paths": [name],
                "duration": {"nanoseconds": duration},
                "starting_time": {"nanoseconds_since_epoch": start},
                "message_count": count,
                "topics_with_message_count": [],
                "compression_format": "",
                "compression_mode": "",
                "files": [
                    {
                        "path": name,
                        "starting_time": {"nanoseconds_since_epoch": start},
                        "duration": {"nanoseconds": duration},
                        "message_count": count,
                    }
                ],
                "custom_data": self.custom_data or None,
                "ros_distro": "rosbags",
            }
            entries = _MetadataEntries(_dump)
            outer = entries.document({"rosbag2_bagfile_information": info}, self._topics(), "  ")
            inner = entries.document(info, self._topics(), "")
            self.storage.close(self.version, inner.strip())
            self.storage = None
            tmp = self.metapath.with_suffix(".yaml.tmp")
            tmp.write_text(outer, "utf8")
            tmp.replace(self.metapath)

        def _topics(self) -> list[tuple[Any, int]]:
            return [(c, self.counts[c.id]) for c in self.connections]

    def _dump(data: Any) -> str:
        stream = StringIO()
        yaml = YAML(typ="safe")
        yaml.default_flow_style = False
        yaml.dump(data, stream)
        return stream.getvalue()

    return _Writer


_PLAIN_TOPIC = re.compile(r"/[A-Za-z0-9_/]*")


class _MetadataEntries:
    """metadata.yaml's ``topics_with_message_count``, as rosbags' YAML emitter writes it.

    An entry's text depends on its topic only through the name's length (a plain scalar
    without spaces is never split; only its length decides whether it moves to the next
    line), and on its count only in its first line. So each distinct (nesting, name length,
    type, format, QoS, hash) is emitted once, with a placeholder name of the same length,
    and the name and count put in; a name that might need quoting is emitted on its own.
    """

    def __init__(self, dump: Callable[[Any], str]) -> None:
        self._dump = dump
        self._templates: dict[tuple[Any, ...], list[str]] = {}

    def document(self, shell: dict[str, Any], topics: list[tuple[Any, int]], indent: str) -> str:
        text = self._dump(shell)
        if not topics:
            return text
        empty = f"{indent}topics_with_message_count: []\n"
        head, found, tail = text.partition(empty)
        if not found:
            raise ValueError("metadata without its topics list")
        listed = "".join(self._entry(c, n, indent) for c, n in topics)
        return f"{head}{indent}topics_with_message_count:\n{listed}{tail}"

    @staticmethod
    def _fields(c: Any, topic: str, count: int) -> dict[str, Any]:
        from rosbags.rosbag2.metadata import dump_qos_v9  # noqa: PLC0415

        return {
            "topic_metadata": {
                "name": topic,
                "type": c.msgtype,
                "serialization_format": c.ext.serialization_format,
                "offered_qos_profiles": dump_qos_v9(c.ext.offered_qos_profiles),
                "type_description_hash": c.digest,
            },
            "message_count": count,
        }

    def _render(self, c: Any, topic: str, count: int, indent: str) -> str:
        entry = self._fields(c, topic, count)
        if indent:
            text = self._dump({"x": {"topics_with_message_count": [entry]}})
            return text.split("\n", 2)[2]
        return self._dump({"topics_with_message_count": [entry]}).split("\n", 1)[1]

    def _entry(self, c: Any, count: int, indent: str) -> str:
        topic = c.topic
        if not _PLAIN_TOPIC.fullmatch(topic):
            return self._render(c, topic, count, indent)
        key = (
            indent,
            len(topic),
            c.msgtype,
            c.ext.serialization_format,
            tuple(c.ext.offered_qos_profiles),
            c.digest,
        )
        lines = self._templates.get(key)
        if lines is None:
            placeholder = "/" + "N" * (len(topic) - 1)
            lines = self._render(c, placeholder, 0, indent).split("\n")
            first = f"{indent}- message_count: 0"
            if lines[0] != first:
                raise ValueError(f"unexpected metadata entry {lines[0]!r}")
            at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("name:"))
            if lines[at].rstrip().endswith("name:"):  # the name moved to the next line
                at += 1
            lines[at] = lines[at].replace(placeholder, "{name}", 1)
            if "{name}" not in lines[at]:
                raise ValueError("placeholder name not found")
            self._templates[key] = lines
        out = list(lines)
        out[0] = f"{indent}- message_count: {count}"
        at = next(i for i, line in enumerate(out) if "{name}" in line)
        out[at] = out[at].replace("{name}", topic, 1)
        return "\n".join(out)


class BagWriter:
    """A rosbag2 bag being written: MCAP, metadata version 9, one connection per channel.

    Thread-safe. Connections are created on their first message, so their offered QoS
    profiles include every writer discovered by then.
    """

    def __init__(self, output: str | Path, types: CaptureTypes) -> None:
        from rosbags.rosbag2 import StoragePlugin  # noqa: PLC0415

        self.path = Path(output)
        self.types = types
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, str], Any] = {}
        self.counts: dict[tuple[str, str], int] = {}
        try:
            self._writer = _writer_class()(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except Exception as exc:  # rosbags' WriterError, OSError
            raise BagWriteError(f"cannot create bag {self.path}: {exc}") from exc
        self._closed = False

    def write(
        self, topic: str, channel: ChannelType, time_ns: int, data: bytes, qos: Sequence[Any]
    ) -> None:
        with self._lock:
            if self._closed:
                raise BagWriteError(f"bag {self.path} is closed")
            key = (topic, channel.name)
            try:
                connection = self._connections.get(key)
                if connection is None:
                    connection = self._writer.add_connection(
                        topic,
                        channel.name,
                        msgdef=channel.definition,
                        rihs01=channel.type_hash,
                        offered_qos_profiles=list(qos),
                    )
                    self._connections[key] = connection
                self._writer.write(connection, time_ns, data)
            except Exception as exc:  # rosbags' WriterError, OSError (disk full)
                raise BagWriteError(f"cannot write to {self.path}: {exc}") from exc
            self.counts[key] = self.counts.get(key, 0) + 1

    def close(self, custom_data: dict[str, str] | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for k, v in (custom_data or {}).items():
                    self._writer.set_custom_data(k, v)
                self._writer.close()
            except Exception as exc:
                raise BagWriteError(f"cannot close bag {self.path}: {exc}") from exc


@dataclass
class _Channel:
    """One thing being recorded: a topic, or one service (its rq and rr readers)."""

    name: str  # the bag topic
    channel: ChannelType
    offered: list[Any]
    readers: list[RawReader] = field(default_factory=list)
    service: str = ""  # pkg/srv/Name for a service


class Recorder(Node):
    """A node that records the DDS domain into a rosbag2 bag, as its ``config``
    (:class:`~iomt.topology.params.RecorderParams`, one default per setting) says: at
    ``output``, the ROS names in ``topics`` (None: all), services too unless ``services`` is
    False. ``types``, the interfaces it encodes with, is a collaborator rather than a setting
    (default: iomt's and ROS 2 Jazzy's). Stop with :meth:`close` (or ``destroy_node``) after
    the executor has stopped; the bag is then complete.
    """

    def __init__(
        self,
        context: Context,
        types: CaptureTypes | None = None,
        *,
        name: str,
        namespace: str = "/",
        config: RecorderParams,
    ) -> None:
        if not 0.0 <= config.batch_ms <= MAX_BATCH_MS:
            where = ros_naming.node_fqn(namespace, name)
            raise ConfigurationError(
                f"node {where}: batch_ms must be 0..{MAX_BATCH_MS:g}, not {config.batch_ms:g}"
            )
        super().__init__(name, context=context, namespace=namespace)
        # The recorder reads raw CDR and DDS discovery: the embedded runtime only (a ward on
        # the rclpy runtime is recorded by a recorder process on the embedded one).
        self._dds: Context = context
        self.config = config
        self.types = types or CaptureTypes()
        self.bag = BagWriter(config.output, self.types)
        self.stats = RecorderStats()
        self.selected = None if config.topics is None else frozenset(config.topics)
        self.record_services = config.services
        self.spin_pause_s = config.batch_ms / 1000
        self._lock = threading.RLock()
        self._channels: dict[str, _Channel] = {}  # bag topic -> channel
        self._subscribed: set[tuple[str, str]] = set()  # (DDS topic, DDS type)
        self._closed = False
        self._started_ns = time.time_ns()
        self._discovery = PublicationWatcher(context, self._on_publication)
        self._add_waitable(self._discovery)
        # Endpoints known in advance (from a launch plan) are subscribed now, before their
        # writers exist: a writer's first samples go out as soon as it matches, and a
        # reader created only after discovering the writer can miss them.
        for ros_name, ros_type in config.expect:
            self.expect(ros_name, ros_type)

    def expect(self, ros_name: str, ros_type: str) -> None:
        """Subscribe to topic or service ``ros_name`` of ``ros_type`` (pkg/msg|srv/Name)."""
        with self._lock:
            if ros_type.split("/")[1:2] == ["srv"]:
                if not self.record_services:
                    return
                rq, rr = ros_naming.service_to_dds(ros_name)
                self._add_service(
                    ros_name,
                    rq,
                    ros_naming.ros_type_to_dds(ros_type, "_Request"),
                    ros_naming.EndpointKind.SERVICE_REQUEST,
                    None,
                )
                self._add_service(
                    ros_name,
                    rr,
                    ros_naming.ros_type_to_dds(ros_type, "_Response"),
                    ros_naming.EndpointKind.SERVICE_REPLY,
                    None,
                )
            else:
                self._add_topic(
                    ros_name,
                    ros_naming.topic_to_dds(ros_name),
                    ros_naming.ros_type_to_dds(ros_type),
                    None,
                )

    # -- discovery -------------------------------------------------------------------------

    def _on_publication(self, writer: DiscoveredWriter) -> None:
        dds_topic, dds_type = writer.dds_topic, writer.dds_type
        demangled = ros_naming.demangle_topic(dds_topic)
        if demangled is None:
            return  # ros_discovery_info and plain DDS topics are not ROS traffic
        kind, ros_name = demangled
        if self.selected is not None and ros_name not in self.selected:
            return
        with self._lock:
            if self._closed:
                return
            qos = None if writer.qos is None else offered_qos(writer.qos)
            if kind is ros_naming.EndpointKind.TOPIC:
                self._add_topic(ros_name, dds_topic, dds_type, qos)
            elif self.record_services:
                self._add_service(ros_name, dds_topic, dds_type, kind, qos)

    def _add_topic(self, ros_name: str, dds_topic: str, dds_type: str, qos: Any) -> None:
        key = (dds_topic, dds_type)
        ros_type = dds_type_to_ros(dds_type)
        channel = self._channels.get(ros_name)
        if key in self._subscribed:
            if channel is not None and qos is not None:
                self._note_writer(channel, qos)
            return
        if ros_type is None or not self.types.knows_message(ros_type):
            self.stats.skipped_topics[dds_topic] = f"unknown type {dds_type}"
            return
        self._subscribed.add(key)
        try:
            channel_type = self.types.channel_type(ros_type)
            data_type = self.types.message_class(ros_type)
            offered = [qos] if qos is not None else []
            channel = _Channel(ros_name, channel_type, offered)
            profile = recording_profile(offered)
            reader = RawReader(
                self._dds,
                dds_topic,
                data_type,
                profile,
                functools.partial(self._on_topic_sample, channel),
            )
        except Exception as exc:  # cyclonedds refuses the type or the topic
            self.stats.skipped_topics[dds_topic] = f"cannot subscribe: {exc}"
            log.warning("not recording %s: %s", dds_topic, exc)
            return
        channel.readers.append(reader)
        self._channels.setdefault(ros_name, channel)
        self._attach(reader)
        log.info("recording topic %s (%s)", ros_name, ros_type)

    def _add_service(
        self,
        service_name: str,
        dds_topic: str,
        dds_type: str,
        kind: ros_naming.EndpointKind,
        qos: Any,
    ) -> None:
        found = self.types.service_of_dds_types(dds_type)
        if found is None:
            self.stats.skipped_topics[dds_topic] = f"unknown service type {dds_type}"
            return
        service, is_request = found
        if is_request != (kind is ros_naming.EndpointKind.SERVICE_REQUEST):
            self.stats.skipped_topics[dds_topic] = f"type {dds_type} on the wrong side"
            return
        bag_topic = service_name + SERVICE_EVENT_SUFFIX
        channel = self._channels.get(bag_topic)
        if channel is None:
            channel = _Channel(
                bag_topic,
                self.types.channel_type(self.types.event_type_name(service)),
                [],
                service=service,
            )
            self._channels[bag_topic] = channel
        if qos is not None:
            self._note_writer(channel, qos)
        key = (dds_topic, dds_type)
        if key in self._subscribed:
            return
        self._subscribed.add(key)
        request_cls, response_cls = self.types.service_wire_classes(service)
        try:
            reader = RawReader(
                self._dds,
                dds_topic,
                request_cls if is_request else response_cls,
                recording_profile(channel.offered),
                functools.partial(self._on_service_sample, channel, dds_topic, is_request),
            )
        except Exception as exc:
            self.stats.skipped_topics[dds_topic] = f"cannot subscribe: {exc}"
            log.warning("not recording %s: %s", dds_topic, exc)
            return
        channel.readers.append(reader)
        # A reader on rq/…Request or rr/…Reply is, to ROS 2's graph, a service server or
        # client: announcing these taps would list the recorder as server and client of
        # every service. It only listens, so they stay off its node's endpoint list.
        self._attach(reader, announce=False)
        log.info("recording service %s (%s)", service_name, service)

    def _note_writer(self, channel: _Channel, qos: Any) -> None:
        if qos in channel.offered:
            return
        channel.offered.append(qos)
        from rosbags.interfaces import QosReliability  # noqa: PLC0415

        reads_reliably = bool(channel.readers) and all(
            r.qos.reliability is ReliabilityPolicy.RELIABLE for r in channel.readers
        )
        if reads_reliably and qos.reliability == QosReliability.BEST_EFFORT:
            self.stats.unmatched_writers += 1
            log.warning("%s: a best-effort writer joined late and cannot be read", channel.name)

    def _attach(self, reader: RawReader, *, announce: bool = True) -> None:
        if announce:
            with self._dds.graph_batch():
                self._dds.add_endpoint(self._key, reader.gid, is_writer=False)
        self._add_waitable(reader)

    # -- samples ---------------------------------------------------------------------------

    def _on_topic_sample(self, channel: _Channel, cdr: bytes, _info: Any) -> None:
        self._write(channel.name, channel.channel, time.time_ns(), cdr, channel.offered)

    def _on_service_sample(
        self, channel: _Channel, dds_topic: str, is_request: bool, cdr: bytes, info: Any
    ) -> None:
        received = time.time_ns()
        try:
            event = self.types.encode_service_event(
                channel.service,
                event_type=REQUEST_RECEIVED if is_request else RESPONSE_SENT,
                stamp_ns=received if is_request else int(info.source_timestamp),
                sample=cdr,
                is_request=is_request,
            )
        except ProtocolError as exc:
            log.warning("%s: keeping a malformed sample whole: %s", dds_topic, exc)
            self.stats.malformed_service_samples += 1
            self._write(
                channel.name.removesuffix(SERVICE_EVENT_SUFFIX) + MALFORMED_SUFFIX,
                self.types.channel_type(_RAW_TYPE),
                received,
                self._raw_sample(dds_topic, cdr),
                channel.offered,
            )
            return
        if self._write(channel.name, channel.channel, received, event, channel.offered):
            self.stats.service_events += 1

    def _raw_sample(self, dds_topic: str, cdr: bytes) -> bytes:
        types: Any = self.types.store.types
        import numpy as np  # noqa: PLC0415

        msg = types[_RAW_TYPE](
            layout=types["std_msgs/msg/MultiArrayLayout"](
                dim=[
                    types["std_msgs/msg/MultiArrayDimension"](
                        label=dds_topic, size=len(cdr), stride=len(cdr)
                    )
                ],
                data_offset=0,
            ),
            data=np.frombuffer(cdr, dtype=np.uint8),
        )
        return bytes(self.types.store.serialize_cdr(msg, _RAW_TYPE))

    def _write(
        self, topic: str, channel: ChannelType, time_ns: int, data: bytes, qos: Sequence[Any]
    ) -> bool:
        try:
            self.bag.write(topic, channel, time_ns, data, qos)
        except BagWriteError as exc:
            self.stats.write_errors += 1
            log.error("%s", exc)
            return False
        self.stats.messages += 1
        return True

    # -- lifetime --------------------------------------------------------------------------

    @property
    def recorded_topics(self) -> list[str]:
        with self._lock:
            return sorted(name for name, ch in self._channels.items() if ch.readers)

    def close(self) -> RecorderStats:
        """Take what is still queued, then finish the bag. Idempotent.

        Call after the executor has stopped spinning this node (``destroy_node`` does).
        """
        with self._lock:
            if self._closed:
                return self.stats
            self._closed = True
            readers = [r for ch in self._channels.values() for r in ch.readers]
        for reader in readers:
            reader.drain()
        self.stats.lost_samples = sum(r.lost() for r in readers)
        summary = {**self.stats.to_json(), "started_ns": self._started_ns}
        self.bag.close({RECORDER_CUSTOM_DATA_KEY: json.dumps(summary, sort_keys=True)})
        return self.stats

    def destroy_node(self) -> None:
        try:
            self.close()
        finally:
            super().destroy_node()


def recorder_node(context: Context, *, name: str, namespace: str = "/", **params: Any) -> Recorder:
    """Container factory: ``iomt.capture.recorder:recorder_node`` with ``{"output": DIR}``
    (and optionally ``expect``: ``[[ros name, pkg/msg|srv/Type], ...]`` to subscribe at once),
    parsed and checked as the plan's were."""
    where = ros_naming.node_fqn(namespace, name)
    config = RecorderParams.from_mapping(params, node=where)
    if not config.output:
        raise ConfigurationError(f"node {where}: recorder_node needs an output directory")
    return Recorder(context, name=name, namespace=namespace, config=config)


def record(
    config: RecorderParams,
    *,
    domain_id: int | None = None,
    dds_config: str | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[Recorder], None] | None = None,
) -> RecorderStats:
    """Record the domain as ``config`` says until ``stop`` is set or ``duration_s`` has
    passed (what ``iomt bag record`` runs). The bag is complete when this returns."""
    stop = stop or threading.Event()
    context = Context(domain_id=domain_id, dds_config_name=dds_config)
    executor = Executor(context)
    try:
        recorder = Recorder(context, name="iomt_bag_recorder", config=config)
    except BaseException:
        executor.close()
        context.shutdown()
        raise
    executor.add_node(recorder)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        if on_ready is not None:
            on_ready(recorder)
        while not stop.is_set():
            timeout = 0.2
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                timeout = min(timeout, remaining)
            executor.spin_once(timeout)
            if recorder.spin_pause_s:
                stop.wait(recorder.spin_pause_s)
    finally:
        executor.close()
        try:
            stats = recorder.close()
        finally:
            recorder.destroy_node()
            context.shutdown()
    return stats
