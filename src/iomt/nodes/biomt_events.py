"""The sharing framework's events over DDS: reported to a bolster's ``~/record`` (BIoMT).

What is reported, who may report what and how it lands on the ledger is
:mod:`iomt.core.biomt.sharing_events`: :class:`~iomt.core.biomt.sharing_events.EventQueue`
queues, signs and retries; :class:`~iomt.core.biomt.sharing_events.SharingRecorder` checks
and records at the bolster. :class:`EventReporter` is the reporter's wiring: a timer that
flushes the queue into one ``~/record`` call, and the log lines of its answers.
"""

from __future__ import annotations

import os
import time
from typing import Any

from iomt.core.biomt.sharing_events import (
    EventNotRecorded,
    EventQueue,
    ReportLost,
    ReportOutcome,
)
from iomt.core.replies import ReplyChecker
from iomt.crypto.signing import Signer
from iomt.errors import IomtError
from iomt.msg import BolsterService
from iomt.nodes.biomt_wire import raise_for_status, reply_check
from iomt.nodes.calls import Calls
from iomt.runtime import Node

__all__ = ["EventReporter"]


class EventReporter:
    """Queues events where the framework acts; a timer signs and sends them in batches."""

    def __init__(  # noqa: PLR0913  (keyword-only: the node's collaborators, named at the one call)
        self,
        node: Node,
        *,
        reporter: str,
        signer: Signer,
        bolster_id: str,
        service: str,
        calls: Calls | None = None,
        period_s: float = 0.5,
        max_batch: int = 64,
        max_queue: int = 4096,
        timeout_s: float = 3.0,
        paused: bool = False,
        checker: ReplyChecker | None = None,
    ) -> None:
        self._node = node
        #: checks the bolster's answers (its signature: iomt.core.replies); None takes any
        self._checker = checker
        self._reporter = reporter
        self._bolster_id = bolster_id
        self.queue = EventQueue(
            reporter=reporter,
            signer=signer,
            bolster_id=bolster_id,
            clock=time.time_ns,
            rng=os.urandom,
            max_batch=max_batch,
            max_queue=max_queue,
            paused=paused,
        )
        self._client = node.create_client(BolsterService, service)
        self._calls = calls if calls is not None else Calls(node)
        self._timeout_s = timeout_s
        node.create_timer(period_s, self.flush)

    @property
    def paused(self) -> bool:
        return self.queue.paused

    @paused.setter
    def paused(self, paused: bool) -> None:
        self.queue.paused = paused

    @property
    def counts(self) -> dict[str, int]:
        return self.queue.counts

    @property
    def pending(self) -> int:
        return self.queue.pending

    def add(self, kind: str, *, actor: str, device_uri: str, technique: str, detail: str) -> None:
        """Queue one event (cheap: nothing is signed or sent on the caller's path)."""
        self.queue.add(kind, actor=actor, device_uri=device_uri, technique=technique, detail=detail)

    def flush(self) -> None:
        report = self.queue.flush()
        if report is None:
            return
        request = BolsterService.Request(requester=self._reporter, body=report.to_bytes())
        self._calls.call(
            self._client,
            request,
            timeout_s=self._timeout_s,
            on_done=self._done,
            on_error=lambda exc: self._log(self.queue.on_lost(exc)),
            accept=(
                reply_check(self._checker, "bolster/record", self._bolster_id, request)
                if self._checker is not None
                else None
            ),
        )

    def _done(self, response: Any) -> None:
        try:
            body = raise_for_status("record", response)
        except IomtError as exc:
            self._log(self.queue.on_refused(exc))
        else:
            self._log(self.queue.on_ack(body))

    def _log(self, outcomes: list[ReportOutcome]) -> None:
        log = self._node.get_logger()
        for outcome in outcomes:
            if isinstance(outcome, ReportLost):
                log.debug("recording %d events failed: %s", outcome.count, outcome.error)
            elif isinstance(outcome, EventNotRecorded):
                log.warning("sharing event refused: %s", outcome.reason)
            else:
                log.warning("%d sharing events refused: %s", outcome.count, outcome.error)
