"""DdsSubscription: a DDS reader on ``rt/<topic>`` whose callback runs on the executor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cyclonedds.core import ReadCondition
from cyclonedds.sub import DataReader

from iomt.runtime._dds import ANY_STATE, delete_entity, matched_publications, take_raw
from iomt.runtime._wire import type_hash_user_data
from iomt.runtime.api import Subscription
from iomt.runtime.qos import QoSProfile
from iomt.runtime.waitable import TAKE_BATCH, Waitable

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

log = logging.getLogger(__name__)

MsgT = TypeVar("MsgT")


class DdsSubscription(Waitable, Subscription[MsgT]):
    def __init__(
        self,
        context: DdsContext,
        msg_type: type[MsgT],
        topic: str,
        dds_topic: str,
        callback: Callable[[MsgT], None],
        qos: QoSProfile,
        *,
        raw: bool = False,
    ) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self.callback = callback
        self.qos = qos
        # raw=True hands the callback the CDR bytes instead of a message (recorders).
        self.raw = raw
        self._reader: DataReader[Any] = DataReader(
            context.participant,
            context.topic(dds_topic, msg_type, qos),
            qos=qos.to_dds(user_data=type_hash_user_data(msg_type)),
        )
        self.condition = ReadCondition(self._reader, ANY_STATE)
        self.gid: bytes = self._reader.guid.bytes
        self.dropped = 0

    def execute(self) -> None:
        for cdr, info in take_raw(self._reader, TAKE_BATCH):
            if not info.valid_data:
                continue  # a writer left or disposed: nothing to deliver
            if self.raw:
                msg: Any = cdr
            else:
                try:
                    msg = self.msg_type.deserialize(cdr)  # type: ignore[attr-defined]
                except Exception as exc:
                    self.dropped += 1
                    log.warning(
                        "%s: dropped malformed %s sample (%d bytes): %s",
                        self.topic_name,
                        self.msg_type.__name__,
                        len(cdr),
                        exc,
                    )
                    continue
            self._deliver(msg, info)

    def _deliver(self, msg: Any, info: Any) -> None:
        try:
            self.callback(msg)
        except Exception:
            log.exception("%s: subscription callback failed", self.topic_name)

    def get_publisher_count(self) -> int:
        return len(matched_publications(self._reader))

    def destroy(self) -> None:
        delete_entity(self.condition)
        delete_entity(self._reader)
