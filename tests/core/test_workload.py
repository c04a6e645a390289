"""A provider's workload of data requests, without DDS: at most ``concurrency`` outstanding;
the same seed makes the same requests (device, technique and, in base mode, request id, drawn
in that order); a script replaces the random choices; a request ends once, with the results
record experiments/sharing.py reads; a refusal for a lost session is sent again once; a
converter's envelope has a deadline; a restarted provider resumes where it was."""

from __future__ import annotations

import random

import pytest

from iomt.core.listener import Refusal
from iomt.core.workload import (
    Done,
    Issue,
    Record,
    Resend,
    Workload,
    WorkloadAction,
    WorkRequest,
    provider_record,
    workload_rng,
)

DEVICES = ["iomt://w/bp_0", "iomt://w/hr_0", "iomt://w/hr_1"]
TECHNIQUES = ["ecc", "aes", "abe"]


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _workload(**kw: object) -> tuple[Workload, dict[str, int]]:
    clocks = {"perf": 1_000_000, "wall": 1_700_000_000_000_000_000}
    params: dict[str, object] = {
        "total": 10,
        "concurrency": 2,
        "techniques": TECHNIQUES,
        "rng": random.Random(7),
        "monotonic": Clock(),
        "perf_ns": lambda: clocks["perf"],
        "wall_ns": lambda: clocks["wall"],
    }
    params.update(kw)
    return Workload("iomt://w/dr_0", **params), clocks  # type: ignore[arg-type]


def _issued(actions: list[WorkloadAction]) -> list[WorkRequest]:
    return [a.request for a in actions if isinstance(a, Issue)]


def _records(actions: list[WorkloadAction]) -> list[dict[str, object]]:
    return [a.record for a in actions if isinstance(a, Record)]


def _run_to_end(w: Workload, actions: list[WorkloadAction]) -> list[WorkRequest]:
    """Share every request as soon as it is issued; every request in issue order."""
    out: list[WorkRequest] = []
    queue = _issued(actions)
    while queue:
        request = queue.pop(0)
        out.append(request)
        queue += _issued(w.finish(request, "shared", sender=request.device_uri, seq=1))
    return out


def test_no_more_than_concurrency_requests_are_outstanding() -> None:
    w, _ = _workload()
    assert w.begin([]) == [Done()]  # no device granted: nothing to ask, the workload ends
    w, _ = _workload()
    first = _issued(w.begin(DEVICES))
    assert len(first) == 2 and w.issued == 2
    assert [r.request_id for r in first] == ["issued-1", "issued-2"]
    more = w.finish(first[0], "failed", reason="boom")
    assert len(_issued(more)) == 1 and w.issued == 3


def test_the_same_seed_makes_the_same_requests_in_the_original_order() -> None:
    # The draws per request: the device, the technique, then (base mode) the request id.
    reference = random.Random(42)
    expected = []
    for _ in range(10):
        device = reference.choice(DEVICES)
        technique = reference.choice(TECHNIQUES)
        expected.append((f"{reference.getrandbits(64):016x}", device, technique))
    w, _ = _workload(rng=random.Random(42), plain_ids=True, concurrency=3)
    got = _run_to_end(w, w.begin(DEVICES))
    assert [(r.request_id, r.device_uri, r.technique) for r in got] == expected
    w2, _ = _workload(rng=random.Random(42), concurrency=3)
    got2 = _run_to_end(w2, w2.begin(DEVICES))
    reference = random.Random(42)
    pairs = [(reference.choice(DEVICES), reference.choice(TECHNIQUES)) for _ in range(10)]
    assert [(r.device_uri, r.technique) for r in got2] == pairs


def test_a_script_replaces_the_random_choices_one_at_a_time() -> None:
    script = [("iomt://w/hr_0", "ecc"), ("iomt://w/bp_0", "abe")]
    w, _ = _workload(script=script, total=99, concurrency=8)
    assert (w.total, w.concurrency) == (2, 1)
    got = _run_to_end(w, w.begin(DEVICES))
    assert [(r.device_uri, r.technique) for r in got] == script
    assert w.finished and w.counts["shared"] == 2


def test_a_finished_request_is_recorded_once_with_its_access_time() -> None:
    w, clocks = _workload(total=1)
    (request,) = _issued(w.begin(DEVICES))
    w.sent(request, "abc123", b"s1")
    assert w.pending("abc123") is request and w.is_pending(request)
    clocks["perf"] += 2_500_000
    actions = w.finish(request, "converted", sender="iomt://w/conv_0", seq=17)
    assert _records(actions) == [
        {
            "record": "request",
            "provider": "iomt://w/dr_0",
            "request_id": "abc123",
            "device": request.device_uri,
            "technique": request.technique,
            "outcome": "converted",
            "access_us": 2_500,
            "end_ns": clocks["wall"],
            "sender": "iomt://w/conv_0",
            "seq": 17,
        }
    ]
    assert actions[-1] == Done() and w.finished
    assert w.finish(request, "failed", reason="late") == []  # a second end is ignored
    assert w.counts == {"shared": 0, "converted": 1, "refused": 0, "failed": 0}


