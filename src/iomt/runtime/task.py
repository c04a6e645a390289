"""Future: the result of an asynchronous operation (a service call), as in rclpy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from iomt.errors import ServiceTimeoutError

T = TypeVar("T")


class Future(Generic[T]):
    """Completed once, from any thread; waiters and done-callbacks are notified."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], None]] = []
        self._lock = threading.Lock()
        self._cancelled = False

    def done(self) -> bool:
        return self._done.is_set()

    def cancelled(self) -> bool:
        return self._cancelled

    def set_result(self, result: T) -> None:
        self._complete(result, None)

    def set_exception(self, exc: BaseException) -> None:
        self._complete(None, exc)

    def cancel(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._cancelled = True
        self._complete(None, None)

    def _complete(self, result: T | None, exc: BaseException | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._result, self._exception = result, exc
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, cb: Callable[[Future[T]], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(cb)
                return
        cb(self)

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)

    def result(self, timeout_s: float | None = None) -> T:
        """The result; raises the stored exception, or ServiceTimeoutError on timeout."""
        if not self._done.wait(timeout_s):
            raise ServiceTimeoutError(f"no result within {timeout_s} s")
        if self._exception is not None:
            raise self._exception
        if self._cancelled:
            raise ServiceTimeoutError("cancelled")
        return self._result  # type: ignore[return-value]
