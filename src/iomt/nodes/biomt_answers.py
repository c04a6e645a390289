"""What a physician does with its answers over DDS (BIoMT, Table 1's Access and Observe).

* An Access payload's records are counted; cloud addresses in it (records the bolster no
  longer keeps) are fetched from the cloud by ledger id, block number and hash -- the
  redirect -- and opened (:meth:`~iomt.core.biomt.Requester.open_cloud`).
* An Observe subscription's key is kept; updates arrive on ``~/observe_updates`` and are
  opened in order (replays refused), and each update's delay from the reading's time to
  here is kept. The base's plain updates arrive on ``~/base/observe_updates``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from iomt.core.biomt import CloudResponse, Measurement, Observer, Requester
from iomt.core.biomt.messages import AccessPayload
from iomt.core.biomt.physician import PhysicianWorkload
from iomt.core.modes import Mode
from iomt.core.replies import ReplyChecker
from iomt.errors import IomtError
from iomt.msg import BiomtObserveUpdate, CloudService
from iomt.nodes import biomt_wire as bw
from iomt.nodes.calls import Calls
from iomt.runtime import Client, Node

__all__ = ["PhysicianAnswers"]


class PhysicianAnswers:
    def __init__(
        self,
        node: Node,
        requester: Requester,
        *,
        work: PhysicianWorkload,
        calls: Calls,
        checker: ReplyChecker,
        cloud: Client | None,
        cloud_id: str,
        error: Callable[[str, Exception], None],
        timeout_s: float,
    ) -> None:
        self._requester = requester
        self._work = work
        self._calls = calls
        self._checker = checker
        self._cloud = cloud
        self._cloud_id = cloud_id
        self._error = error
        self._timeout = timeout_s
        self._observers: dict[bytes, Observer] = {}
        node.create_subscription(
            BiomtObserveUpdate, "~/observe_updates", self._on_update, bw.UPDATES_QOS
        )
        node.create_subscription(
            BiomtObserveUpdate, "~/base/observe_updates", self._on_base_update, bw.UPDATES_QOS
        )

    def observing(self, observer: Observer) -> None:
        self._observers[observer.subscription_id] = observer

    def got(self, payload: AccessPayload) -> None:
        counts = self._work.counts
        counts["records"] += len(payload.records)
        if payload.redirects:
            counts["redirected"] += len(payload.redirects)
            self.follow_redirects(payload)

    # -- the redirect (cloud) ---------------------------------------------------------------

    def follow_redirects(self, payload: AccessPayload) -> None:
        """Fetch each redirected block from the cloud by ledger id, number and hash."""
        if self._cloud is None:
            return
        for address in payload.redirects:
            t0 = time.perf_counter_ns()
            request = self._requester.cloud(self._cloud_id, address)

            def done(resp: Any, request: Any = request, t0: int = t0) -> None:
                try:
                    body = bw.raise_for_cloud_status("cloud get", resp)
                    cloud_payload = self._requester.open_cloud(
                        request, CloudResponse.from_bytes(body)
                    )
                except IomtError as exc:
                    self._error("cloud", exc)
                    return
                self._work.counts["records"] += len(cloud_payload.records)
                self._work.delay("cloud", Mode.BIOMT, (time.perf_counter_ns() - t0) // 1000)

            ask = CloudService.Request(requester=self._requester.name, body=request.to_bytes())
            self._calls.call(
                self._cloud,
                ask,
                timeout_s=self._timeout,
                on_done=done,
                on_error=lambda exc: self._error("cloud", exc),
                accept=bw.reply_check(self._checker, "cloud/get", self._cloud_id, ask),
            )

    # -- updates ----------------------------------------------------------------------------

    def _on_update(self, msg: BiomtObserveUpdate) -> None:
        try:
            update = bw.update_from_msg(msg)
            observer = self._observers.get(update.subscription_id)
            if observer is None:
                return  # not ours (yet): answered after the update overtook it, or expired
            measurement = observer.open(update)
        except IomtError as exc:
            self._error("update", exc)
            return
        self._work.delay("update", Mode.BIOMT, (time.time_ns() - measurement.time) // 1000)

    def _on_base_update(self, msg: BiomtObserveUpdate) -> None:
        if msg.observer != self._requester.name:
            return
        try:
            measurement = Measurement.from_bytes(bytes(msg.ciphertext))
        except IomtError:
            return
        self._work.delay("update", Mode.BASE, (time.time_ns() - measurement.time) // 1000)
