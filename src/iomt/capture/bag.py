"""Reading rosbag2 bags: raw messages and ``iomt bag info``.

Bags are read with rosbags' ``rosbag2.Reader`` (a bag directory with ``metadata.yaml``, or a
bare ``.mcap``/``.db3`` file). :func:`info` summarizes a bag the way ``ros2 bag info`` does
— files, size, storage, duration, start and end, message count, per-topic type, count and
serialization format, and services with their event counts — and adds what iomt cares about:
messages per type (service events split into ``…_Request``/``…_Response``) and the
recorder's own account of what it dropped, which it leaves in ``custom_data``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iomt.capture.errors import BagReadError
from iomt.capture.interfaces import (
    REQUEST_RECEIVED,
    REQUEST_SENT,
    RESPONSE_RECEIVED,
    RESPONSE_SENT,
    SERVICE_EVENT_SUFFIX,
)

__all__ = [
    "RECORDER_CUSTOM_DATA_KEY",
    "BagInfo",
    "RecordedMessage",
    "ServiceSummary",
    "TopicSummary",
    "info",
    "read_messages",
]

#: Key of the recorder's JSON summary in metadata.yaml's ``custom_data``.
RECORDER_CUSTOM_DATA_KEY = "iomt.recorder"
_EVENT_TYPE_OFFSET = 4  # ServiceEventInfo.event_type is the first byte after the CDR header


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    topic: str
    msgtype: str
    time_ns: int  # receive time at the recorder (the bag's log time)
    data: bytes  # the serialized message as stored (CDR, encapsulation header included)


@dataclass(frozen=True, slots=True)
class TopicSummary:
    name: str
    type: str
    count: int
    serialization_format: str
    type_hash: str
    offered_qos_profiles: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    name: str  # the service, e.g. /ward/hr_1/data_share
    type: str  # its event type, e.g. iomt_interfaces/srv/DataShare_Event
    event_count: int
    request_events: int
    response_events: int
    serialization_format: str


@dataclass(frozen=True, slots=True)
class BagInfo:
    """What ``iomt bag info`` shows; :meth:`to_json` is the stable machine form."""

    path: str
    files: tuple[str, ...]
    size_bytes: int
    storage_identifier: str
    version: int
    ros_distro: str
    duration_ns: int
    start_ns: int
    end_ns: int
    message_count: int
    topics: tuple[TopicSummary, ...]
    services: tuple[ServiceSummary, ...]
    message_types: dict[str, int] = field(default_factory=dict)
    recorder: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "iomt.capture.info/1",
            "path": self.path,
            "files": list(self.files),
            "size_bytes": self.size_bytes,
            "storage_identifier": self.storage_identifier,
            "version": self.version,
            "ros_distro": self.ros_distro,
            "duration_ns": self.duration_ns,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "message_count": self.message_count,
            "topics": [
                {
                    "name": t.name,
                    "type": t.type,
                    "count": t.count,
                    "serialization_format": t.serialization_format,
                    "type_hash": t.type_hash,
                    "offered_qos_profiles": list(t.offered_qos_profiles),
                }
                for t in self.topics
            ],
            "services": [
                {
                    "name": s.name,
                    "type": s.type,
                    "event_count": s.event_count,
                    "request_events": s.request_events,
                    "response_events": s.response_events,
                    "serialization_format": s.serialization_format,
                }
                for s in self.services
            ],
            "message_types": dict(sorted(self.message_types.items())),
            "recorder": self.recorder,
        }

    def render(self) -> str:
        """Text in the layout of ``ros2 bag info``, plus iomt's counts."""
        lines = [
            f"Files:             {', '.join(self.files)}",
            f"Bag size:          {_human_size(self.size_bytes)}",
            f"Storage id:        {self.storage_identifier}",
            f"ROS Distro:        {self.ros_distro or 'unknown'}",
            f"Metadata version:  {self.version}",
            f"Duration:          {self.duration_ns / 1e9:.9f}s",
            f"Start:             {_human_time(self.start_ns)}",
            f"End:               {_human_time(self.end_ns)}",
            f"Messages:          {self.message_count}",
        ]
        lines += _table(
            "Topic information: ",
            [
                f"Topic: {t.name} | Type: {t.type} | Count: {t.count} | "
                f"Serialization Format: {t.serialization_format}"
                for t in self.topics
            ],
        )
        lines.append(f"Service:           {len(self.services)}")
        lines += _table(
            "Service information: ",
            [
                f"Service: {s.name} | Type: {s.type.removesuffix('_Event')} | "
                f"Event Count: {s.event_count} | Serialization Format: {s.serialization_format}"
                for s in self.services
            ],
        )
        lines += _table(
            "Messages by type:  ",
            [f"{name}: {count}" for name, count in sorted(self.message_types.items())],
        )
        if self.recorder:
            lines.append(
                "Recorder:          "
                + ", ".join(
                    f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(self.recorder.items())
                )
            )
        return "\n".join(lines)


def _table(title: str, rows: list[str]) -> list[str]:
    if not rows:
        return [title.rstrip() + " (none)"]
    pad = " " * len(title)
    return [(title if i == 0 else pad) + row for i, row in enumerate(rows)]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _human_time(ns: int) -> str:
    if ns <= 0 or ns >= 2**63 - 1:
        return "-"
    when = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return f"{when:%b %d %Y %H:%M:%S}.{(ns // 1_000_000) % 1000:03d} ({ns / 1e9:.9f})"


