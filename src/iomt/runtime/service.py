"""Service server: reads ``rq/<name>Request``, answers on ``rr/<name>Reply``.

The callback is rclpy-shaped, ``callback(request, response) -> response``. A callback
created with ``deferred=True`` instead receives ``(request, responder)`` and answers later
with ``responder.send(response)`` (for replies that wait on other nodes).

Before replying, the server waits briefly until the requesting client's reply reader is
matched, as rmw_cyclonedds does: a reply written before discovery completes would be
lost on a volatile topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cyclonedds.core import ReadCondition
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from iomt.errors import TransportError
from iomt.msg import ServiceType
from iomt.runtime._dds import (
    ANY_STATE,
    delete_entity,
    matched_publication_user_data,
    matched_subscription_user_data,
    matched_subscriptions,
    take_raw,
)
from iomt.runtime._wire import csid_to_string, service_type_hashes, user_data_id
from iomt.runtime.api import Responder, Service
from iomt.runtime.qos import QoSProfile
from iomt.runtime.waitable import TAKE_BATCH, Waitable

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

log = logging.getLogger(__name__)

# How long a reply waits for the client's reply reader to be discovered (rmw: 100 ms).
REPLY_MATCH_TIMEOUT_S = 0.1


@dataclass(frozen=True, slots=True)
class RequestHeader:
    client_guid: int
    seq: int
    publication_handle: int
    source_timestamp_ns: int


class DdsResponder(Responder):
    """Answers one request, once."""

    __slots__ = ("_header", "_sent", "_service")

    def __init__(self, service: DdsService, header: RequestHeader) -> None:
        self._service = service
        self._header = header
        self._sent = False

    @property
    def header(self) -> RequestHeader:
        return self._header

    @property
    def source(self) -> object | None:
        """The requesting writer's DDS instance handle (from the sample info, not the
        request): one per remote writer, whatever the request claims."""
        return self._header.publication_handle

    def send(self, response: Any) -> None:
        if self._sent:
            raise TransportError("response already sent for this request")
        self._sent = True
        self._service.send_response(response, self._header)


class DdsService(Waitable, Service):
    def __init__(
        self,
        context: DdsContext,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        dds_topics: tuple[str, str],
        callback: Callable[..., Any],
        qos: QoSProfile,
        *,
        deferred: bool = False,
    ) -> None:
        self.srv_type = srv_type
        # Request/Response are type aliases on the generated descriptors, not protocol
        # members, so they are reached dynamically.
        self._types: Any = srv_type
        self.service_name = name
        self.callback = callback
        self.deferred = deferred
        self.csid = context.next_client_service_id()
        user_data = f"serviceid={csid_to_string(self.csid)};".encode()
        request_hash, reply_hash = service_type_hashes(srv_type)
        self._reader: DataReader[Any] = DataReader(
            context.participant,
            context.topic(dds_topics[0], srv_type.RequestWire, qos),
            qos=qos.to_dds(user_data=user_data + request_hash),
        )
        self._writer: DataWriter[Any] = DataWriter(
            context.participant,
            context.topic(dds_topics[1], srv_type.ResponseWire, qos),
            qos=qos.to_dds(user_data=user_data + reply_hash),
        )
        self.condition = ReadCondition(self._reader, ANY_STATE)
        self.reader_gid: bytes = self._reader.guid.bytes
        self.writer_gid: bytes = self._writer.guid.bytes
        # publication handle of a client's request writer -> its clientid (once its reply
        # reader matched; "" for a writer without one: nothing to wait for)
        self._ready_clients: dict[int, str] = {}
        # the reply writer's matched readers: handle -> clientid, each read once; and the
        # clientids seen matched (unique per client: a participant prefix and a counter)
        self._reply_readers: dict[int, str | None] = {}
        self._matched_clientids: set[str] = set()
        self.dropped = 0
        self.reply_waits = 0  # replies that had to wait for discovery

    def execute(self) -> None:
        for cdr, info in take_raw(self._reader, TAKE_BATCH):
            if not info.valid_data:
                self._ready_clients.pop(info.publication_handle, None)
                continue
            try:
                wire = self.srv_type.RequestWire.deserialize(cdr)
                request, guid, seq = self.srv_type.request_from_wire(wire)
            except Exception as exc:
                self.dropped += 1
                log.warning(
                    "%s: dropped malformed request (%d bytes): %s", self.service_name, len(cdr), exc
                )
                continue
            header = RequestHeader(guid, seq, info.publication_handle, info.source_timestamp)
            try:
                if self.deferred:
                    self.callback(request, DdsResponder(self, header))
                    continue
                response = self.callback(request, self._types.Response())
            except Exception:
                log.exception(
                    "%s: service callback failed; request %d not answered", self.service_name, seq
                )
                continue
            if not isinstance(response, self._types.Response):
                log.error(
                    "%s: callback returned %r, not a %s; request not answered",
                    self.service_name,
                    type(response).__name__,
                    self._types.Response.__name__,
                )
                continue
            try:
                self.send_response(response, header)
            except TransportError as exc:
                log.warning("%s: %s", self.service_name, exc)

    def send_response(self, response: Any, header: RequestHeader) -> None:
        self._wait_for_reply_reader(header.publication_handle)
        wire = self.srv_type.response_to_wire(response, header.client_guid, header.seq)
        try:
            self._writer.write(wire)
        except Exception as exc:
            raise TransportError(f"{self.service_name}: reply failed: {exc}") from exc

    def _wait_for_reply_reader(self, publication_handle: int) -> None:
        # Once per client (by its request writer): a known client costs one dict lookup.
        if publication_handle in self._ready_clients:
            return
        user_data = matched_publication_user_data(self._reader, publication_handle)
        if user_data is None:
            return  # it left between sending and our answer; nothing to wait for
        clientid = user_data_id(user_data, "clientid")
        if clientid is None:  # not an rmw-style client: nothing to wait for
            self._ready_clients[publication_handle] = ""
            return
        deadline = time.monotonic() + REPLY_MATCH_TIMEOUT_S
        while not self._reply_reader_matched(clientid):
            if time.monotonic() >= deadline:
                log.debug("%s: client %s reply reader not matched yet", self.service_name, clientid)
                return
            self.reply_waits += 1
            time.sleep(0.01)
        self._ready_clients[publication_handle] = clientid

    def _reply_reader_matched(self, clientid: str) -> bool:
        if clientid in self._matched_clientids:
            return True
        # Only readers matched since the last look are asked for their USER_DATA: the cost
        # of meeting a client stays independent of how many clients the service has.
        for handle in matched_subscriptions(self._writer):
            if handle in self._reply_readers:
                continue
            user_data = matched_subscription_user_data(self._writer, handle)
            if user_data is None:
                continue  # gone again; not remembered, so a later look tries again
            found = user_data_id(user_data, "clientid")
            self._reply_readers[handle] = found
            if found is not None:
                self._matched_clientids.add(found)
        return clientid in self._matched_clientids

    def destroy(self) -> None:
        delete_entity(self.condition)
        delete_entity(self._reader)
        delete_entity(self._writer)
