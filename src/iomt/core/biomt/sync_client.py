"""The bolster's side of the cloud layer (BIoMT §II): what to push, and the cloud's acks.

Sealed blocks go to the cloud anonymized (:meth:`Bolster.cloud_batches`); the cloud's
signed :class:`~.cloud.CloudAck` marks a block synced and, per retention, lets the bolster
evict its local copies (:meth:`Bolster.cloud_synced`). :class:`CloudSyncClient` is the
round trip, sans-IO: each tick starts a round of at most ``max_blocks`` pushes unless one is
still out (a cloud that is slow is not sent the same blocks again on top); the node sends
each :class:`PushBatch` and feeds back the answer, logging :class:`SyncFailed`. A block
whose push failed is simply offered again in a later round (it is not acked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from iomt.errors import IomtError

from .cloud import CloudAck, CloudBatch

__all__ = ["CloudSource", "CloudSyncClient", "PushBatch", "SyncFailed"]


class CloudSource(Protocol):
    """What the sync needs of the bolster."""

    def cloud_batches(self, *, max_blocks: int = ...) -> list[CloudBatch]: ...

    def cloud_synced(self, ack: CloudAck) -> int: ...


@dataclass(frozen=True)
class PushBatch:
    """Put ``batch`` to the cloud; answer with ``on_ack`` / ``on_refused`` / ``on_lost``."""

    batch: CloudBatch


@dataclass(frozen=True)
class SyncFailed:
    """A push got no usable answer: refused, a bad ack (``refused``), or none at all."""

    error: Exception
    refused: bool


class CloudSyncClient:
    def __init__(self, source: CloudSource, *, max_blocks: int = 4) -> None:
        self._source = source
        self._max_blocks = max_blocks
        self._pending = 0  # pushes of the current round not answered yet
        self.counts = {"pushed": 0, "acked": 0, "evicted": 0, "failed": 0}

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def tick(self) -> list[PushBatch]:
        """A new round, if none is out. Raises what :meth:`cloud_batches` raises."""
        if self.busy:
            return []
        batches = self._source.cloud_batches(max_blocks=self._max_blocks)
        self._pending = len(batches)
        self.counts["pushed"] += len(batches)
        return [PushBatch(b) for b in batches]

    def on_ack(self, body: bytes) -> list[SyncFailed]:
        """The cloud's answer body: its signed ack, applied (checked by the bolster)."""
        try:
            self.counts["evicted"] += self._source.cloud_synced(CloudAck.from_bytes(body))
        except IomtError as exc:
            return self.on_refused(exc)
        self.counts["acked"] += 1
        self._finished()
        return []

    def on_refused(self, error: IomtError) -> list[SyncFailed]:
        """The cloud refused the push (or its answer was not a valid ack)."""
        self.counts["failed"] += 1
        self._finished()
        return [SyncFailed(error, refused=True)]

    def on_lost(self, error: Exception) -> list[SyncFailed]:
        """No answer in time."""
        self.counts["failed"] += 1
        self._finished()
        return [SyncFailed(error, refused=False)]

    def _finished(self) -> None:
        self._pending = max(0, self._pending - 1)
