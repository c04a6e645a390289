"""A bolster's part in its cluster, without DDS: the elected member persists its vote
before it sends, takes up the head's duties and announces itself every heartbeat; refused
election messages are counted, not acted on; the head registers members from their
credentials (refusing another bolster's), cosigns its own checkpoint and each member's, and
a member caught rolling its log back is flagged in the head's status; a member witnesses
the head; what other witnesses cosigned is kept for the head to compare."""

from __future__ import annotations

import logging
import random

import pytest
from biomt_world import SECOND, World

from iomt.core.biomt import (
    Bolster,
    BolsterIdentity,
    ClusterMember,
    Heartbeat,
    HeartbeatAck,
    Outgoing,
    VoteReply,
    VoteRequest,
)
from iomt.core.biomt.cluster_duties import (
    ClusterAction,
    ClusterDuties,
    HeadStatus,
    Note,
    PersistElection,
    PublishCosignature,
)
from iomt.core.biomt.keys import LedgerKey
from iomt.core.biomt.witnessing import AskCheckpoint, FetchCredentials
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import IomtError
from iomt.ledger import MemoryStorage

KINDS = {1: Heartbeat, 2: HeartbeatAck, 3: VoteRequest, 4: VoteReply}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}
TICK = SECOND // 10
HEAD, MEMBER = "bolster-b", "bolster-a"  # bolster-a is the world's bolster


def _bolster(world: World, name: str) -> Bolster:
    """Another bolster of the world's facility, on a ledger of its own."""
    saved = world.identity, world.storage
    world.identity = BolsterIdentity.generate(
        name, world.ca, now=world.clock(), storage_secret=world.rng(32)
    )
    world.storage = MemoryStorage()
    try:
        return world.open_bolster()
    finally:
        world.identity, world.storage = saved


class Cluster:
    """Members' duties on a lossless link; every action each member was given, in order."""

    def __init__(self, world: World, priorities: dict[str, int]) -> None:
        self.world = world
        rnd = random.Random(1)
        keys = {n: Ed25519Signer.from_private_bytes(rnd.randbytes(32)) for n in priorities}
        self.sources = {MEMBER: world.bolster, HEAD: _bolster(world, HEAD)}
        self.duties = {
            n: ClusterDuties(
                ClusterMember(
                    "cluster-1",
                    n,
                    priority=p,
                    signer=keys[n],
                    peers={m: (priorities[m], keys[m].verifier()) for m in priorities if m != n},
                    clock=world.clock,
                ),
                priorities,
                source=self.sources[n],
                witness_key=LedgerKey(keys[n]),
                anchor=world.ca.anchor,
                users=world.users,
                clock=world.clock,
                rng=world.rng,
                kinds=KINDS,
            )
            for n, p in priorities.items()
        }
        self.batches: list[list[ClusterAction]] = []  # each receive's or tick's actions

    def run(self, seconds: float) -> list[ClusterAction]:
        """Tick everyone every 0.1 s, delivering what they send; what they did."""
        done: list[ClusterAction] = []
        for _ in range(round(seconds * 10)):
            self.world.clock.advance(TICK)
            queue = [(n, d.tick()) for n, d in self.duties.items()]
            while queue:
                sender, actions = queue.pop(0)
                self.batches.append(actions)
                done += actions
                for o in (a for a in actions if isinstance(a, Outgoing)):
                    for dst in [o.to] if o.to else [m for m in self.duties if m != sender]:
                        body = o.message.to_bytes()
                        got = self.duties[dst].receive(
                            sender, o.to or "", KIND_OF[type(o.message)], body
                        )
                        queue.append((dst, got))
        return done


@pytest.fixture
def cluster(world: World) -> Cluster:
    c = Cluster(world, {HEAD: 2, MEMBER: 1})
    c.run(2.0)
    assert c.duties[HEAD].member.is_head and c.duties[MEMBER].member.leader == HEAD
    return c


def _of(kind: type, actions: list[ClusterAction]) -> list:
    return [a for a in actions if isinstance(a, kind)]


