"""Bags for the capture tests, written with rosbags' own Writer (independent of the recorder)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer

from iomt.capture.interfaces import REQUEST_RECEIVED, RESPONSE_SENT, CaptureTypes
from iomt.msg import encode, join_service_sample

TYPES = CaptureTypes()
T0 = 1_700_000_000_000_000_000


def write_bag(path: Path, entries: Iterable[tuple[str, str, int, bytes]]) -> Path:
    """A MCAP, metadata-v9 bag holding ``(topic, ros_type, time_ns, data)`` entries."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, ros_type, time_ns, data in entries:
            key = (topic, ros_type)
            if key not in connections:
                channel = TYPES.channel_type(ros_type)
                connections[key] = writer.add_connection(
                    topic, ros_type, msgdef=channel.definition, rihs01=channel.type_hash
                )
            writer.write(connections[key], time_ns, data)
    return path


def service_event(
    service: str, msg: object, *, request: bool, guid: int, seq: int, stamp_ns: int = T0
) -> bytes:
    """The ``<service>_Event`` a recorder writes for one rq/rr sample carrying ``msg``."""
    sample = join_service_sample(encode(msg), guid, seq)  # type: ignore[arg-type]
    return TYPES.encode_service_event(
        service,
        event_type=REQUEST_RECEIVED if request else RESPONSE_SENT,
        stamp_ns=stamp_ns,
        sample=sample,
        is_request=request,
    )
