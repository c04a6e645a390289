"""Listening to a DDS domain as it is: raw samples and discovered writers (recorders).

A recorder does not subscribe to types it knows in advance: it learns writers from DDS
discovery (the builtin DCPSPublication topic), reads their samples as the CDR bytes they
were on the wire, and notes the QoS each writer offered. These are the embedded runtime's
pieces for that; ``iomt.capture`` builds bags from them without touching DDS itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.core import InstanceState, Policy, ReadCondition
from cyclonedds.sub import DataReader

from iomt.runtime._dds import ANY_STATE, delete_entity, take_raw
from iomt.runtime._wire import type_hash_user_data
from iomt.runtime.context import Context
from iomt.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from iomt.runtime.waitable import TAKE_BATCH, Waitable


@dataclass(frozen=True, slots=True)
class WriterQoS:
    """The QoS a discovered writer offered, in the runtime's own terms (None: not stated)."""

    reliability: ReliabilityPolicy
    durability: DurabilityPolicy
    history: HistoryPolicy
    depth: int
    deadline_ns: int | None
    lifespan_ns: int | None
    liveliness: str  # "automatic" | "manual_by_topic" | "manual_by_participant"
    lease_ns: int | None

    @classmethod
    def from_dds(cls, dds_qos: Any) -> WriterQoS:
        def get(policy: Any) -> Any:
            try:
                return dds_qos[policy]
            except (ValueError, TypeError, KeyError):
                return None

        history = get(Policy.History)
        if history == Policy.History.KeepAll:
            hist, depth = HistoryPolicy.KEEP_ALL, 0
        elif history is not None:
            hist, depth = HistoryPolicy.KEEP_LAST, int(getattr(history, "depth", 1))
        else:
            hist, depth = HistoryPolicy.KEEP_LAST, 1
        liveliness = get(Policy.Liveliness)
        if isinstance(liveliness, Policy.Liveliness.ManualByTopic):
            live = "manual_by_topic"
        elif isinstance(liveliness, Policy.Liveliness.ManualByParticipant):
            live = "manual_by_participant"
        else:
            live = "automatic"
        return cls(
            reliability=(
                ReliabilityPolicy.BEST_EFFORT
                if get(Policy.Reliability) == Policy.Reliability.BestEffort
                else ReliabilityPolicy.RELIABLE
            ),
            durability=(
                DurabilityPolicy.TRANSIENT_LOCAL
                if get(Policy.Durability) == Policy.Durability.TransientLocal
                else DurabilityPolicy.VOLATILE
            ),
            history=hist,
            depth=depth,
            deadline_ns=getattr(get(Policy.Deadline), "deadline", None),
            lifespan_ns=getattr(get(Policy.Lifespan), "lifespan", None),
            liveliness=live,
            lease_ns=getattr(liveliness, "lease_duration", None),
        )


@dataclass(frozen=True, slots=True)
class DiscoveredWriter:
    dds_topic: str
    dds_type: str
    qos: WriterQoS | None  # None when the peer's QoS could not be read


class RawReader(Waitable):
    """A reader handing each valid sample's CDR bytes and SampleInfo to ``on_sample``."""

    def __init__(
        self,
        context: Context,
        dds_topic: str,
        data_type: type,
        qos: QoSProfile,
        on_sample: Callable[[bytes, Any], None],
    ) -> None:
        self.dds_topic = dds_topic
        self.qos = qos
        self._on_sample = on_sample
        self._reader: DataReader[Any] = DataReader(
            context.participant,
            context.topic(dds_topic, data_type, qos),
            # ROS 2 peers see the recorder's subscriptions with their type hash, as ros2 bag's
            qos=qos.to_dds(user_data=type_hash_user_data(data_type)),
        )
        self.condition = ReadCondition(self._reader, ANY_STATE)
        self.gid: bytes = self._reader.guid.bytes

    def execute(self) -> None:
        self.take(TAKE_BATCH)

    def take(self, batch: int) -> int:
        samples = take_raw(self._reader, batch)
        for cdr, info in samples:
            if info.valid_data:
                self._on_sample(cdr, info)
        return len(samples)

    def drain(self) -> None:
        while self.take(1024):
            pass

    def lost(self) -> int:
        try:
            reader: Any = self._reader
            return int(reader.get_sample_lost_status().total_count)
        except Exception:  # the reader is gone
            return 0

    def destroy(self) -> None:
        delete_entity(self.condition)
        delete_entity(self._reader)


class PublicationWatcher(Waitable):
    """Calls ``on_writer`` for every writer DDS discovery reports alive."""

    def __init__(self, context: Context, on_writer: Callable[[DiscoveredWriter], None]) -> None:
        self._reader = BuiltinDataReader(context.participant, BuiltinTopicDcpsPublication)
        self.condition = ReadCondition(self._reader, ANY_STATE)
        self._on_writer = on_writer

    def execute(self) -> None:
        for sample in self._reader.take(256):
            info = getattr(sample, "sample_info", None)
            if info is not None and info.instance_state != InstanceState.Alive:
                continue
            try:
                qos: WriterQoS | None = WriterQoS.from_dds(sample.qos)
            except Exception:  # an odd QoS from a foreign peer: record the writer anyway
                qos = None
            self._on_writer(DiscoveredWriter(str(sample.topic_name), str(sample.type_name), qos))

    def destroy(self) -> None:
        delete_entity(self.condition)
        delete_entity(self._reader)