def test_the_elected_member_persists_its_vote_before_sending_and_announces_itself(
    world: World,
) -> None:
    c = Cluster(world, {HEAD: 2, MEMBER: 1})
    done = c.run(2.0)
    head = c.duties[HEAD]
    for batch in c.batches:  # (term, voted_for) is kept before anything is sent
        sends = [i for i, a in enumerate(batch) if isinstance(a, Outgoing)]
        if sends:
            persisted = [i for i, a in enumerate(batch) if isinstance(a, PersistElection)]
            assert persisted and persisted[0] < sends[0]
    term = head.member.term
    assert Note(logging.WARNING, f"{HEAD}: cluster head of cluster-1 in term {term}") in done
    (first, *_) = _of(HeadStatus, done)
    assert first.head == HEAD and first.term == term and first.members == (MEMBER, HEAD)
    assert first.facilities == 1  # itself; members join once their credentials are fetched
    assert first.users == len(list(world.users))
    assert first.flagged == () and first.witnessed == ()
    assert head.summary() == {
        "cluster": "cluster-1",
        "term": term,
        "is_head": True,
        "head_terms": [term],
        "witnessed": 0,
        "flagged": [],
        "flagged_as_member": [],
        "rejected_messages": 0,
    }
    assert c.duties[MEMBER].head is None and not _of(HeadStatus, c.duties[MEMBER].tick())


def test_the_head_announces_itself_once_a_heartbeat(cluster: Cluster) -> None:
    statuses = _of(HeadStatus, cluster.run(2.0))
    assert len(statuses) == 4  # every 0.5 s
    assert {s.head for s in statuses} == {HEAD}
    assert [s.time for s in statuses] == sorted({s.time for s in statuses})


def test_refused_election_messages_are_counted_and_not_acted_on(cluster: Cluster) -> None:
    member = cluster.duties[MEMBER]
    hb = Heartbeat("cluster-1", 99, "mallory", 0).to_bytes()
    assert member.receive(MEMBER, "", 1, hb) == []  # our own
    assert member.receive(HEAD, "bolster-c", 1, hb) == []  # to someone else
    assert member.rejected == 0
    (note,) = member.receive(HEAD, "", 42, hb)
    assert note.level == logging.DEBUG and "unknown election message kind 42" in note.message
    (note,) = member.receive(HEAD, MEMBER, 1, b"not a heartbeat")
    assert note.level == logging.DEBUG and note.message.startswith(f"election message from {HEAD}")
    (note,) = member.receive(HEAD, "", 1, hb)  # unsigned, from no member
    assert member.rejected == 3 and member.member.term < 99


def test_the_head_registers_members_and_cosigns_every_checkpoint(cluster: Cluster) -> None:
    head, world = cluster.duties[HEAD], cluster.world
    actions = head.witness_round()
    # its own checkpoint answered on the spot; bolster-a not registered yet
    assert FetchCredentials(MEMBER) in actions
    (own,) = _of(PublishCosignature, actions)
    assert own.bolster_id == HEAD and own.term == head.member.term
    assert own.checkpoint == cluster.sources[HEAD].ledger.checkpoint()

    assert head.credentials_answered(MEMBER, None) == []  # no answer: fetched again
    (note,) = head.credentials_answered(MEMBER, cluster.sources[HEAD].credentials.to_bytes())
    assert note == Note(
        logging.WARNING, f"credentials of {MEMBER} refused: credentials of {HEAD} from {MEMBER}"
    )
    (note,) = head.credentials_answered(MEMBER, IomtError("denied"))
    assert note.level == logging.WARNING
    assert FetchCredentials(MEMBER) in head.witness_round()
    assert head.credentials_answered(MEMBER, world.bolster.credentials.to_bytes()) == []

    (ask,) = _of(AskCheckpoint, head.witness_round())
    assert ask.member == MEMBER and ask.witness is head.head
    assert not _of(AskCheckpoint, head.witness_round())  # one request at a time
    (note,) = head.checkpoint_answered(ask, IomtError("busy"))
    assert note == Note(logging.INFO, f"checkpoint of {MEMBER}: busy")
    (ask,) = _of(AskCheckpoint, head.witness_round())
    assert head.checkpoint_answered(ask, None) == []  # no answer: asked again
    (ask,) = _of(AskCheckpoint, head.witness_round())
    answer = world.bolster.answer_checkpoint(ask.request).to_bytes()
    (cosigned,) = head.checkpoint_answered(ask, answer)
    assert isinstance(cosigned, PublishCosignature) and cosigned.bolster_id == MEMBER
    assert head.witnessed == 7  # its own in each of the six rounds, bolster-a once
    (status,) = _of(HeadStatus, cluster.run(0.5))
    assert status.facilities == 2 and status.witnessed == (MEMBER, HEAD)


