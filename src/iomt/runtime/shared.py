"""Endpoints the nodes of one process share: one DDS client per service, one DDS reader or
(volatile) writer per topic, asked for with ``shared=True``.

A ward packs hundreds of nodes into a process, and many of them talk to the same peers:
the providers of a process ask the same devices, the devices of a process hear the same
radio cells, the converters of a process answer the same providers' inboxes. With one DDS
endpoint per node, each reply or announcement arrives once per
node in the process, and every participant in the domain discovers and matches every one
of those endpoints. At 400 devices that was about 21,000 endpoints, and discovering them
was most of the ward's start-up. A shared endpoint is made once per process (per service
or topic, type and QoS), and each node gets a handle on it:

* the ROS graph lists the endpoint under every node that holds a handle, so
  ``ros2 node info`` shows each node's clients and subscriptions. Per-topic counts
  (``ros2 topic info``) count DDS endpoints, so they count a shared one once per process.
* A shared client's calls stay the caller's. Sequence numbers are unique in the process,
  a reply completes only the call it names, and a refused reply counts against the handle
  that made the call.
* A shared subscription hands every sample to each handle's callback. On a
  transient-local topic it keeps the latest sample of each live writer (the latest
  ``depth`` with keep-last history) and hands them to a handle that joins later, before
  anything newer: what a new DDS reader of its own would have received on matching.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cyclonedds.core import GuardCondition

from iomt.runtime._dds import delete_entity, matched_publications
from iomt.runtime._wire import UINT64_MASK
from iomt.runtime.api import Accept, Client, Publisher, Subscription
from iomt.runtime.client import DEFAULT_CALL_TIMEOUT_S, DdsClient
from iomt.runtime.publisher import DdsPublisher
from iomt.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from iomt.runtime.subscription import DdsSubscription
from iomt.runtime.task import Future
from iomt.runtime.waitable import Waitable

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

log = logging.getLogger(__name__)

MsgT = TypeVar("MsgT")

__all__ = ["SharedClient", "SharedPublisher", "SharedReader", "SharedSubscription"]


class _Handle:
    """A node's hold on a shared endpoint: let go once, then tell the context."""

    def _hold(self, release: Callable[[], None]) -> None:
        self._release = release
        self._released = False

    def destroy(self) -> None:
        if self._released:
            return
        self._released = True
        self._let_go()
        self._release()

    def _let_go(self) -> None:
        """What the handle undoes on the endpoint itself before the context is told."""


class SharedPublisher(_Handle, Publisher[MsgT]):
    """One node's handle on a writer the process's nodes share (volatile topics only: a
    transient-local writer's history would hold the nodes' samples together)."""

    def __init__(self, base: DdsPublisher[MsgT], release: Callable[[], None]) -> None:
        self.base = base
        self.topic_name = base.topic_name
        self.msg_type = base.msg_type
        self._hold(release)

    def publish(self, msg: MsgT) -> None:
        self.base.publish(msg)

    def publish_raw(self, cdr: bytes) -> None:
        self.base.publish_raw(cdr)

    def get_subscription_count(self) -> int:
        return self.base.get_subscription_count()


class SharedClient(_Handle, Client):
    """One node's handle on a client the process's nodes share."""

    def __init__(self, base: DdsClient, release: Callable[[], None]) -> None:
        self.base = base
        self.service_name = base.service_name
        self.rejected = 0
        self._hold(release)

    def call_async(self, request: Any, accept: Accept | None = None) -> Future[Any]:
        return self.base.call_async(request, accept, owner=self)

    def call(
        self, request: Any, timeout_s: float = DEFAULT_CALL_TIMEOUT_S, accept: Accept | None = None
    ) -> Any:
        return self.base.call(request, timeout_s, accept, owner=self)

    def cancel(self, future: Future[Any]) -> None:
        self.base.cancel(future)

    def service_is_ready(self) -> bool:
        return self.base.service_is_ready()

    @property
    def matched(self) -> bool:
        return self.base.matched

    def _let_go(self) -> None:
        self.base.cancel_calls_of(self)


#: a shared reader's table of writers is pruned first when it holds this many
_PRUNE_FLOOR = 16


