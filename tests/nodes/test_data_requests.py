"""A provider's data requests on the wire, without DDS (fake calls, sessions and core): base
mode sends at once in plaintext and takes the first reply; an answer is shared, converting
or a refusal; an envelope that does not verify fails the device's own answer but not the
request an inbox forgery names; a converter overdue fails its request."""

from __future__ import annotations

import random
from typing import Any

from iomt.core.modes import Mode
from iomt.core.workload import Issue, Record, Workload, WorkloadAction, WorkRequest
from iomt.errors import IomtError
from iomt.msg import DataShare, SecureEnvelope, Vitals
from iomt.nodes.provider_results import Observations
from iomt.nodes.requesting import DataRequests

DEVICE = "iomt://ward1/hr_0"
_R = DataShare.Response


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


class FakeCalls:
    def __init__(self) -> None:
        self.made: list[dict[str, Any]] = []

    def call(self, client: str, request: Any, **kw: Any) -> None:
        self.made.append({"client": client, "request": request, **kw})


class FakeEndpoints:
    def data(self, server_uri: str) -> str:
        return f"data:{server_uri}"


class FakeSessions:
    def ensure(self, peer_uri: str, on_ready: Any, on_error: Any) -> None:
        on_ready()


class FakeChannels:
    def session(self, peer: str) -> None:
        return None


class FakeCore:
    """Every envelope fails verification (a forgery, or a tampered answer)."""

    channels = FakeChannels()

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, request_id: str) -> None:
        self.forgotten.append(request_id)

    def receive(self, envelope: Any, *, relay: str | None = None) -> Any:
        raise IomtError("bad signature")


class FakeIdentity:
    uri = "iomt://ward1/dr_0"


class FakeParts:
    def __init__(self) -> None:
        self.identity = FakeIdentity()
        self.core = FakeCore()
        self.checker = None
        self.calls = FakeCalls()
        self.endpoints = FakeEndpoints()
        self.sessions = FakeSessions()


class Harness:
    def __init__(self, mode: Mode, total: int = 1) -> None:
        self.clock = Clock()
        self.parts = FakeParts()
        self.workload = Workload(
            "iomt://ward1/dr_0",
            total=total,
            concurrency=total,
            techniques=["ecc"],
            rng=random.Random(1),
            monotonic=self.clock,
            perf_ns=lambda: 0,
            wall_ns=lambda: 0,
            request_timeout_s=3.0,
            plain_ids=mode is Mode.BASE,
        )
        self.records: list[dict[str, Any]] = []
        self.requests = DataRequests(
            self.parts,  # type: ignore[arg-type]
            self.workload,
            mode=mode,
            central_uri="iomt://ward1/central",
            timeout_s=3.0,
            observations=Observations(None),
            act=self.act,
            logger=_Quiet(),
        )

    def act(self, actions: list[WorkloadAction]) -> None:
        for action in actions:
            if isinstance(action, Issue):
                self.requests.issue(action.request)
            elif isinstance(action, Record):
                self.records.append(action.record)

    def begin(self) -> list[WorkRequest]:
        actions = self.workload.begin([DEVICE])
        issued = [a.request for a in actions if isinstance(a, Issue)]
        self.act(actions)
        return issued


class _Quiet:
    def warning(self, *args: Any) -> None:
        pass


def _reading(seq: int) -> bytes:
    return bytes(Vitals(device_uri=DEVICE, seq=seq).serialize())


def test_base_mode_sends_in_plaintext_and_takes_the_first_reply() -> None:
    h = Harness(Mode.BASE)
    (request,) = h.begin()
    (call,) = h.parts.calls.made
    assert call["client"] == f"data:{DEVICE}" and call["accept"] is None
    assert call["request"].security_technique == "none"
    assert call["request"].request_id == request.request_id
    envelope = SecureEnvelope(request_id=request.request_id, ciphertext=_reading(7))
    call["on_done"](_R(status=_R.STATUS_SHARED, envelope=envelope))
    (record,) = h.records
    assert (record["outcome"], record["seq"]) == ("shared", 7) and "sender" not in record


def test_an_answer_is_a_refusal_or_a_conversion() -> None:
    h = Harness(Mode.BASE, total=2)
    h.begin()
    refused, converting = h.parts.calls.made
    refused["on_done"](_R(status=_R.STATUS_REFUSED, reason="scope"))
    converting["on_done"](_R(status=_R.STATUS_CONVERTING, converter_uri="iomt://ward1/c"))
    assert [(r["outcome"], r["reason"]) for r in h.records] == [("refused", "scope")]
    pending = h.workload.pending(converting["request"].request_id)
    assert pending is not None
    assert (pending.status, pending.converter) == ("converting", "iomt://ward1/c")
    h.clock.now += 3.1
    h.requests.check_deadlines()
    assert h.records[-1]["reason"] == "no envelope from converter iomt://ward1/c"
    assert h.parts.core.forgotten == [pending.request_id]


def test_a_lost_call_fails_its_request() -> None:
    h = Harness(Mode.BASE)
    (request,) = h.begin()
    h.parts.calls.made[0]["on_error"](IomtError("data_share: no response in time"))
    assert h.records[0]["reason"] == "data_share: no response in time"
    assert h.parts.core.forgotten == [request.request_id]


def test_an_inbox_forgery_does_not_fail_the_request_the_devices_answer_does() -> None:
    h = Harness(Mode.DISTRIBUTED)
    request, *_ = (a.request for a in h.workload.begin([DEVICE]) if isinstance(a, Issue))
    forged = SecureEnvelope(request_id=request.request_id, ciphertext=b"x")
    h.requests.on_inbox(forged)
    assert h.records == [] and h.workload.is_pending(request)
    h.requests.on_inbox(SecureEnvelope(request_id="nobody's", ciphertext=b"x"))  # ignored
    # the device's own answer (what its call's on_done gets) with the same envelope
    h.requests._on_response(request, _R(status=_R.STATUS_SHARED, envelope=forged))
    (record,) = h.records
    assert (record["outcome"], record["reason"]) == ("failed", "rejected: bad signature")