def test_a_member_rolling_its_log_back_is_flagged_in_the_head_s_status(
    cluster: Cluster,
) -> None:
    head, world = cluster.duties[HEAD], cluster.world
    world.store(world.device(), 70)
    head.witness_round()
    head.credentials_answered(MEMBER, world.bolster.credentials.to_bytes())
    (ask,) = _of(AskCheckpoint, head.witness_round())
    head.checkpoint_answered(ask, world.bolster.answer_checkpoint(ask.request).to_bytes())
    # bolster-a starts over on an empty ledger
    world.storage = MemoryStorage()
    world.bolster = world.open_bolster()
    (ask,) = _of(AskCheckpoint, head.witness_round())
    note, status = head.checkpoint_answered(
        ask, world.bolster.answer_checkpoint(ask.request).to_bytes()
    )
    assert note.level == logging.ERROR and note.message.startswith(f"{MEMBER} flagged:")
    assert isinstance(status, HeadStatus) and status.flagged == (MEMBER,)
    assert "rolled its ledger back" in status.flag_reasons[0]
    assert len(status.flag_reasons[0]) <= 200
    assert not _of(AskCheckpoint, head.witness_round())  # flagged: not asked again
    assert head.summary()["flagged"] == [MEMBER]


def test_a_member_witnesses_the_head(cluster: Cluster) -> None:
    member = cluster.duties[MEMBER]
    assert member.witness_round() == [FetchCredentials(HEAD)]
    member.credentials_answered(HEAD, cluster.sources[HEAD].credentials.to_bytes())
    (ask,) = member.witness_round()
    assert isinstance(ask, AskCheckpoint) and ask.member == HEAD
    assert ask.witness is member.rounds.peer_witness
    answer = cluster.sources[HEAD].answer_checkpoint(ask.request).to_bytes()
    (cosigned,) = member.checkpoint_answered(ask, answer)
    assert isinstance(cosigned, PublishCosignature) and cosigned.bolster_id == HEAD
    assert member.summary()["witnessed"] == 1 and member.summary()["is_head"] is False


def test_what_other_witnesses_cosigned_is_kept_for_the_head_to_compare(
    cluster: Cluster,
) -> None:
    head, world = cluster.duties[HEAD], cluster.world
    sth = world.bolster.ledger.checkpoint().to_bytes()
    head.heard(HEAD, MEMBER, sth)  # our own cosignature
    head.heard("bolster-c", HEAD, sth)  # of our own log
    head.heard("bolster-c", "bolster-z", sth)  # of no member
    assert head.rounds.heard == {} and head.rejected == 0
    head.heard("bolster-c", MEMBER, b"garbage")
    assert head.rejected == 1
    head.heard("bolster-c", MEMBER, sth)
    assert head.rounds.heard[MEMBER].to_bytes() == sth


def test_a_bolster_outside_the_cluster_is_refused(world: World) -> None:
    member = ClusterMember(
        "cluster-1",
        "bolster-x",
        priority=1,
        signer=Ed25519Signer.from_private_bytes(bytes(32)),
        peers={},
        clock=world.clock,
    )
    with pytest.raises(IomtError, match="bolster-x is not a member of cluster cluster-1"):
        ClusterDuties(
            member,
            {MEMBER: 1},
            source=world.bolster,
            witness_key=LedgerKey(Ed25519Signer.from_private_bytes(bytes(32))),
            anchor=world.ca.anchor,
            users=world.users,
            clock=world.clock,
            rng=world.rng,
            kinds=KINDS,
        )
