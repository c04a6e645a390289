"""Future: the result of an asynchronous operation (a service call), as in rclpy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from iomt.errors import ServiceTimeoutError

T = TypeVar("T")


class Future(Generic[T]):
    """Completed once, from any thread; waiters and done-callbacks are notified.

    The threading.Event a blocking waiter needs is made only when someone waits: most
    futures complete on the executor thread and are never waited on.
    """

    __slots__ = (
        "_callbacks",
        "_cancelled",
        "_done",
        "_event",
        "_exception",
        "_lock",
        "_result",
        "seq",
    )

    def __init__(self) -> None:
        self._done = False
        self._event: threading.Event | None = None
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], None]] = []
        self._lock = threading.Lock()
        self._cancelled = False
        self.seq = 0  # the request's sequence number, for a client's Future

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    def set_result(self, result: T) -> None:
        self._complete(result, None)

    def set_exception(self, exc: BaseException) -> None:
        self._complete(None, exc)

    def cancel(self) -> None:
        with self._lock:
            if self._done:
                return
            self._cancelled = True
        self._complete(None, None)

    def _complete(self, result: T | None, exc: BaseException | None) -> None:
        with self._lock:
            if self._done:
                return
            self._result, self._exception = result, exc
            self._done = True
            if self._event is not None:
                self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, cb: Callable[[Future[T]], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(cb)
                return
        cb(self)

    def wait(self, timeout_s: float | None = None) -> bool:
        with self._lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout_s)

    def result(self, timeout_s: float | None = None) -> T:
        """The result; raises the stored exception, or ServiceTimeoutError on timeout."""
        if not self.wait(timeout_s):
            raise ServiceTimeoutError(f"no result within {timeout_s} s")
        if self._exception is not None:
            raise self._exception
        if self._cancelled:
            raise ServiceTimeoutError("cancelled")
        return self._result  # type: ignore[return-value]
