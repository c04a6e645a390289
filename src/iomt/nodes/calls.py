"""Service calls with deadlines: never blocking, held until discovery matches the server,
failed with a ServiceTimeoutError at the deadline."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iomt.errors import IomtError, ServiceTimeoutError
from iomt.runtime import Accept, Client, Future, Node, Timer


@dataclass
class _Pending:
    client: Client
    future: Future[Any] | None  # None while held for discovery
    deadline: float
    on_done: Callable[[Any], None]
    on_error: Callable[[Exception], None]
    accept: Accept | None = None


class Calls:
    """Service calls with deadlines, completed on the executor thread (deadlines are
    checked every ``check_period_s``, so a timeout fires up to that much late).

    ``call`` never blocks: the callback gets the response, or ``on_error`` gets a
    ServiceTimeoutError at the deadline (checked by a node timer) or the call's error.
    A request to a server discovery has not matched yet is held (polled every
    ``match_poll_s``) rather than written to nobody: a service request is not kept for
    late joiners, so it would only come back as a timeout.

    ``accept`` (the reply's proof check, see :mod:`iomt.core.replies`) makes the call
    patient: a reply it refuses is ignored and the call waits on, for the server's own
    reply or the deadline (on the rclpy runtime a refused reply fails the call instead).
    """

    def __init__(
        self, node: Node, *, check_period_s: float = 0.25, match_poll_s: float = 0.01
    ) -> None:
        self._node = node
        self._pending: dict[int, _Pending] = {}
        self._held: list[tuple[int, Any]] = []
        self._ids = 0
        self._match_poll_s = match_poll_s
        self._match_timer: Timer | None = None
        # Armed only while calls are pending: an idle node (most devices, most of the
        # time) is not woken four times a second for nothing.
        self._check_timer = node.create_timer(check_period_s, self._check)
        self._check_timer.cancel()

    def call(
        self,
        client: Client,
        request: Any,
        *,
        timeout_s: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        accept: Accept | None = None,
    ) -> None:
        self._ids += 1
        key = self._ids
        if not self._pending:
            self._check_timer.reset()
        pending = _Pending(client, None, time.monotonic() + timeout_s, on_done, on_error, accept)
        if not client.matched:
            self._pending[key] = pending
            self._held.append((key, request))
            if self._match_timer is None:
                self._match_timer = self._node.create_timer(self._match_poll_s, self._release)
            return
        self._send(key, pending, request)

    def _send(self, key: int, pending: _Pending, request: Any) -> None:
        try:
            future = pending.client.call_async(request, pending.accept)
        except IomtError as exc:
            self._pending.pop(key, None)
            self._safe(pending.on_error, exc)
            return
        pending.future = future
        self._pending[key] = pending
        future.add_done_callback(functools.partial(self._finish, key))

    def _release(self) -> None:
        held, self._held = self._held, []
        for key, request in held:
            pending = self._pending.get(key)
            if pending is None:  # timed out while held
                continue
            if pending.client.matched:
                self._send(key, pending, request)
            else:
                self._held.append((key, request))
        if not self._held and self._match_timer is not None:
            self._match_timer.cancel()
            self._match_timer = None

    def _finish(self, key: int, future: Future[Any]) -> None:  # key bound by partial
        pending = self._pending.pop(key, None)
        if pending is None or future.cancelled():
            return
        try:
            response = future.result(0)
        except Exception as exc:
            self._safe(pending.on_error, exc)
            return
        self._safe(pending.on_done, response)

    def _check(self) -> None:
        now = time.monotonic()
        for key in [k for k, p in self._pending.items() if p.deadline <= now]:
            pending = self._pending.pop(key)
            if pending.future is not None:
                pending.client.cancel(pending.future)
            self._safe(
                pending.on_error,
                ServiceTimeoutError(f"{pending.client.service_name}: no response in time"),
            )
        if not self._pending:
            self._check_timer.cancel()

    def _safe(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:
            self._node.get_logger().exception("callback failed")

    def __len__(self) -> int:
        return len(self._pending)
