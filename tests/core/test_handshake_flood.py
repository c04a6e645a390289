"""Finding 3 at the core: a responder answering handshakes cannot be exhausted.

The responder keeps no state until message 3 (the cookie in message 2 carries it), and
message 1s are admitted per source (who wrote the request, as the transport says) with a
shared budget that a quiet source does not need -- so a flood from one source, under any
names, never locks a legitimate initiator out.
"""

from __future__ import annotations

import contextlib

import pytest

from iomt.core.channels import ChannelTable, HandshakeBusyError, HandshakeLimits
from iomt.crypto.sessions import HandshakeIdentity, PinnedCredentials, raw_credential
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import AuthenticationError, RemoteProtocolError


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def _identity(name: str) -> HandshakeIdentity:
    signer = Ed25519Signer.generate()
    return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))


@pytest.fixture
def parties():  # type: ignore[no-untyped-def]
    ids = {n: _identity(n) for n in ("hr_1", "dr_house", "dr_other", "attacker")}
    pins = PinnedCredentials({n: i.signer.verifier() for n, i in ids.items()})
    clock = Clock()

    def table(name: str, **kw: object) -> ChannelTable:
        return ChannelTable(ids[name], pins, clock=clock, **kw)  # type: ignore[arg-type]

    return table, clock


def _handshake(initiator: ChannelTable, responder: ChannelTable, source: object) -> None:
    peer = responder.identity.name
    me = initiator.identity.name
    m2 = responder.respond(me, initiator.start(peer), source=source)
    m4 = responder.respond(me, initiator.finish(peer, m2), source=source)
    initiator.confirm(peer, m4)
    assert initiator.session(peer) is not None and responder.session(me) is not None


def test_a_flood_from_one_source_leaves_nothing_and_locks_no_one_out(parties) -> None:
    table, clock = parties
    device = table("hr_1")
    flooder = table("attacker")
    busy = 0
    for n in range(3000):  # 3,000 starts in 10 s, naming the victim and strangers alike
        clock.t += 10 / 3000
        name = "dr_house" if n % 2 else f"forged_{n}"
        try:
            device.respond(name, flooder.start(f"x{n}"), source="attacker-writer")
        except HandshakeBusyError:
            busy += 1
    limits = device.gate.limits
    worked = 3000 - busy
    # the source's own budget: its burst and its rate over the 10 s, nothing more
    assert worked <= limits.per_source_burst + 10 * limits.per_source_rate + 1
    assert device.gate.refused == busy
    # nothing was kept for any of them: no table of unfinished handshakes exists
    assert len(device) == 0 and not device._completed
    # a legitimate initiator (its own source) completes at once, repeatedly
    for _ in range(3):
        _handshake(table("dr_house"), device, source="dr_house-writer")
    assert device.handshakes_completed == 3


def test_a_quiet_source_is_admitted_when_the_shared_budget_is_spent(parties) -> None:
    table, _clock = parties
    limits = HandshakeLimits(
        per_source_rate=1, per_source_burst=4, shared_rate=1, shared_burst=10, ceiling_burst=100
    )
    device = table("hr_1", limits=limits)
    flooder = table("attacker")
    # many sources, each spending its whole burst: the shared budget runs out
    admitted = 0
    for s in range(20):
        for n in range(4):
            try:
                device.respond(f"a{s}", flooder.start(f"p{s}-{n}"), source=("w", s))
                admitted += 1
            except HandshakeBusyError:
                pass
    assert admitted < 20 * 4
    with pytest.raises(HandshakeBusyError):  # a spending source gets nothing now
        device.respond("a0", flooder.start("again"), source=("w", 0))
    # a source that has not spent anything is still admitted: its budget is full
    _handshake(table("dr_house"), device, source="dr_house-writer")


def test_the_ceiling_bounds_everyone(parties) -> None:
    table, _clock = parties
    limits = HandshakeLimits(ceiling_rate=1, ceiling_burst=5)
    device = table("hr_1", limits=limits)
    flooder = table("attacker")
    for s in range(5):
        device.respond(f"a{s}", flooder.start(f"p{s}"), source=s)
    with pytest.raises(HandshakeBusyError):
        device.respond("dr_house", table("dr_house").start("hr_1"), source="quiet")


def test_without_a_source_the_claimed_name_is_the_budget(parties) -> None:
    """The weaker fallback (a runtime that cannot tell who wrote a request): a flood
    naming strangers leaves a legitimate name its budget; one naming the victim does not."""
    table, _clock = parties
    device = table("hr_1", limits=HandshakeLimits(per_source_burst=4, per_source_rate=0.001))
    flooder = table("attacker")
    for n in range(50):
        with contextlib.suppress(HandshakeBusyError):
            device.respond(f"forged_{n % 5}", flooder.start(f"x{n}"))
    _handshake(table("dr_house"), device, source=None)
    for n in range(4):
        device.respond("dr_other", flooder.start(f"y{n}"))
    with pytest.raises(HandshakeBusyError):
        _handshake(table("dr_other"), device, source=None)


def test_message_3_counts_once(parties) -> None:
    table, _clock = parties
    device, doctor = table("hr_1"), table("dr_house")
    m2 = device.respond("dr_house", doctor.start("hr_1"), source=1)
    m3 = doctor.finish("hr_1", m2)
    m4 = device.respond("dr_house", m3, source=1)
    with pytest.raises(RemoteProtocolError, match="replayed"):
        device.respond("dr_house", m3, source=2)  # an eavesdropper's copy
    doctor.confirm("hr_1", m4)
    assert device.handshakes_completed == 1


def test_message_3_under_another_name_is_refused(parties) -> None:
    table, _clock = parties
    device, doctor = table("hr_1"), table("dr_house")
    m3 = doctor.finish("hr_1", device.respond("dr_house", doctor.start("hr_1"), source=1))
    with pytest.raises(AuthenticationError):
        device.respond("dr_other", m3, source=1)
    device.respond("dr_house", m3, source=1)


def test_a_forged_message_2_or_4_changes_nothing_at_the_initiator(parties) -> None:
    table, _clock = parties
    device, doctor, attacker = table("hr_1"), table("dr_house"), table("attacker")
    m1 = doctor.start("hr_1")
    # another certified identity answers the message 1 it read on the bus
    with pytest.raises(AuthenticationError, match="attacker"):
        doctor.finish("hr_1", attacker.respond("dr_house", m1, source=9))
    m3 = doctor.finish("hr_1", device.respond("dr_house", m1, source=1))
    m4 = device.respond("dr_house", m3, source=1)
    with pytest.raises(AuthenticationError):
        doctor.confirm("hr_1", m4[:-1] + bytes([m4[-1] ^ 1]))
    assert doctor.session("hr_1") is None
    doctor.confirm("hr_1", m4)
    assert doctor.session("hr_1") is not None
