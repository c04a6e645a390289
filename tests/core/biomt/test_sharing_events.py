"""The sharing framework's events, without DDS: a reporter's queue signs each event, sends
one report at a time and puts a report without an answer back (bounded, oldest dropped); the
bolster records a wallet's events about its own patient's devices and a device's about
itself, and refuses the rest (another's device, a device speaking for another, unknown
devices, stale, replayed or misaddressed events); the signed bytes are pinned."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import count

import pytest
from biomt_world import FACILITY, START, YEAR, World

from iomt.core.biomt import ADMIN_ROLE, PATIENT_ROLE, SECOND
from iomt.core.biomt.bodies import AccessBody
from iomt.core.biomt.sharing_events import (
    EventNotRecorded,
    EventQueue,
    RecordAck,
    ReportLost,
    ReportRefused,
    SharingEvent,
    SharingRecorder,
    SharingReport,
)
from iomt.crypto.signing import Ed25519Signer, Verifier
from iomt.errors import (
    AuthenticationError,
    RemoteProtocolError,
    ServiceTimeoutError,
)

HR = f"iomt://{FACILITY}/hr-1"
BP = f"iomt://{FACILITY}/bp-1"


def _nonces() -> Callable[[int], bytes]:
    """Distinct, reproducible nonces."""
    n = count()
    return lambda size: next(n).to_bytes(size, "big")


def _queue(signer: Ed25519Signer, **kw: object) -> EventQueue:
    return EventQueue(
        reporter="wallet-p",
        signer=signer,
        bolster_id="bolster-a",
        clock=lambda: START,
        rng=_nonces(),
        **kw,  # type: ignore[arg-type]
    )


def _add(q: EventQueue, n: int = 1, kind: str = "token") -> None:
    for i in range(n):
        q.add(kind, actor="dr-a", device_uri=HR, technique="ecc", detail=f"#{i}")


def test_the_signed_bytes_are_pinned() -> None:
    signer = Ed25519Signer.from_private_bytes(bytes(range(32)))
    event = SharingEvent(
        "bolster-a", "wallet-p", "token", "dr-a", HR, "ecc", "to iomt://facility-a/dr-a",
        bytes(range(16)), 1_700_000_000_000_000_000,
    )  # fmt: skip
    event = replace(event, signature=signer.sign(event.signed_bytes()))
    digests = [
        hashlib.sha256(b).hexdigest()
        for b in (
            event.signed_bytes(),
            SharingReport((event,)).to_bytes(),
            RecordAck(1, ("x",)).to_bytes(),
        )
    ]
    assert digests == [
        "44edb21b596b32aaa6207b91ccb1efacaab9001374732c6008553dd1cab9b0af",
        "04ac7f8b33f62d3428f9bf13b2521b60aea693ef3de9a52dcafb33e13714537a",
        "f7d9d18d9b34d2fe9c371d3b57afab6479a929c086b32a0757101d465d9bc777",
    ]


def test_a_report_is_a_signed_batch_and_one_is_out_at_a_time() -> None:
    signer = Ed25519Signer.generate()
    q = _queue(signer, max_batch=2)
    assert q.flush() is None  # nothing queued
    _add(q, 3)
    report = q.flush()
    assert report is not None and len(report.events) == 2 and q.pending == 3
    for e in report.events:
        signer.verifier().verify(e.signed_bytes(), e.signature)
        assert (e.bolster_id, e.reporter, e.time) == ("bolster-a", "wallet-p", START)
    assert len({e.nonce for e in report.events}) == 2
    assert q.flush() is None  # the first is still out
    assert q.on_ack(RecordAck(1, ("token by wallet-p: no",)).to_bytes()) == [
        EventNotRecorded("token by wallet-p: no")
    ]
    assert q.counts == {**q.counts, "queued": 3, "recorded": 1, "refused": 1}
    last = q.flush()
    assert last is not None and [e.detail for e in last.events] == ["#2"]


def test_a_paused_queue_keeps_its_events() -> None:
    q = _queue(Ed25519Signer.generate(), paused=True)
    _add(q)
    assert q.flush() is None and q.pending == 1
    q.paused = False
    assert q.flush() is not None


def test_a_refused_report_is_not_sent_again() -> None:
    q = _queue(Ed25519Signer.generate())
    _add(q, 2)
    assert q.flush() is not None
    error = RemoteProtocolError("bad report")
    assert q.on_refused(error) == [ReportRefused(2, error)]
    assert q.counts["refused"] == 2 and q.pending == 0 and q.flush() is None


def test_an_ack_that_does_not_decode_refuses_the_whole_report() -> None:
    q = _queue(Ed25519Signer.generate())
    _add(q, 2)
    q.flush()
    [outcome] = q.on_ack(b"\x00garbage")
    assert isinstance(outcome, ReportRefused) and outcome.count == 2
    assert q.counts["refused"] == 2 and q.pending == 0


def test_only_three_refusals_of_an_ack_are_worth_a_log_line() -> None:
    q = _queue(Ed25519Signer.generate())
    _add(q, 5)
    q.flush()
    outcomes = q.on_ack(RecordAck(0, tuple(f"r{i}" for i in range(5))).to_bytes())
    assert outcomes == [EventNotRecorded(f"r{i}") for i in range(3)]
    assert q.counts["refused"] == 5


def test_a_lost_report_is_queued_again_first_and_signed_anew() -> None:
    q = _queue(Ed25519Signer.generate(), max_batch=2, max_queue=3)
    _add(q, 2)
    first = q.flush()
    assert first is not None
    _add(q, 2)  # #0 #1 queued behind the two in flight
    error = ServiceTimeoutError("no answer")
    assert q.on_lost(error) == [ReportLost(2, error)]
    # back in front; beyond the bound of 3 the oldest is dropped
    assert q.counts == {**q.counts, "failed": 1, "dropped": 1} and q.pending == 3
    again = q.flush()
    assert again is not None
    assert [e.detail for e in again.events] == ["#1", "#0"]
    assert again.events[0].nonce not in {e.nonce for e in first.events}


def test_the_queue_is_bounded_and_kinds_are_checked() -> None:
    q = _queue(Ed25519Signer.generate(), max_queue=2)
    _add(q, 3)
    assert q.pending == 2 and q.counts["dropped"] == 1
    with pytest.raises(ValueError, match="event kind"):
        q.add("gossip", actor="dr-a", device_uri=HR, technique="ecc", detail="")
    q.add("share", actor="dr-a", device_uri=HR, technique="ecc", detail="x" * 500)
    report = q.flush()
    assert report is not None and len(report.events[-1].detail) == 200


# --- the bolster's side ----------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    pseudonym: str
    owner: str


@dataclass
class _Ledger:
    devices: dict[str, _Entry]
    logged: list[tuple[str, AccessBody, bytes]] = field(default_factory=list)

    def device(self, device_uri: str) -> _Entry | None:
        return self.devices.get(device_uri)

    def append_access(self, actor: str, body: AccessBody, *, signature: bytes) -> None:
        self.logged.append((actor, body, signature))


@dataclass(frozen=True)
class _Info:
    uri: str


class _Keys:
    """Device identities: hr-1 only."""

    def __init__(self, hr: Ed25519Signer) -> None:
        self._hr = hr

    def verifier(self, name: str) -> Verifier:
        if name != "hr-1":
            raise AuthenticationError(f"no identity {name!r}")
        return self._hr.verifier()

    def info(self, name: str) -> _Info:
        return _Info(HR)


class _Bolster:
    def __init__(self, world: World) -> None:
        self.world = world
        self.signers = {
            name: self._user(name, role)
            for name, role in (
                ("wallet-p", PATIENT_ROLE),
                ("wallet-q", PATIENT_ROLE),
                ("admin-2", ADMIN_ROLE),
            )
        }
        self.signers["hr-1"] = Ed25519Signer.generate()
        self.ledger = _Ledger({HR: _Entry("ps-hr", "wallet-p"), BP: _Entry("ps-bp", "wallet-q")})
        self.recorder = SharingRecorder(
            bolster_id="bolster-a",
            view=self.ledger,
            users=world.users,
            keystore=_Keys(self.signers["hr-1"]),
            clock=world.clock,
        )
        self._nonce = _nonces()

    def _user(self, name: str, role: str) -> Ed25519Signer:
        w = self.world
        signer = Ed25519Signer.from_private_bytes(w.rng(32))
        cert = w.ca.issue(
            common_name=name,
            uri=f"iomt://{FACILITY}/{name}",
            public_key=signer.raw.public_key(),
            now=w.clock(),
            not_after=w.clock() + YEAR,
        )
        w.users.register(cert, role, now=w.clock())
        return signer

    def event(self, reporter: str, kind: str, device: str, **kw: object) -> SharingEvent:
        fields: dict[str, object] = {
            "bolster_id": "bolster-a",
            "reporter": reporter,
            "kind": kind,
            "actor": "dr-alice",
            "device_uri": device,
            "technique": "ecc",
            "detail": "",
            "nonce": self._nonce(16),
            "time": self.world.clock(),
        }
        fields.update(kw)
        event = SharingEvent(**fields)  # type: ignore[arg-type]
        return replace(event, signature=self.signers[reporter].sign(event.signed_bytes()))

    def record(self, *events: SharingEvent) -> RecordAck:
        return self.recorder.record(SharingReport(events))


def test_an_owner_and_the_device_itself_are_recorded_as_access(world: World) -> None:
    b = _Bolster(world)
    token = b.event("wallet-p", "token", HR, detail="to dr-alice")
    share = b.event("hr-1", "share", HR)
    assert b.record(token, share, b.event("admin-2", "token", BP)) == RecordAck(3, ())
    (actor, body, signature), (_, shared, _), _ = b.ledger.logged
    assert (actor, signature) == ("dr-alice", token.signature)
    assert body.role == "physician"  # the actor's registered role
    assert body.device == "ps-hr" and body.request == token.to_bytes()
    assert (body.records, shared.records) == (0, 1)  # a token carries no reading; a share one
    assert body.detail == (
        "token via the sharing framework (ecc); reported by wallet-p: to dr-alice"
    )
    assert shared.detail == "share via the sharing framework (ecc); reported by hr-1"
    b.record(b.event("hr-1", "conversion", HR, actor="clinic-z"))
    assert b.ledger.logged[-1][1].role == "provider"  # an actor without a registered role


@pytest.mark.parametrize(
    ("reporter", "kind", "device", "changes", "why"),
    [
        ("wallet-p", "token", BP, {}, "does not own"),
        ("wallet-p", "token", "iomt://facility-a/nope", {}, "no such device"),
        ("hr-1", "share", BP, {}, "only its own"),
        ("hr-1", "token", HR, {}, "only its own"),
        ("wallet-p", "token", HR, {"bolster_id": "bolster-b"}, "for bolster"),
        ("wallet-p", "token", HR, {"time": START - 121 * SECOND}, "skew"),
        ("wallet-p", "gossip", HR, {}, "unknown event kind"),
    ],
)
def test_who_may_not_report_what_is_refused(
    world: World, reporter: str, kind: str, device: str, changes: dict[str, object], why: str
) -> None:
    b = _Bolster(world)
    ack = b.record(b.event(reporter, kind, device, **changes))
    assert ack.recorded == 0 and why in ack.refused[0] and not b.ledger.logged


def test_forged_replayed_and_unknown_reporters_are_refused(world: World) -> None:
    b = _Bolster(world)
    token = b.event("wallet-p", "token", HR)
    forged = replace(token, detail="edited")
    stranger = replace(b.event("hr-1", "share", HR), reporter="ghost-9")
    ack = b.record(forged, token, token, stranger)
    assert ack.recorded == 1 and len(ack.refused) == 3
    assert "reporter 'ghost-9'" in ack.refused[2]
    assert all(isinstance(r, str) for r in ack.refused) and len(b.ledger.logged) == 1
