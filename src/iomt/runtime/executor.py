"""Executor: runs the callbacks of many nodes on one thread, woken by a DDS WaitSet.

No Python runs on Cyclone's receive threads: the executor blocks in
``dds_waitset_wait`` (GIL released) until a reader has data or a timer is due, learns
which entities triggered from the attach keys, and dispatches only those. One executor
per process is the norm (``spin``); it hosts any number of nodes.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from cyclonedds.core import GuardCondition

from iomt.errors import ServiceTimeoutError
from iomt.runtime import api
from iomt.runtime._dds import RawWaitSet
from iomt.runtime.task import Future
from iomt.runtime.timer import Timer
from iomt.runtime.waitable import Waitable

if TYPE_CHECKING:
    from iomt.runtime.handles import DdsContext

log = logging.getLogger(__name__)

_WAKE_KEY = 1
_MAX_WAIT_S = 1.0


class Executor(api.Executor):
    def __init__(self, context: DdsContext) -> None:
        self.context = context
        self._ws = RawWaitSet(context.participant)
        self._wake = GuardCondition(context.participant)
        self._ws.attach(self._wake, _WAKE_KEY)
        self._keys = itertools.count(_WAKE_KEY + 1)
        self._waitables: dict[int, Waitable] = {}
        self._key_of: dict[int, int] = {}  # id(waitable) -> key
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_seq = itertools.count()
        self._nodes: list[api.NodeHandle] = []
        self._lock = threading.RLock()
        self._shutdown = threading.Event()
        self.thread: threading.Thread | None = None

    # -- membership -------------------------------------------------------------------------

    def add_node(self, node: api.NodeHandle) -> None:
        with self._lock:
            if node in self._nodes:
                return
            self._nodes.append(node)
            node._set_executor(self)
            for waitable in node.waitables:
                self.add_waitable(waitable)
            for timer in node.timers:
                self.add_timer(cast(Timer, timer))  # Context.create_timer made it
        self.wake()

    def remove_node(self, node: api.NodeHandle) -> None:
        with self._lock:
            if node not in self._nodes:
                return
            self._nodes.remove(node)
            # a shared endpoint stays attached while another node here holds it
            held = {id(w) for other in self._nodes for w in other.waitables if w.shared}
            for waitable in node.waitables:
                if id(waitable) not in held:
                    self.remove_waitable(waitable)
            node._set_executor(None)

    @property
    def nodes(self) -> list[api.NodeHandle]:
        return list(self._nodes)

    def add_waitable(self, waitable: Waitable) -> None:
        with self._lock:
            if id(waitable) in self._key_of:
                return
            key = next(self._keys)
            self._ws.attach(waitable.condition, key)
            self._waitables[key] = waitable
            self._key_of[id(waitable)] = key

    def remove_waitable(self, waitable: Waitable) -> None:
        with self._lock:
            key = self._key_of.pop(id(waitable), None)
            if key is not None:
                self._waitables.pop(key, None)
                self._ws.detach(waitable.condition)

    def add_timer(self, timer: Timer) -> None:
        with self._lock:
            timer.rearm = self.add_timer
            if not timer.scheduled:
                timer.scheduled = True
                heapq.heappush(self._timers, (timer.next_call, next(self._timer_seq), timer))
        self.wake()

    def wake(self) -> None:
        self._wake.set(True)

    # -- running ----------------------------------------------------------------------------

    def spin_once(self, timeout_s: float | None = None) -> None:
        """Wait up to ``timeout_s`` for work and do what is ready."""
        wait_s = _MAX_WAIT_S if timeout_s is None else max(0.0, timeout_s)
        with self._lock:
            if self._timers:
                wait_s = min(wait_s, max(0.0, self._timers[0][0] - time.monotonic()))
        keys = self._ws.wait(int(wait_s * 1e9))
        for key in keys:
            if key == _WAKE_KEY:
                self._wake.set(False)
                continue
            waitable = self._waitables.get(key)
            if waitable is None:
                continue
            try:
                waitable.execute()
            except Exception:
                # One entity's failure (a DDS error, a bug in a handler) must not take down
                # every node in the process; the entity stays attached and is tried again.
                log.exception("%r failed", waitable)
        self._run_due_timers()

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > now:
                    return
                due, _, timer = heapq.heappop(self._timers)
                if timer.cancelled:
                    timer.scheduled = False  # reset() schedules it again
                    continue
                if timer.next_call > due:  # reset() moved it later: not due yet
                    heapq.heappush(self._timers, (timer.next_call, next(self._timer_seq), timer))
                    continue
            try:
                timer.fire(now)
            except Exception:
                log.exception("timer callback failed")
            with self._lock:
                if timer.cancelled:
                    timer.scheduled = False
                else:
                    heapq.heappush(self._timers, (timer.next_call, next(self._timer_seq), timer))

    def spin(self) -> None:
        """Run until ``shutdown()`` (from any thread or a signal handler)."""
        while not self._shutdown.is_set() and self.context.ok:
            self.spin_once(_MAX_WAIT_S)

    def spin_until_future_complete(
        self, future: Future[Any], timeout_s: float | None = None
    ) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        future.add_done_callback(lambda _f: self.wake())
        while not future.done():
            if self._shutdown.is_set():
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ServiceTimeoutError(f"future not complete within {timeout_s:g} s")
            self.spin_once(remaining)

    def spin_in_thread(self, name: str = "iomt-executor") -> threading.Thread:
        self.thread = threading.Thread(target=self.spin, name=name, daemon=True)
        self.thread.start()
        return self.thread

    def shutdown(self, timeout_s: float = 2.0) -> None:
        self._shutdown.set()
        self.wake()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout_s)

    def close(self) -> None:
        self.shutdown()
        self._ws.close()
