"""A provider's workload of data requests, sans-IO (Bilal & Hassan, Alg. 1.3 and Table 2).

The provider keeps at most ``concurrency`` requests outstanding, each to a device chosen by
a seeded generator in a technique drawn from its list (or, for the case study, in the order
a script gives). :class:`Workload` is that bookkeeping: the node tells it what happened (an
answer, a refusal, a lost call, an envelope) and carries out what it returns --
:class:`Issue` a request, :class:`Resend` it on a new session, write a :class:`Record`,
:class:`Done`. How each request ends, and what its results record says, is decided here: an
answer delivered (shared or converted), a refusal, a lost call, an envelope that did not
verify (the device's own answer, or anyone's on the inbox), a converter overdue. Sessions,
calls and the verification of envelopes stay with the node and
:class:`~iomt.core.provider.ProviderCore`.

Reproducibility: one generator makes every random choice, in a fixed order per request --
the device, the technique, then (base mode, which has no request ids of its own) the request
id -- so the same seed gives the same requests. A provider restarted after a crash resumes
where its results file says it was, with a generator seeded from the seed and the number of
requests done (:func:`workload_rng`).

Clocks are injected: ``monotonic`` (seconds) for the converters' deadlines, ``perf_ns`` for
access time (from the first send of a request to the verified, decrypted reading: Table 2),
``wall_ns`` for when a request ended (a fault drill's timeline).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from iomt.clock import ClockNs, ClockS
from iomt.core.listener import Refusal

__all__ = [
    "OUTCOMES",
    "Done",
    "Issue",
    "Record",
    "Resend",
    "WorkRequest",
    "Workload",
    "WorkloadAction",
    "provider_record",
    "workload_rng",
]

#: how a request ends, as the results file and the progress topic count it
OUTCOMES = ("shared", "converted", "refused", "failed")


def workload_rng(seed: int, done: int) -> random.Random:
    """The workload's generator: ``seed`` for a fresh start, and for a provider resuming
    after ``done`` requests one seeded from both (its choices continue, not repeat)."""
    return random.Random(seed * 1_000_003 + done) if done else random.Random(seed)


@dataclass
class WorkRequest:
    """One outstanding request: keyed by its request id once it is sent."""

    request_id: str
    device_uri: str
    technique: str
    t0_ns: int
    status: str = "sent"  # sent | converting
    converter: str = ""
    deadline: float = 0.0
    session_id: bytes | None = None  # the session the request's proof was made on
    resent: bool = False  # sent again on a new session after the peer lost ours


@dataclass(frozen=True, slots=True)
class Issue:
    """Send this request (opening a session first, unless in base mode)."""

    request: WorkRequest


@dataclass(frozen=True, slots=True)
class Resend:
    """The peer lost our session: open a new one and send this request again."""

    request: WorkRequest


@dataclass(frozen=True, slots=True)
class Record:
    """A finished request's line for the results file."""

    request: WorkRequest
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Done:
    """Every request has finished (once)."""


WorkloadAction = Issue | Resend | Record | Done


