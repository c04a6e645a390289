"""A physician's Access/Observe workload, without DDS: Access, Access, Observe, Observe, each
pair once on the real path and once on the base, which goes first alternating every cycle;
one random choice per operation (the same seed, the same operations); discovery starts with
enough devices, or any at the deadline, and gives up without any; the tally is the results
file's physician record. Run against a core bolster: discovery waits out the start delay and
gives up at its deadline; each operation's request is made on a session or signed (or as
the base's plain query), its answer opened and checked (the base's only decoded), its delay
timed; refusals, denials and lost requests are tallied, and only a lost one stalls the
workload until the node's timer resumes it; what is left unattested is attested once at the
end."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest
from biomt_world import World

from iomt.core.biomt import FOREVER, SECOND
from iomt.core.biomt.messages import AccessPayload, AccessRequest, ObserveRequest
from iomt.core.biomt.physician import (
    BASE_ACCESS_LIMIT,
    Answer,
    Ask,
    BaseQuery,
    Finish,
    Issue,
    Operation,
    Physician,
    PhysicianWorkload,
    Progress,
)
from iomt.core.biomt.session import SessionRequest
from iomt.core.modes import Mode
from iomt.errors import AuthenticationError, AuthorizationError, IomtError

DEVICES = {"bolster-a": ("d1", "d2"), "bolster-b": ("d3",)}


def _workload(total: int = 8, seed: int = 5) -> PhysicianWorkload:
    w = PhysicianWorkload(total, random.Random(seed))
    for b, ds in DEVICES.items():
        w.discovered(b, ds)
    return w


def test_operations_cycle_in_pairs_with_alternating_paths() -> None:
    w = _workload()
    ops = []
    while (o := w.next()) is not None:
        ops.append((o.op, o.path))
    B, X = Mode.BIOMT, Mode.BASE
    assert ops == [
        ("access", B), ("access", X), ("observe", B), ("observe", X),
        ("access", X), ("access", B), ("observe", X), ("observe", B),
    ]  # fmt: skip
    assert w.issued == 8 and w.next() is None


def test_the_same_seed_makes_the_same_operations() -> None:
    reference = random.Random(5)
    candidates = [(b, d) for b, ds in DEVICES.items() for d in ds]
    expected = [reference.choice(candidates) for _ in range(8)]
    w = _workload(seed=5)
    got = [(o.bolster, o.device) for o in iter(w.next, None)]
    assert got == expected
    assert isinstance(_workload().next(), Operation)


def test_discovery_waits_for_enough_devices_and_gives_up_without_any() -> None:
    w = PhysicianWorkload(4, random.Random(0), min_devices=3)
    assert w.discovery(past_deadline=False) == "wait"
    assert w.discovery(past_deadline=True) == "give-up"
    w.discovered("bolster-a", ("d1",))
    assert w.discovery(past_deadline=False) == "wait"
    assert w.discovery(past_deadline=True) == "start"
    w.discovered("bolster-b", ("d2", "d3"))
    assert w.discovery(past_deadline=False) == "start"


def test_the_tally_is_the_physician_record() -> None:
    w = _workload()
    w.succeeded("access", Mode.BIOMT, 120)
    w.failed("observe/biomt", denied=True)
    w.failed("cloud")
    w.delay("update", Mode.BASE, 7)
    w.counts["records"] += 3
    summary = w.summary("dr_0", sessions=True)
    assert summary["record"] == "physician" and summary["physician"] == "dr_0"
    assert summary["devices"] == {"bolster-a": 2, "bolster-b": 1}
    assert summary["delays_us"]["access"][Mode.BIOMT] == [120]
    assert summary["delays_us"]["update"][Mode.BASE] == [7]
    assert summary["counts"]["done"] == 1 and summary["counts"]["failed"] == 2
    assert summary["counts"]["denied"] == 1 and summary["counts"]["records"] == 3
    assert summary["errors"] == {"observe/biomt": 1, "cloud": 1}
    assert summary["sessions"] is True and summary["finished"] is False
    assert set(summary["counts"]) == {
        "done", "failed", "denied", "redirected", "records", "handshakes", "attested",
        "attest_failed", "receipts_settled",
    }  # fmt: skip


# -- running it: the physician against a core bolster, without DDS ------------------------

MS = 1_000_000


class _Monotonic:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _physician(
    w: World, *, sessions: bool = True, total: int = 4, min_devices: int = 1
) -> tuple[Physician, _Monotonic]:
    mono = _Monotonic()
    p = Physician(
        w.physician,
        PhysicianWorkload(total, random.Random(3), min_devices=min_devices),
        bolsters=["bolster-a"],
        verifiers={"bolster-a": w.bolster.verifier},
        sessions=sessions,
        window=5 * SECOND,
        duration=SECOND,
        interval=0,
        start_delay=3 * SECOND,
        discover_timeout=30 * SECOND,
        clock=w.clock,
        monotonic=mono,
    )
    return p, mono


def _started(w: World, **kw: Any) -> tuple[Physician, _Monotonic, str]:
    device = w.device().pseudonym
    p, mono = _physician(w, **kw)
    mono.now = 3 * SECOND
    assert p.discovery_due()
    p.work.discovered("bolster-a", (device,))
    assert p.discovery() == "start" and p.started
    return p, mono, device


def _serve(w: World, ask: Ask) -> bytes:
    """The core bolster's answer to ``ask`` (the node's service, without DDS)."""
    request = ask.request
    if isinstance(request, SessionRequest):
        return w.bolster.session_request(request).to_bytes()
    if isinstance(request, AccessRequest):
        return w.bolster.access(request).to_bytes()
    assert isinstance(request, ObserveRequest)
    return w.bolster.observe(request).to_bytes()


def test_discovery_starts_after_the_delay_and_gives_up_at_the_deadline(world: World) -> None:
    p, mono = _physician(world, min_devices=2)
    assert not p.discovery_due()  # the start delay
    mono.now = 3 * SECOND
    assert p.discovery_due() and p.discovery() == "wait"
    p.work.discovered("bolster-a", ("d1",))
    mono.now = 33 * SECOND
    assert p.discovery_due() and p.discovery() == "wait"  # the deadline is not past yet
    mono.now += 1
    assert p.discovery() == "start"  # any device, at the deadline
    assert not p.discovery_due()  # started: no more asking

    q, mono = _physician(world)
    mono.now = 3 * SECOND
    assert q.discovery_due()
    mono.now = 34 * SECOND
    assert q.discovery() == "give-up" and q.work.finished and not q.discovery_due()


def test_an_operation_on_a_session_is_opened_timed_and_tallied(world: World) -> None:
    p, mono, device = _started(world)
    issue = p.next()
    assert isinstance(issue, Issue) and issue.on_session and issue.started == 3 * SECOND
    assert (issue.op, issue.bolster, issue.operation.device) == ("access", "bolster-a", device)
    world.connect(p.requester)  # the node handshakes first
    ask = p.ask(issue)
    assert isinstance(ask.request, SessionRequest) and ask.session == ("bolster-a", ask.request)
    assert (ask.service, ask.proven, ask.key) == ("access", True, "access/biomt")
    answer = p.open(ask, _serve(world, ask))
    assert answer.payload is not None and answer.observer is None
    mono.now += 7 * MS
    assert p.answered(ask) is True  # on a session: its attestation may be due
    assert p.work.delays_us["access"][Mode.BIOMT] == [7000] and p.work.counts["done"] == 1


def test_without_sessions_requests_are_signed_and_answers_checked(world: World) -> None:
    p, _, _ = _started(world, sessions=False)
    issue = p.next()
    assert isinstance(issue, Issue) and not issue.on_session
    access = p.ask(issue)
    assert isinstance(access.request, AccessRequest) and access.session is None
    assert p.open(access, _serve(world, access)).payload is not None
    assert p.answered(access) is False
    p.next()  # the base's access
    observe = p.ask(cast(Issue, p.next()))
    assert isinstance(observe.request, ObserveRequest)
    assert p.open(observe, _serve(world, observe)).observer is not None
    with pytest.raises(IomtError):  # an answer that is not the bolster's
        p.open(access, b"\x00" * 40)


def test_the_base_is_only_decoded(world: World) -> None:
    p, _, device = _started(world, sessions=False)
    p.next()
    access = p.ask(cast(Issue, p.next()))
    assert (access.service, access.proven, access.key) == ("base/access", False, "access/base")
    assert access.request == BaseQuery(
        device, world.clock() - 5 * SECOND, FOREVER, BASE_ACCESS_LIMIT, SECOND, 0
    )
    assert p.open(access, AccessPayload(device, (), (), "").to_bytes()) == Answer()
    with pytest.raises(IomtError):
        p.open(access, b"not records")
    p.next()  # the real path's observe
    observe = p.ask(cast(Issue, p.next()))
    assert observe.service == "base/observe" and p.open(observe, b"") == Answer()


def test_refusals_denials_and_lost_requests_are_tallied(world: World) -> None:
    p, _, _ = _started(world, sessions=False)
    ask = p.ask(cast(Issue, p.next()))
    p.failed(ask, AuthorizationError("the privacy header says no"))
    p.failed(ask, AuthenticationError("not the bolster's"))
    assert p.work.counts == {**p.work.counts, "failed": 2, "denied": 1}
    assert not p.resume()  # refusals go straight on
    p.failed(ask, AuthorizationError("timed out, oddly typed"), lost=True)
    assert p.work.counts["denied"] == 1 and p.work.errors == {"access/biomt": 3}
    assert p.resume() and not p.resume()  # once, from the node's timer


def test_at_the_end_what_is_left_is_attested_once(world: World) -> None:
    p, _, _ = _started(world, total=1)
    assert isinstance(p.next(), Issue)
    assert p.next() == Finish(("bolster-a",)) and p.work.finished
    assert p.next() == Finish(())
    q, _, _ = _started(world, total=0, sessions=False)
    assert q.next() == Finish(())
    assert q.work.progress() == Progress(0, 0, 0, True)
