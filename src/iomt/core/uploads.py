"""What a device sends upstream and keeps until it is acknowledged, sans-IO: the centralized
baseline's uploads (:class:`UploadBacklog`) and a BIoMT device's Stores at its bolster
(:class:`StoreBacklog`).

**Uploads** (Bilal & Hassan, Fig. 3).
A device in ``centralized`` mode uploads every reading to the central server and keeps it
until the server acknowledges that it stored it. :class:`UploadBacklog` is that bookkeeping:
the node feeds it what happened (a new reading, an answer, a lost call) and sends what it
returns (:class:`SendUpload`), logs the rest. The clock is injected (nanoseconds, monotonic):
data-transfer time runs from a reading's first attempt until the server stored it.

Retries are clocked by acknowledgements: a retry only follows a stored reading (the server
is answering again), and one at a time, so retries never pile onto a server that is down or
behind -- every retry to an overloaded server would be one more duplicate in its queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from iomt.clock import ClockNs

__all__ = [
    "UPLOAD_BACKLOG",
    "Dropped",
    "RetryStore",
    "SendUpload",
    "StoreBacklog",
    "Stored",
    "UploadAction",
    "UploadBacklog",
    "UploadRefused",
]

#: unacknowledged uploads kept for retry; past this the oldest is dropped
UPLOAD_BACKLOG = 256

R = TypeVar("R")


@dataclass(frozen=True)
class SendUpload(Generic[R]):
    """Send ``reading`` (number ``seq``) to the server; answer with ``on_stored`` /
    ``on_refused`` / ``on_lost``."""

    seq: int
    reading: R
    retry: bool = False


@dataclass(frozen=True)
class Stored:
    """The server stored reading ``seq``, ``transfer_ns`` after its first attempt."""

    seq: int
    transfer_ns: int


@dataclass(frozen=True)
class UploadRefused:
    """The server refused reading ``seq``: it will not change its mind, so it is not
    retried (retrying would only add load)."""

    seq: int


@dataclass(frozen=True)
class Dropped:
    """Reading ``seq`` left the full backlog unacknowledged."""

    seq: int
    capacity: int


UploadAction = SendUpload[R] | Stored | UploadRefused | Dropped


class UploadBacklog(Generic[R]):
    """Readings the server has not acknowledged yet, oldest first."""

    def __init__(self, *, clock: ClockNs, capacity: int = UPLOAD_BACKLOG) -> None:
        self._clock = clock
        self.capacity = capacity
        self._unacked: dict[int, tuple[R, int]] = {}  # seq -> (reading, first attempt)
        self._in_flight: set[int] = set()
        self._retrying: int | None = None
        self.retried = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._unacked)

    @property
    def in_flight(self) -> int:
        """Uploads sent and not answered (nor given up) yet."""
        return len(self._in_flight)

    def __contains__(self, seq: object) -> bool:
        return seq in self._unacked

    def add(self, seq: int, reading: R) -> list[UploadAction[R]]:
        """A new reading: send it now; a full backlog drops its oldest."""
        self._unacked[seq] = (reading, self._clock())
        out: list[UploadAction[R]] = [self._send(seq)]
        if len(self._unacked) > self.capacity:
            oldest = next(iter(self._unacked))
            del self._unacked[oldest]
            self.dropped += 1
            out.append(Dropped(oldest, self.capacity))
        return out

    def on_stored(self, seq: int) -> list[UploadAction[R]]:
        """The server stored ``seq``: the oldest waiting reading may go again."""
        self._in_flight.discard(seq)
        entry = self._unacked.pop(seq, None)
        if entry is None:  # dropped from the full backlog meanwhile
            return []
        out: list[UploadAction[R]] = [Stored(seq, self._clock() - entry[1])]
        retry = self._retry_one()
        if retry is not None:
            out.append(retry)
        return out

    def on_refused(self, seq: int) -> list[UploadAction[R]]:
        self._in_flight.discard(seq)
        if self._unacked.pop(seq, None) is None:
            return []
        return [UploadRefused(seq)]

    def on_lost(self, seq: int) -> None:
        """No answer (timeout, no server): kept, for a retry after the next stored one."""
        self._in_flight.discard(seq)

    def _send(self, seq: int, *, retry: bool = False) -> SendUpload[R]:
        self._in_flight.add(seq)
        return SendUpload(seq, self._unacked[seq][0], retry)

    def _retry_one(self) -> SendUpload[R] | None:
        if self._retrying is not None and self._retrying in self._in_flight:
            return None
        retry = next((seq for seq in self._unacked if seq not in self._in_flight), None)
        if retry is None:
            return None
        self._retrying = retry
        self.retried += 1
        return self._send(retry, retry=True)


@dataclass(frozen=True)
class RetryStore(Generic[R]):
    """Store ``measurement`` again (as a new request: a fresh counter)."""

    measurement: R


class StoreBacklog(Generic[R]):
    """A BIoMT device's Stores at its bolster: at most ``max_in_flight`` unanswered (a new
    reading past that is skipped); a Store that got no answer (the bolster down or
    restarting) is kept, up to ``capacity`` (then the oldest is dropped), and sent again,
    oldest first, one per acknowledged Store -- never piled onto a bolster that is down. A
    Store that was committed but whose answer was lost is then stored twice (at least once,
    never lost)."""

    def __init__(self, *, max_in_flight: int = 4, capacity: int = 256) -> None:
        self.max_in_flight = max_in_flight
        self.capacity = capacity
        self.in_flight = 0
        self._unstored: deque[R] = deque()
        self.counts = {"failed": 0, "skipped": 0, "retried": 0, "dropped": 0}

    def __len__(self) -> int:
        return len(self._unstored)

    def may_send(self) -> bool:
        """A new reading: is there room for its Store? (If not, it is skipped.)"""
        if self.in_flight >= self.max_in_flight:
            self.counts["skipped"] += 1
            return False
        return True

    def sent(self) -> None:
        self.in_flight += 1

    def on_stored(self, *, active: bool = True) -> list[RetryStore[R]]:
        """Acknowledged: the oldest kept one goes again, if there is room (and the device
        may still store)."""
        self.in_flight -= 1
        if self._unstored and self.in_flight < self.max_in_flight and active:
            self.counts["retried"] += 1
            return [RetryStore(self._unstored.popleft())]
        return []

    def on_refused(self) -> None:
        """Refused: final (nothing is kept)."""
        self.in_flight -= 1

    def on_lost(self, measurement: R) -> None:
        """No answer: kept for a retry; a full backlog drops its oldest (counted)."""
        self.in_flight -= 1
        self.counts["failed"] += 1
        self._unstored.append(measurement)
        if len(self._unstored) > self.capacity:
            self._unstored.popleft()
            self.counts["dropped"] += 1
