"""DdsPublisher: a DDS writer on ``rt/<topic>`` (the embedded runtime's Publisher)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from cyclonedds.pub import DataWriter

from iomt.errors import TransportError
from iomt.runtime._dds import delete_entity, matched_subscription_count, write_raw
from iomt.runtime._wire import type_hash_user_data
from iomt.runtime.api import Publisher
from iomt.runtime.qos import QoSProfile

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

MsgT = TypeVar("MsgT")


class DdsPublisher(Publisher[MsgT]):
    def __init__(
        self,
        context: DdsContext,
        msg_type: type[MsgT],
        topic: str,
        dds_topic: str,
        qos: QoSProfile,
    ) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self.qos = qos
        self._writer: DataWriter[Any] = DataWriter(
            context.participant,
            context.topic(dds_topic, msg_type, qos),
            qos=qos.to_dds(user_data=type_hash_user_data(msg_type)),
        )
        self.gid: bytes = self._writer.guid.bytes

    def publish(self, msg: MsgT) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(
                f"{self.topic_name} takes {self.msg_type.__name__}, not {type(msg).__name__}"
            )
        try:
            self._writer.write(msg)
        except Exception as exc:
            raise TransportError(f"publish on {self.topic_name} failed: {exc}") from exc

    def publish_raw(self, cdr: bytes) -> None:
        """Publish an already-serialized message (CDR with encapsulation header)."""
        write_raw(self._writer, cdr)

    def get_subscription_count(self) -> int:
        return matched_subscription_count(self._writer)

    def destroy(self) -> None:
        delete_entity(self._writer)