class SharedReader(DdsSubscription[Any]):
    """The one DDS reader behind a process's shared subscriptions of a topic."""

    shared = True

    def __init__(
        self,
        context: DdsContext,
        msg_type: type[Any],
        topic: str,
        dds_topic: str,
        qos: QoSProfile,
        *,
        raw: bool,
    ) -> None:
        super().__init__(context, msg_type, topic, dds_topic, self._no_callback, qos, raw=raw)
        self.handles: list[SharedSubscription[Any]] = []
        self._joining: list[SharedSubscription[Any]] = []
        self._lock = threading.Lock()
        self._keeps = qos.durability is DurabilityPolicy.TRANSIENT_LOCAL
        self._depth = qos.depth if qos.history is HistoryPolicy.KEEP_LAST else 1
        # writer (publication handle) -> its latest samples, for handles that join later
        self._latest: dict[int, deque[Any]] = {}
        self._prune_at = _PRUNE_FLOOR
        self.replay = _Replay(self, GuardCondition(context.participant))

    @staticmethod
    def _no_callback(_msg: Any) -> None:  # pragma: no cover - _deliver replaces it
        pass

    def join(self, handle: SharedSubscription[Any]) -> None:
        with self._lock:
            self.handles.append(handle)
            if self._keeps and self._latest:
                self._joining.append(handle)
                self.replay.condition.set(True)

    def leave(self, handle: SharedSubscription[Any]) -> None:
        with self._lock:
            if handle in self.handles:
                self.handles.remove(handle)
            if handle in self._joining:
                self._joining.remove(handle)

    def execute(self) -> None:
        if self._joining:  # what a newcomer missed goes before anything newer
            self.run_replay()
        super().execute()

    def _deliver(self, msg: Any, info: Any) -> None:
        with self._lock:
            if self._keeps:
                writer = info.publication_handle & UINT64_MASK
                kept = self._latest.get(writer)
                if kept is None:
                    if len(self._latest) >= self._prune_at:
                        self._prune()
                    kept = self._latest[writer] = deque(maxlen=self._depth)
                kept.append(msg)
            handles = [h for h in self.handles if h not in self._joining]
        for handle in handles:
            handle.deliver(msg)

    def run_replay(self) -> None:
        with self._lock:
            joining, self._joining = self._joining, []
            self.replay.condition.set(False)
            if not joining:
                return
            # a writer that left is not replayed (a new reader would not hear it either)
            self._prune()
            kept = [msg for samples in self._latest.values() for msg in samples]
        for handle in joining:
            for msg in kept:
                handle.deliver(msg)

    def _prune(self) -> None:
        """Forget the samples of writers that left (the lock held). Also run when the table
        has doubled since the last time, so peers that come and go for ever cost memory in
        proportion to the live ones only, at O(1) per new writer."""
        # (the listing gives handles as signed 64-bit integers, sample infos unsigned)
        live = {h & UINT64_MASK for h in matched_publications(self._reader)}
        for gone in [w for w in self._latest if w not in live]:
            del self._latest[gone]
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(self._latest))

    def destroy(self) -> None:
        delete_entity(self.replay.condition)
        super().destroy()


class _Replay(Waitable):
    """Wakes the executor when a handle joined a reader that kept samples for it."""

    shared = True

    def __init__(self, reader: SharedReader, guard: GuardCondition) -> None:
        self._reader = reader
        self.condition = guard

    def execute(self) -> None:
        self._reader.run_replay()


class SharedSubscription(_Handle, Subscription[MsgT]):
    """One node's handle on a reader the process's nodes share."""

    def __init__(
        self, base: SharedReader, callback: Callable[[Any], None], release: Callable[[], None]
    ) -> None:
        self.base = base
        self.topic_name = base.topic_name
        self.msg_type = base.msg_type
        self.callback = callback
        self._hold(release)

    @property
    def dropped(self) -> int:  # type: ignore[override]
        """Samples the shared reader could not decode (for every handle on it)."""
        return self.base.dropped

    def deliver(self, msg: Any) -> None:
        try:
            self.callback(msg)
        except Exception:
            log.exception("%s: subscription callback failed", self.topic_name)

    def get_publisher_count(self) -> int:
        return self.base.get_publisher_count()

    def _let_go(self) -> None:
        self.base.leave(self)
