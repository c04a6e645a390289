"""The centralized baseline's uploads over DDS (Bilal & Hassan, Fig. 3): every reading goes
to the central server's ``upload`` service and is kept until the server acknowledges that it
stored it. The bookkeeping -- what to send, when to retry, what to drop -- is
:class:`iomt.core.uploads.UploadBacklog`'s; this module carries out its actions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from iomt.core.uploads import Dropped, SendUpload, Stored, UploadAction, UploadBacklog
from iomt.msg import Upload, Vitals
from iomt.nodes.calls import Calls
from iomt.runtime import Node

__all__ = ["UploadLink"]


class UploadLink:
    """``on_transfer`` hears each stored reading's data-transfer time (microseconds)."""

    def __init__(
        self,
        node: Node,
        *,
        service: str,
        calls: Calls,
        timeout_s: float,
        on_transfer: Callable[[int], None],
    ) -> None:
        self._log = node.get_logger()
        self._client = node.create_client(Upload, service)
        self._calls = calls
        self._timeout_s = timeout_s
        self._on_transfer = on_transfer
        # readings the server has not acknowledged yet
        self.backlog: UploadBacklog[Vitals] = UploadBacklog(clock=time.perf_counter_ns)
        #: the server has answered an upload (stored or refused it): until then the device
        #: is warming up (its process holds READY back, iomt.runtime.container)
        self.answered = False

    def add(self, seq: int, reading: Vitals) -> None:
        self._do(self.backlog.add(seq, reading))

    def _do(self, actions: list[UploadAction[Vitals]]) -> None:
        for action in actions:
            if isinstance(action, SendUpload):
                self._calls.call(
                    self._client,
                    Upload.Request(reading=action.reading),
                    timeout_s=self._timeout_s,
                    on_done=functools.partial(self._uploaded, action.seq),
                    on_error=functools.partial(self._lost, action.seq),
                )
            elif isinstance(action, Stored):
                self._on_transfer(action.transfer_ns // 1000)
            elif isinstance(action, Dropped):
                self._log.error(
                    "upload: reading %d dropped unacknowledged (backlog of %d full)",
                    action.seq,
                    action.capacity,
                )

    def _uploaded(self, seq: int, resp: Any) -> None:
        self.answered = True
        if resp.status == Upload.Response.STATUS_STORED:
            self._do(self.backlog.on_stored(seq))
        elif self.backlog.on_refused(seq):  # final: retrying would only add load
            self._log.error("upload of reading %d refused: %s", seq, resp.reason)

    def _lost(self, seq: int, exc: Exception) -> None:
        self.backlog.on_lost(seq)
        self._log.warning("upload of reading %d (kept for retry): %s", seq, exc)

    def summary(self) -> dict[str, int]:
        return {
            "retried": self.backlog.retried,
            "dropped": self.backlog.dropped,
            "unacknowledged": len(self.backlog),
        }