def test_a_lost_session_is_sent_again_once_then_refused() -> None:
    w, _ = _workload(total=1)
    (request,) = _issued(w.begin(DEVICES))
    w.sent(request, "r1", b"session")
    reason = Refusal.BAD_PROOF.value
    assert w.refused(request, reason) == [Resend(request)]
    assert request.resent and w.resent == 1
    w.sent(request, "r2", b"session-2")
    (record,) = _records(w.refused(request, reason))
    assert record["outcome"] == "refused" and record["resent"] is True
    assert record["reason"] == reason


def test_a_refusal_without_our_session_is_final() -> None:
    w, _ = _workload(total=1)
    (request,) = _issued(w.begin(DEVICES))
    w.sent(request, "r1", None)
    (record,) = _records(w.refused(request, Refusal.BAD_PROOF.value))
    assert record["outcome"] == "refused" and "resent" not in record


def test_a_converters_envelope_has_until_its_deadline() -> None:
    clock = Clock()
    w, _ = _workload(total=1, monotonic=clock, request_timeout_s=3.0)
    (request,) = _issued(w.begin(DEVICES))
    w.sent(request, "r1", b"s")
    w.converting(request, "iomt://w/conv_0")
    clock.now += 2.9
    assert w.expired() == []
    clock.now += 0.2
    assert w.expired() == [request]
    (record,) = _records(w.overdue(request))
    assert record["outcome"] == "failed"
    assert record["reason"] == "no envelope from converter iomt://w/conv_0"


def test_a_delivered_reading_is_shared_or_converted_with_its_sender() -> None:
    w, _ = _workload(total=2, concurrency=2)
    first, second = _issued(w.begin(DEVICES))
    (shared,) = _records(w.delivered(first, converted=False, seq=4, sender=first.device_uri))
    assert (shared["outcome"], shared["sender"], shared["seq"]) == ("shared", first.device_uri, 4)
    (converted,) = _records(w.delivered(second, converted=True, seq=5, sender="iomt://w/c"))
    assert (converted["outcome"], converted["sender"]) == ("converted", "iomt://w/c")


def test_base_mode_delivers_without_a_sender() -> None:
    w, _ = _workload(total=1, plain_ids=True)
    (request,) = _issued(w.begin(DEVICES))
    (record,) = _records(w.delivered(request, converted=False, seq=9))
    assert record["outcome"] == "shared" and record["seq"] == 9 and "sender" not in record


def test_an_envelope_that_does_not_verify_fails_only_the_devices_own_answer() -> None:
    w, _ = _workload(total=2, concurrency=2)
    first, second = _issued(w.begin(DEVICES))
    # on the inbox: anyone's forgery, perhaps; the request waits on for the real envelope
    assert w.rejected(first, "bad signature", from_inbox=True) == []
    assert w.is_pending(first)
    (record,) = _records(w.rejected(second, "bad signature", from_inbox=False))
    assert record["outcome"] == "failed" and record["reason"] == "rejected: bad signature"


def test_a_lost_call_fails_its_request_with_the_error() -> None:
    w, _ = _workload(total=1)
    (request,) = _issued(w.begin(DEVICES))
    actions = w.lost(request, "data_share: no response in time")
    (record,) = _records(actions)
    assert record["outcome"] == "failed" and record["reason"] == "data_share: no response in time"
    assert actions[-1] == Done()


def test_the_providers_record_closes_the_results_file() -> None:
    phases = {"created": 1.0, "finished": 9.0}
    record = provider_record("iomt://w/dr_0", phases, wallet_retries=2, rejected_replies=3)
    assert record == {
        "record": "provider",
        "provider": "iomt://w/dr_0",
        "monotonic": phases,
        "wallet_retries": 2,
        "rejected_replies": 3,
    }


def test_a_restarted_provider_resumes_with_its_counts_and_a_fresh_generator() -> None:
    resumed = ["shared", "failed", "shared", "bogus"]
    w, _ = _workload(resumed=resumed, total=5, rng=workload_rng(3, 3))
    assert w.issued == 3 and w.counts["shared"] == 2 and w.counts["failed"] == 1
    got = _run_to_end(w, w.begin(DEVICES))
    assert len(got) == 2 and w.finished
    assert workload_rng(3, 0).random() == random.Random(3).random()
    assert workload_rng(3, 3).random() == random.Random(3 * 1_000_003 + 3).random()


@pytest.mark.parametrize("outcome", ["shared", "converted", "refused", "failed"])
def test_the_counts_are_the_outcomes(outcome: str) -> None:
    w, _ = _workload(total=1)
    (request,) = _issued(w.begin(DEVICES))
    w.finish(request, outcome)
    assert w.counts[outcome] == 1 and w.done == 1
