"""Who witnesses whom in a cluster, without DDS: nobody before an election; a member
witnesses the head, registering it first; a head witnesses every member; one checkpoint
request per member at a time; what an earlier head cosigned is compared before asking, and
a member caught showing two histories is flagged and not asked again."""

from __future__ import annotations

import random

from biomt_world import SECOND, World

from iomt.core.biomt import ClusterHead, ClusterMember
from iomt.core.biomt.keys import LedgerKey
from iomt.core.biomt.witnessing import (
    AskCheckpoint,
    FetchCredentials,
    Flagged,
    Skipped,
    WitnessRounds,
)
from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import MemoryStorage

TICK = SECOND // 10


def _elect(world: World, priorities: dict[str, int]) -> dict[str, ClusterMember]:
    """Members on a lossless link, ticked for two seconds (the highest priority wins)."""
    rnd = random.Random(1)
    keys = {n: Ed25519Signer.from_private_bytes(rnd.randbytes(32)) for n in priorities}
    members = {
        n: ClusterMember(
            "cluster-1",
            n,
            priority=p,
            signer=keys[n],
            peers={m: (priorities[m], keys[m].verifier()) for m in priorities if m != n},
            clock=world.clock,
        )
        for n, p in priorities.items()
    }
    queue = []
    for _ in range(20):
        world.clock.now += TICK
        for n, m in members.items():
            queue += [(n, o) for o in m.tick()]
        while queue:
            src, out = queue.pop(0)
            for dst in [out.to] if out.to is not None else [m for m in members if m != src]:
                queue += [(dst, o) for o in members[dst].receive(out.message)]
    return members


def _witness(world: World, name: str, member: ClusterMember | None = None) -> ClusterHead:
    return ClusterHead(
        name,
        LedgerKey(Ed25519Signer.from_private_bytes(world.rng(32))),
        anchor=world.ca.anchor,
        users=world.users,
        clock=world.clock,
        rng=world.rng,
        membership=member,
    )


def test_nobody_is_witnessed_before_an_election(world: World) -> None:
    members = {
        "me": ClusterMember(
            "cluster-1",
            "me",
            priority=1,
            signer=Ed25519Signer.from_private_bytes(bytes(32)),
            peers={},
            clock=world.clock,
        )
    }
    rounds = WitnessRounds("me", ["me"], members["me"], _witness(world, "me"))
    assert rounds.round() == []


def test_a_member_registers_the_head_then_asks_it_one_request_at_a_time(world: World) -> None:
    members = _elect(world, {"bolster-a": 2, "me": 1})
    assert members["me"].leader == "bolster-a"
    rounds = WitnessRounds("me", members, members["me"], _witness(world, "me"))
    assert rounds.round() == [FetchCredentials("bolster-a")]
    rounds.registered("bolster-a", world.bolster.credentials)
    (ask,) = rounds.round()
    assert isinstance(ask, AskCheckpoint) and ask.member == "bolster-a"
    assert ask.witness is rounds.peer_witness
    assert rounds.round() == []  # its request is still outstanding
    ask.witness.receive_checkpoint(world.bolster.answer_checkpoint(ask.request))
    rounds.answered("bolster-a")
    assert [type(a) for a in rounds.round()] == [AskCheckpoint]


def test_a_head_compares_what_others_cosigned_and_flags_two_histories(world: World) -> None:
    world.store(world.device(), 70)
    members = _elect(world, {"me": 2, "bolster-a": 1})
    assert members["me"].is_head
    rounds = WitnessRounds("me", members, members["me"], _witness(world, "me"))
    head = rounds.head = _witness(world, "me", members["me"])
    rounds.registered("bolster-a", world.bolster.credentials)
    actions = rounds.round()
    # itself, not registered at its own head here: no request this round; then bolster-a
    assert isinstance(actions[0], Skipped) and actions[0].member == "me"
    (ask,) = [a for a in actions if isinstance(a, AskCheckpoint)]
    assert ask.member == "bolster-a" and ask.witness is head
    head.receive_checkpoint(world.bolster.answer_checkpoint(ask.request))
    rounds.answered("bolster-a")
    # bolster-a shows another witness a different history of the same size
    world.storage = MemoryStorage()
    world.bolster = world.open_bolster()
    world.store(world.device(), 99)
    rounds.heard["bolster-a"] = world.bolster.ledger.checkpoint()
    actions = rounds.round()
    assert [a.member for a in actions if isinstance(a, Flagged)] == ["bolster-a"]
    assert not [a for a in actions if isinstance(a, AskCheckpoint)]
    assert "bolster-a" in head.flagged and "bolster-a" not in rounds.heard
    assert not [a for a in rounds.round() if a.member == "bolster-a"]  # flagged: not asked