@dataclass
class Workload:
    """The requests of one provider, from the first issued to the last finished."""

    provider_uri: str
    total: int
    concurrency: int
    techniques: Sequence[str]
    rng: random.Random
    monotonic: ClockS
    perf_ns: ClockNs
    wall_ns: ClockNs
    request_timeout_s: float = 3.0
    #: ``[(device uri, technique), ...]`` in place of random choices (the case study)
    script: Sequence[tuple[str, str]] = ()
    #: base mode: no security, so the request id is drawn here
    plain_ids: bool = False
    #: the outcomes of requests a previous run finished (its results file)
    resumed: Sequence[str] = ()
    counts: dict[str, int] = field(init=False)
    issued: int = field(init=False)
    resent: int = field(init=False, default=0)
    started: bool = field(init=False, default=False)
    finished: bool = field(init=False, default=False)
    devices: list[str] = field(init=False, default_factory=list)
    _pending: dict[str, WorkRequest] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.script:
            self.total, self.concurrency = len(self.script), 1
        self.concurrency = max(1, self.concurrency)
        self.counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.resumed:
            if outcome in self.counts:
                self.counts[outcome] += 1
        self.issued = sum(self.counts.values())

    # -- what the node asks ---------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def pending(self, request_id: str) -> WorkRequest | None:
        return self._pending.get(request_id)

    def is_pending(self, request: WorkRequest) -> bool:
        return self._pending.get(request.request_id) is request

    # -- what happened ----------------------------------------------------------------------

    def begin(self, devices: Sequence[str]) -> list[WorkloadAction]:
        """The grants are in: request from these devices (sorted by the caller)."""
        self.devices = list(devices)
        self.started = True
        return self._pump()

    def sent(self, request: WorkRequest, request_id: str, session_id: bytes | None) -> None:
        """The request goes out under ``request_id`` (the one the reply will carry)."""
        del self._pending[request.request_id]
        request.request_id = request_id
        request.session_id = session_id
        self._pending[request_id] = request

    def converting(self, request: WorkRequest, converter_uri: str) -> None:
        """The device passed the request on to a converter: its envelope has until the
        deadline to arrive on the inbox."""
        request.status = "converting"
        request.converter = converter_uri
        request.deadline = self.monotonic() + self.request_timeout_s

    def refused(self, request: WorkRequest, reason: str) -> list[WorkloadAction]:
        """A peer that cannot check our session proof has lost our session (it was
        restarted): send again on a new session, once; any other refusal is final."""
        lost_session = Refusal.of(reason) is Refusal.BAD_PROOF and request.session_id is not None
        if lost_session and not request.resent:
            request.resent = True
            self.resent += 1
            return [Resend(request)]
        return self.finish(request, "refused", reason=reason)

    def expired(self) -> list[WorkRequest]:
        """Requests whose converter's envelope is overdue (the node then fails each with
        :meth:`overdue`)."""
        now = self.monotonic()
        return [r for r in self._pending.values() if r.status == "converting" and r.deadline <= now]

    def overdue(self, request: WorkRequest) -> list[WorkloadAction]:
        """The converter's envelope did not come in time: the request failed."""
        return self.finish(
            request, "failed", reason=f"no envelope from converter {request.converter}"
        )

    def lost(self, request: WorkRequest, error: str) -> list[WorkloadAction]:
        """The call (or the handshake before it) failed: so did the request."""
        return self.finish(request, "failed", reason=error)

    def delivered(
        self, request: WorkRequest, *, converted: bool, seq: int, sender: str | None = None
    ) -> list[WorkloadAction]:
        """The reading is verified and opened: shared by its device, or converted (Alg. 3)."""
        return self.finish(request, "converted" if converted else "shared", sender=sender, seq=seq)

    def rejected(
        self, request: WorkRequest, error: str, *, from_inbox: bool
    ) -> list[WorkloadAction]:
        """An envelope that did not verify. The device's own answer fails the request; one on
        the inbox may be anyone's forgery, so the request waits on for the real one."""
        if from_inbox:
            return []
        return self.finish(request, "failed", reason=f"rejected: {error}")

    def finish(
        self,
        request: WorkRequest,
        outcome: str,
        *,
        reason: str = "",
        sender: str | None = None,
        seq: int | None = None,
    ) -> list[WorkloadAction]:
        """The request ended (a second end of the same request is ignored); its record,
        then the requests that take its place."""
        if self._pending.pop(request.request_id, None) is None:
            return []
        access_us = (self.perf_ns() - request.t0_ns) // 1000
        self.counts[outcome] += 1
        record: dict[str, Any] = {
            "record": "request",
            "provider": self.provider_uri,
            "request_id": request.request_id,
            "device": request.device_uri,
            "technique": request.technique,
            "outcome": outcome,
            "access_us": access_us,
            "end_ns": self.wall_ns(),
        }
        if reason:
            record["reason"] = reason
        if request.resent:
            record["resent"] = True
        if sender is not None:
            record["sender"] = sender
        if seq is not None:
            record["seq"] = seq
        return [Record(request, record), *self._pump()]

    # -- the state machine --------------------------------------------------------------------

    def _pump(self) -> list[WorkloadAction]:
        actions: list[WorkloadAction] = []
        while (
            self.started
            and len(self._pending) < self.concurrency
            and self.issued < self.total
            and self.devices
        ):
            if self.script:
                device, technique = self.script[self.issued]
            else:
                device = self.rng.choice(self.devices)
                technique = self.rng.choice(self.techniques)
            self.issued += 1
            # In flight from now on (also while a session is being opened): the time to
            # open a session is part of the first request's access time, as for real.
            request_id = (
                f"{self.rng.getrandbits(64):016x}" if self.plain_ids else f"issued-{self.issued}"
            )
            request = WorkRequest(request_id, device, technique, self.perf_ns())
            self._pending[request_id] = request
            actions.append(Issue(request))
        if (
            self.started
            and not self.finished
            and not self._pending
            and (self.issued >= self.total or not self.devices)
        ):
            self.finished = True
            actions.append(Done())
        return actions


def provider_record(
    provider_uri: str,
    phases: dict[str, float],
    *,
    wallet_retries: int,
    rejected_replies: int,
) -> dict[str, Any]:
    """The provider's last line in the results file, after its requests': when each phase
    began (``time.monotonic()``), asks to wallets repeated, replies that did not prove
    themselves."""
    return {
        "record": "provider",
        "provider": provider_uri,
        "monotonic": phases,
        "wallet_retries": wallet_retries,
        "rejected_replies": rejected_replies,
    }
