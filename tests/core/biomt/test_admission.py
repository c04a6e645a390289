"""A member bolster's admission to the master's shared chain and the chaining of its
devices, without DDS: the member's side (MasterAdmission) driven against the master's
(MasterBolster), duplicates read as done through typed replies, not reason text."""

from __future__ import annotations

import pytest
from biomt_world import World

from iomt.core.biomt import MasterBolster
from iomt.core.biomt.admission import (
    MasterAdmission,
    MasterRefused,
    MasterReply,
    SendAdmit,
    SendChain,
)
from iomt.core.biomt.errors import AlreadyChainedError, AlreadyMemberError, BiomtStateError
from iomt.core.biomt.keys import LedgerKey
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import IomtError
from iomt.ledger import MemoryStorage


def _master(world: World) -> MasterBolster:
    return MasterBolster.open(
        MemoryStorage(),
        LedgerKey(Ed25519Signer.from_private_bytes(world.rng(32))),
        facility_id="facility-a",
        anchor=world.ca.anchor,
        clock=world.clock,
    )


def _answer(call: object) -> tuple[MasterReply, str]:
    """What the master node answers: OK, or a refusal with the error's text."""
    try:
        call()  # type: ignore[operator]
    except IomtError as exc:
        return MasterReply.of(False, str(exc)), str(exc)
    return MasterReply.of(True, ""), ""


def _run(world: World, admission: MasterAdmission, master: MasterBolster) -> list[object]:
    """One tick, every request answered at once."""
    refused: list[object] = []
    bolster = world.bolster
    for action in admission.tick():
        if isinstance(action, SendAdmit):
            reply, reason = _answer(lambda: master.admit(bolster.own_origin()))
            refused += admission.on_admit_reply(reply, reason, bolster.devices())
        elif isinstance(action, SendChain):
            link = bolster.origin_link(action.pseudonym)
            reply, reason = _answer(lambda link=link: master.chain_device(link))
            refused += admission.on_chain_reply(action.pseudonym, reply, reason)
    return refused


def test_admission_first_then_every_device_chained(world: World) -> None:
    master = _master(world)
    admission = MasterAdmission()
    first = world.device()
    admission.provisioned(first.pseudonym)
    assert admission.tick() == [SendAdmit()]
    assert admission.tick() == []  # one admission request at a time
    admission.on_admit_lost()
    assert _run(world, admission, master) == []  # asked again, admitted
    assert admission.admitted and admission.pending == (first.pseudonym,)
    second = world.device()
    admission.provisioned(second.pseudonym)
    assert _run(world, admission, master) == []
    assert admission.counts == {"chained": 2, "failed": 0} and admission.pending == ()
    assert {m.bolster_id for m in master.members()} == {"bolster-a"}
    for d in (first, second):
        master.device_chain("bolster-a", d.pseudonym)  # raises if not chained


def test_a_restarted_member_is_taken_as_admitted_and_chained(world: World) -> None:
    master = _master(world)
    devices = [world.device().pseudonym for _ in range(2)]
    before = MasterAdmission()
    for p in devices:
        before.provisioned(p)
    _run(world, before, master)
    _run(world, before, master)
    assert before.counts["chained"] == 2
    # after a restart the member knows nothing: it re-offers its origin and every device
    after = MasterAdmission()
    assert _run(world, after, master) == []  # "already a member": admitted
    assert after.admitted and sorted(after.pending) == sorted(devices)
    assert _run(world, after, master) == []  # "already chained": chained
    assert after.counts == {"chained": 2, "failed": 0}


def test_a_lost_chain_request_is_offered_again() -> None:
    admission = MasterAdmission()
    admission.on_admit_reply(MasterReply.ACCEPTED, "", ["d1", "d2"])
    assert admission.tick() == [SendChain("d1"), SendChain("d2")]
    admission.on_chain_lost("d2")
    assert admission.tick() == [SendChain("d2")]


def test_refusals_are_counted_and_returned_for_the_log() -> None:
    admission = MasterAdmission()
    assert admission.tick() == [SendAdmit()]
    refused = admission.on_admit_reply(MasterReply.REFUSED, "bad origin", ["d1"])
    assert refused == [MasterRefused(None, "bad origin")]
    assert not admission.admitted and admission.tick() == [SendAdmit()]
    admission.on_admit_reply(MasterReply.ACCEPTED, "", ["d1"])
    assert admission.tick() == [SendChain("d1")]
    assert admission.on_chain_reply("d1", MasterReply.REFUSED, "no") == [MasterRefused("d1", "no")]
    assert admission.counts == {"chained": 0, "failed": 1} and admission.tick() == []


def test_duplicates_are_typed_errors_with_the_reasons_sent_before(world: World) -> None:
    master = _master(world)
    dev = world.device()
    master.admit(world.bolster.own_origin())
    with pytest.raises(AlreadyMemberError, match=r"^'bolster-a' is already a member$") as m:
        master.admit(world.bolster.own_origin())
    master.chain_device(world.bolster.origin_link(dev.pseudonym))
    with pytest.raises(AlreadyChainedError, match=r"^device '.*' is already chained$") as c:
        master.chain_device(world.bolster.origin_link(dev.pseudonym))
    assert isinstance(m.value, BiomtStateError) and isinstance(c.value, BiomtStateError)
    assert MasterReply.of(False, f"admit: {m.value}") is MasterReply.ALREADY_MEMBER
    assert MasterReply.of(False, str(c.value)) is MasterReply.ALREADY_CHAINED
    assert MasterReply.of(False, "origin of 'x' rejected") is MasterReply.REFUSED
    assert MasterReply.of(True, "is already a member") is MasterReply.ACCEPTED
