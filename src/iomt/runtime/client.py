"""Service client: writes ``rq/<name>Request``, reads the shared ``rr/<name>Reply``.

Every client of a service reads every reply; a client keeps only replies carrying its
own ``client_guid`` (its request writer's instance handle, as rmw_cyclonedds does) and
reads that from the CDR header before deserializing anything. ``call`` never hangs: it
takes its own replies itself (so it also works inside a callback on the executor thread)
and raises ``ServiceTimeoutError`` at its deadline.

The header is in the payload: anyone on the bus who reads a request can write a reply
carrying its ``client_guid`` and ``seq``. A call made with an acceptance check (``accept``)
is therefore *patient*: a reply the check refuses -- and a reply that does not even decode
-- is dropped (counted in ``rejected`` / ``dropped``, logged) and the call stays pending
until a reply passes or the caller's own deadline cancels it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cyclonedds.core import GuardCondition, ReadCondition
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from iomt.errors import ServiceTimeoutError, TransportError
from iomt.msg import ServiceType
from iomt.runtime._dds import (
    ANY_STATE,
    RawWaitSet,
    delete_entity,
    matched_publication_user_data,
    matched_publications,
    matched_subscription_user_data,
    matched_subscriptions,
    take_raw,
)
from iomt.runtime._wire import (
    UINT64_MASK,
    csid_to_string,
    next_request_seq,
    peek_header,
    service_type_hashes,
    user_data_id,
)
from iomt.runtime.api import Accept, Client
from iomt.runtime.qos import QoSProfile
from iomt.runtime.task import Future
from iomt.runtime.waitable import TAKE_BATCH, Waitable

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT_S = 5.0
_REPLY_KEY, _GUARD_KEY = 1, 2
#: a refused reply is logged as a warning the first time and then every this many
_LOG_EVERY = 1000


@dataclass(slots=True)
class _Call:
    future: Future[Any]
    accept: Accept | None
    # who made the call: this client, or one node's handle on it when nodes share it
    # (iomt.runtime.shared); a refused reply counts against that caller
    owner: Any = None


class DdsClient(Waitable, Client):
    def __init__(
        self,
        context: DdsContext,
        srv_type: ServiceType[Any, Any, Any, Any],
        name: str,
        dds_topics: tuple[str, str],
        qos: QoSProfile,
    ) -> None:
        self.context = context
        self.srv_type = srv_type
        # Request/Response are type aliases on the generated descriptors, not protocol
        # members, so they are reached dynamically.
        self._types: Any = srv_type
        self.service_name = name
        self.csid = context.next_client_service_id()
        user_data = f"clientid={csid_to_string(self.csid)};".encode()
        request_hash, reply_hash = service_type_hashes(srv_type)
        self._writer: DataWriter[Any] = DataWriter(
            context.participant,
            context.topic(dds_topics[0], srv_type.RequestWire, qos),
            qos=qos.to_dds(user_data=user_data + request_hash),
        )
        self._reader: DataReader[Any] = DataReader(
            context.participant,
            context.topic(dds_topics[1], srv_type.ResponseWire, qos),
            qos=qos.to_dds(user_data=user_data + reply_hash),
        )
        self.condition = ReadCondition(self._reader, ANY_STATE)
        self.writer_gid: bytes = self._writer.guid.bytes
        self.reader_gid: bytes = self._reader.guid.bytes
        self.client_guid = self._writer.get_instance_handle() & UINT64_MASK
        self._pending: dict[int, _Call] = {}
        self._lock = threading.Lock()
        # A private waitset lets a synchronous call() wait for its own reply on any thread;
        # made on the first call(): most clients are only ever called asynchronously.
        self._guard: GuardCondition | None = None
        self._ws: RawWaitSet | None = None
        self.dropped = 0
        self.rejected = 0
        self._seen_ready = False
        # serviceid of each matched server endpoint, read once per endpoint (handle)
        self._request_readers: dict[int, str | None] = {}
        self._reply_writers: dict[int, str | None] = {}

    # -- calling ------------------------------------------------------------------------------

    def call_async(
        self, request: Any, accept: Accept | None = None, *, owner: Any = None
    ) -> Future[Any]:
        if not isinstance(request, self._types.Request):
            raise TypeError(
                f"{self.service_name} takes {self._types.Request.__name__}, "
                f"not {type(request).__name__}"
            )
        seq = next_request_seq()
        future: Future[Any] = Future()
        with self._lock:
            self._pending[seq] = _Call(future, accept, owner)
        try:
            self._writer.write(self.srv_type.request_to_wire(request, self.client_guid, seq))
        except Exception as exc:
            with self._lock:
                self._pending.pop(seq, None)
            raise TransportError(f"{self.service_name}: request failed: {exc}") from exc
        future.seq = seq
        return future

    def call(
        self,
        request: Any,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        accept: Accept | None = None,
        *,
        owner: Any = None,
    ) -> Any:
        """Send ``request`` and wait for its response; ``ServiceTimeoutError`` at the deadline."""
        ws, guard = self._private_waitset()
        future = self.call_async(request, accept, owner=owner)
        # Only a synchronous caller needs waking when another thread completes its future
        # (a guard-condition set is a C call: not paid on the asynchronous path).
        future.add_done_callback(lambda _f: guard.set(True))
        deadline = time.monotonic() + timeout_s
        while not future.done():
            self.execute()
            if future.done():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.cancel(future)
                raise ServiceTimeoutError(
                    f"service {self.service_name}: no response within {timeout_s:g} s"
                )
            ws.wait(int(min(remaining, 1.0) * 1e9))
            guard.set(False)
        return future.result(0)

    def _private_waitset(self) -> tuple[RawWaitSet, GuardCondition]:
        with self._lock:
            if self._ws is None or self._guard is None:
                participant = self.context.participant
                self._guard = GuardCondition(participant)
                self._ws = RawWaitSet(participant)
                self._ws.attach(self.condition, _REPLY_KEY)
                self._ws.attach(self._guard, _GUARD_KEY)
            return self._ws, self._guard

    def cancel(self, future: Future[Any]) -> None:
        seq = future.seq or None
        with self._lock:
            if seq is not None:
                call = self._pending.get(seq)
                if call is not None and call.future is future:
                    del self._pending[seq]
        future.cancel()

    def cancel_calls_of(self, owner: Any) -> None:
        """Cancel the pending calls ``owner`` made (a node's handle is going away)."""
        with self._lock:
            mine = [seq for seq, call in self._pending.items() if call.owner is owner]
            calls = [self._pending.pop(seq) for seq in mine]
        for call in calls:
            call.future.cancel()

    # -- replies ------------------------------------------------------------------------------

    def execute(self) -> None:
        with self._lock:
            samples = take_raw(self._reader, TAKE_BATCH)
        for cdr, info in samples:
            if not info.valid_data:
                continue
            try:
                guid, seq = peek_header(cdr)
            except ValueError as exc:
                self.dropped += 1
                log.warning("%s: dropped malformed reply: %s", self.service_name, exc)
                continue
            if guid != self.client_guid:
                continue  # another client's reply
            with self._lock:
                call = self._pending.get(seq)
            if call is None:
                log.debug(
                    "%s: reply %d has no pending call (late or duplicate)", self.service_name, seq
                )
                continue
            try:
                response, _, _ = self.srv_type.response_from_wire(
                    self.srv_type.ResponseWire.deserialize(cdr)
                )
            except Exception as exc:
                self.dropped += 1
                if call.accept is not None:  # a patient call: anyone can write garbage
                    self._refused(seq, call, f"does not decode: {exc}")
                    continue
                if self._take(seq, call):
                    call.future.set_exception(
                        TransportError(
                            f"{self.service_name}: malformed reply to request {seq}: {exc}"
                        )
                    )
                continue
            if call.accept is not None and not self._accepts(call, response, seq):
                continue
            if self._take(seq, call):
                call.future.set_result(response)

    def _take(self, seq: int, call: _Call) -> bool:
        """Pop ``seq`` if it is still ``call`` (another thread may have completed it)."""
        with self._lock:
            if self._pending.get(seq) is not call:
                return False
            del self._pending[seq]
            return True

    def _accepts(self, call: _Call, response: Any, seq: int) -> bool:
        assert call.accept is not None
        try:
            if call.accept(response):
                return True
            why = "failed its acceptance check"
        except Exception as exc:  # a check that raises refuses
            why = f"failed its acceptance check: {exc}"
        self._refused(seq, call, why)
        return False

    def _refused(self, seq: int, call: _Call, why: str) -> None:
        self.rejected += 1
        if call.owner is not None:
            call.owner.rejected += 1
        level = logging.WARNING if self.rejected % _LOG_EVERY == 1 else logging.DEBUG
        log.log(
            level,
            "%s: ignored a reply to request %d that %s (%d ignored so far); still waiting",
            self.service_name,
            seq,
            why,
            self.rejected,
        )

    # -- discovery ----------------------------------------------------------------------------

    def service_is_ready(self) -> bool:
        """True when a server's request reader and reply writer both matched us (rmw's test:
        the reply writer must carry a ``serviceid`` of a matched request reader)."""
        service_ids = {
            sid
            for handle in matched_subscriptions(self._writer)
            if (sid := _service_id(self._request_readers, handle, self._writer, True)) is not None
        }
        if not service_ids:
            return False
        return any(
            _service_id(self._reply_writers, handle, self._reader, False) in service_ids
            for handle in matched_publications(self._reader)
        )

    @property
    def matched(self) -> bool:
        """``service_is_ready()``, remembered once true (the test costs a listing of every
        matched endpoint; a server that leaves later shows up as calls that time out)."""
        if not self._seen_ready:
            self._seen_ready = self.service_is_ready()
        return self._seen_ready

    def destroy(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for call in pending.values():
            call.future.cancel()
        if self._ws is not None:
            self._ws.close()
        if self._guard is not None:
            delete_entity(self._guard)
        delete_entity(self.condition)
        delete_entity(self._reader)
        delete_entity(self._writer)


def _service_id(
    cache: dict[int, str | None], handle: int, entity: Any, is_writer: bool
) -> str | None:
    """The ``serviceid`` in the USER_DATA of matched endpoint ``handle``, read once per
    endpoint (a client polls this while discovery runs; its cost must not grow with the
    number of endpoints matched)."""
    if handle in cache:
        return cache[handle]
    get = matched_subscription_user_data if is_writer else matched_publication_user_data
    user_data = get(entity, handle)
    if user_data is None:
        return None  # gone again; not remembered
    found = user_data_id(user_data, "serviceid")
    cache[handle] = found
    return found