@contextlib.contextmanager
def open_bag(path: Path) -> Iterator[Any]:
    from rosbags.rosbag2 import Reader  # noqa: PLC0415  (rosbags loads lazily)

    try:
        reader = Reader(path)
        reader.open()
    except (OSError, KeyError, ValueError) as exc:
        raise BagReadError(f"{path}: cannot open bag: {exc}") from exc
    except Exception as exc:  # rosbags' ReaderError and friends
        raise BagReadError(f"{path}: cannot open bag: {exc}") from exc
    try:
        yield reader
    finally:
        reader.close()


def read_messages(
    path: str | Path, topics: Iterable[str] | None = None
) -> Iterator[RecordedMessage]:
    """Every message of the bag (or of ``topics``) in log-time order, as stored."""
    bag = Path(path)
    wanted = None if topics is None else set(topics)
    with open_bag(bag) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        try:
            for connection, timestamp, data in reader.messages(connections=connections):
                yield RecordedMessage(connection.topic, connection.msgtype, timestamp, bytes(data))
        except Exception as exc:  # a truncated or corrupt storage file
            raise BagReadError(f"{bag}: cannot read messages: {exc}") from exc


def info(path: str | Path) -> BagInfo:
    """Summarize the bag at ``path`` (a bag directory or a storage file)."""
    bag = Path(path)
    metadata = _metadata(bag)
    with open_bag(bag) as reader:
        topics: list[TopicSummary] = []
        event_connections = []
        for c in reader.connections:
            if c.topic.endswith(SERVICE_EVENT_SUFFIX) and c.msgtype.endswith("_Event"):
                event_connections.append(c)
                continue
            topics.append(
                TopicSummary(
                    name=c.topic,
                    type=c.msgtype,
                    count=c.msgcount,
                    serialization_format=c.ext.serialization_format,
                    type_hash=c.digest,
                    offered_qos_profiles=tuple(_qos_dict(q) for q in c.ext.offered_qos_profiles),
                )
            )
        requests: Counter[int] = Counter()
        responses: Counter[int] = Counter()
        if event_connections:
            try:
                for connection, _ts, data in reader.messages(connections=event_connections):
                    kind = data[_EVENT_TYPE_OFFSET] if len(data) > _EVENT_TYPE_OFFSET else -1
                    if kind in (REQUEST_SENT, REQUEST_RECEIVED):
                        requests[connection.id] += 1
                    elif kind in (RESPONSE_SENT, RESPONSE_RECEIVED):
                        responses[connection.id] += 1
            except Exception as exc:
                raise BagReadError(f"{bag}: cannot read messages: {exc}") from exc
        services = [
            ServiceSummary(
                name=c.topic.removesuffix(SERVICE_EVENT_SUFFIX),
                type=c.msgtype,
                event_count=c.msgcount,
                request_events=requests[c.id],
                response_events=responses[c.id],
                serialization_format=c.ext.serialization_format,
            )
            for c in event_connections
        ]
        by_type: Counter[str] = Counter()
        for t in topics:
            by_type[t.type] += t.count
        for s in services:
            service = s.type.removesuffix("_Event")
            by_type[f"{service}_Request"] += s.request_events
            by_type[f"{service}_Response"] += s.response_events
        count = reader.message_count
        start = reader.start_time if count else 0
        end = reader.end_time - 1 if count else 0  # rosbags reports end as last + 1 ns
        files = [Path(p).name for p in metadata.get("relative_file_paths", [])] or [bag.name]
        size = (
            sum(f.stat().st_size for f in bag.iterdir() if f.is_file())
            if bag.is_dir()
            else bag.stat().st_size
        )
        custom = metadata.get("custom_data") or {}
        recorder: dict[str, Any] = {}
        raw = custom.get(RECORDER_CUSTOM_DATA_KEY) if isinstance(custom, dict) else None
        if isinstance(raw, str):
            try:
                loaded = json.loads(raw)
            except ValueError:
                loaded = {"unparsed": raw}
            recorder = loaded if isinstance(loaded, dict) else {"value": loaded}
        return BagInfo(
            path=str(bag),
            files=tuple(files),
            size_bytes=size,
            storage_identifier=str(metadata.get("storage_identifier", bag.suffix.lstrip("."))),
            version=int(metadata.get("version", 0)),
            ros_distro=str(metadata.get("ros_distro") or ""),
            duration_ns=max(0, end - start),
            start_ns=start,
            end_ns=end,
            message_count=count,
            topics=tuple(sorted(topics, key=lambda t: t.name)),
            services=tuple(sorted(services, key=lambda s: s.name)),
            message_types=dict(by_type),
            recorder=recorder,
        )


def _metadata(bag: Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` of metadata.yaml ({} for a bare storage file)."""
    meta = bag / "metadata.yaml"
    if not bag.is_dir():
        if not bag.exists():
            raise BagReadError(f"{bag}: no such bag")
        return {}
    try:
        loaded = yaml.safe_load(meta.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BagReadError(f"{bag}: cannot read metadata.yaml: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BagReadError(f"{bag}: metadata.yaml is not YAML: {exc}") from exc
    section = loaded.get("rosbag2_bagfile_information") if isinstance(loaded, dict) else None
    if not isinstance(section, dict):
        raise BagReadError(f"{bag}: metadata.yaml has no rosbag2_bagfile_information")
    return section


def _qos_dict(qos: Any) -> dict[str, Any]:
    return {
        "history": qos.history.name.lower(),
        "depth": qos.depth,
        "reliability": qos.reliability.name.lower(),
        "durability": qos.durability.name.lower(),
    }
