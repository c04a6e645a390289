"""Cluster-head election (terms, heartbeats, failover) and checkpoint witnessing."""

from __future__ import annotations

import dataclasses
import random
from collections import deque

import pytest
from biomt_world import SECOND, World
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.core.biomt import (
    BolsterFlaggedError,
    ClusterHead,
    ClusterMember,
    ElectionRole,
    Heartbeat,
    NotLeaderError,
    RequestAuthenticationError,
    UnknownBolsterError,
)
from iomt.core.biomt.cluster import ElectionMessage
from iomt.core.biomt.keys import LedgerKey
from iomt.crypto.signing import Ed25519Signer
from iomt.ledger import (
    ForkDetectedError,
    MemoryStorage,
    verify_cosignature,
)

TICK = SECOND // 10


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * SECOND

    def __call__(self) -> int:
        return self.now


class Net:
    """Members joined by a lossless in-order link, with crashes and partitions."""

    def __init__(self, priorities: dict[str, int], seed: int = 0) -> None:
        rnd = random.Random(seed)
        self.clock = Clock()
        keys = {n: Ed25519Signer.from_private_bytes(rnd.randbytes(32)) for n in priorities}
        self.members = {
            n: ClusterMember(
                "cluster-1",
                n,
                priority=p,
                signer=keys[n],
                peers={m: (priorities[m], keys[m].verifier()) for m in priorities if m != n},
                clock=self.clock,
            )
            for n, p in priorities.items()
        }
        self.down: set[str] = set()
        self.groups: list[set[str]] | None = None
        self.queue: deque[tuple[str, str, ElectionMessage]] = deque()
        self.leaders: dict[int, set[str]] = {}

    def linked(self, a: str, b: str) -> bool:
        if a in self.down or b in self.down:
            return False
        return self.groups is None or any(a in g and b in g for g in self.groups)

    def send(self, src: str, outs: list) -> None:  # type: ignore[type-arg]
        for out in outs:
            targets = [out.to] if out.to is not None else [m for m in self.members if m != src]
            for t in targets:
                if self.linked(src, t):
                    self.queue.append((src, t, out.message))

    def record(self) -> None:
        for name, m in self.members.items():
            if name not in self.down and m.is_head:
                self.leaders.setdefault(m.term, set()).add(name)

    def deliver(self) -> None:
        while self.queue:
            src, dst, msg = self.queue.popleft()
            if self.linked(src, dst):
                self.send(dst, self.members[dst].receive(msg))
            self.record()

    def step(self, dt: int = TICK) -> None:
        self.clock.now += dt
        for name, m in self.members.items():
            if name not in self.down:
                self.send(name, m.tick())
        self.deliver()
        self.record()

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds * SECOND / TICK)):
            self.step()

    def heads(self) -> list[str]:
        return sorted(n for n, m in self.members.items() if n not in self.down and m.is_head)

    def assert_safe(self) -> None:
        for term, who in self.leaders.items():
            assert len(who) <= 1, f"two heads in term {term}: {who}"


def test_initial_election_is_deterministic() -> None:
    net = Net({"bolster-a": 3, "bolster-b": 2, "bolster-c": 1})
    net.run(2.0)
    assert net.heads() == ["bolster-a"]
    assert {m.leader for m in net.members.values()} == {"bolster-a"}
    assert {m.term for m in net.members.values()} == {1}
    net.assert_safe()


def test_failover_within_the_timeout_and_no_two_heads_when_the_old_head_returns() -> None:
    net = Net({"bolster-a": 3, "bolster-b": 2, "bolster-c": 1})
    net.run(2.0)
    net.down.add("bolster-a")
    died = net.clock.now
    while not net.heads():
        net.step()
        assert net.clock.now - died <= 2 * SECOND, "no new head within the timeout"
    elapsed = net.clock.now - died
    assert net.heads() == ["bolster-b"]
    assert elapsed <= net.members["bolster-b"].election_timeout + 2 * TICK
    # the old head comes back believing it still leads term 1: it must not be a second head
    net.down.discard("bolster-a")
    net.run(3.0)
    assert net.heads() == ["bolster-b"]
    assert net.members["bolster-a"].role is ElectionRole.FOLLOWER
    assert net.members["bolster-a"].leader == "bolster-b"
    net.assert_safe()


def test_partitioned_head_steps_down_and_the_majority_elects() -> None:
    net = Net({"a": 5, "b": 4, "c": 3, "d": 2, "e": 1})
    net.run(2.0)
    assert net.heads() == ["a"]
    net.groups = [{"a", "b"}, {"c", "d", "e"}]
    net.run(4.0)
    assert net.heads() == ["c"]  # the minority head's lease lapsed
    assert net.members["a"].role is not ElectionRole.LEADER
    terms_during_split = {m.term for n, m in net.members.items() if n in {"a", "b"}}
    net.groups = None
    net.run(3.0)
    assert net.heads() == ["c"]
    # pre-vote: the minority could not inflate its term while cut off
    assert max(terms_during_split) <= 1
    net.assert_safe()


@settings(max_examples=25, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["kill", "revive", "split", "heal", "wait"]),
            st.integers(0, 4),
            st.integers(1, 25),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_never_two_heads_for_one_term(events: list[tuple[str, int, int]]) -> None:
    names = ["a", "b", "c", "d", "e"]
    net = Net(dict(zip(names, [5, 4, 3, 2, 1], strict=True)))
    for kind, who, ticks in events:
        name = names[who]
        if kind == "kill":
            net.down.add(name)
        elif kind == "revive":
            net.down.discard(name)
        elif kind == "split":
            net.groups = [set(names[: who + 1]), set(names[who + 1 :])]
        elif kind == "heal":
            net.groups = None
        for _ in range(ticks):
            net.step()
        net.assert_safe()
    # liveness: once everyone is up and connected, one head emerges
    net.down.clear()
    net.groups = None
    net.run(6.0)
    assert len(net.heads()) == 1
    net.assert_safe()


def test_election_messages_are_authenticated() -> None:
    net = Net({"a": 2, "b": 1, "c": 0})
    a = net.members["a"]
    hb = Heartbeat("cluster-1", 7, "b", net.clock())
    mallory = Ed25519Signer.generate()
    forged = dataclasses.replace(hb, signature=mallory.sign(hb.signed_bytes()))
    with pytest.raises(RequestAuthenticationError):
        a.receive(forged)
    with pytest.raises(UnknownBolsterError):
        a.receive(dataclasses.replace(hb, leader="mallory"))
    with pytest.raises(RequestAuthenticationError):
        a.receive(dataclasses.replace(hb, cluster_id="cluster-2"))
    assert a.term == 0  # nothing changed


def _head(world: World, **kw: object) -> ClusterHead:
    head = ClusterHead(
        "head-1",
        LedgerKey(Ed25519Signer.from_private_bytes(world.rng(32))),
        anchor=world.ca.anchor,
        users=world.users,
        clock=world.clock,
        rng=world.rng,
        **kw,  # type: ignore[arg-type]
    )
    head.register_bolster(world.bolster.credentials)
    return head


def _witness(head: ClusterHead, bolster) -> None:  # type: ignore[no-untyped-def]
    sub = bolster.answer_checkpoint(head.request_checkpoint(bolster.bolster_id))
    cosig = head.receive_checkpoint(sub)
    verify_cosignature(sub.checkpoint, cosig, head._witness)


def test_cluster_head_cosigns_a_growing_log_and_holds_the_key_lists(world: World) -> None:
    head = _head(world)
    dev = world.device()
    _witness(head, world.bolster)
    for _ in range(5):
        world.store(dev, 70)
    _witness(head, world.bolster)
    assert head.witnessed("bolster-a").checkpoint.tree_size == world.bolster.ledger.size
    assert head.facility_keys() == {"bolster-a": world.bolster.verifier.public_bytes()}
    assert head.user_keys()["dr-alice"][0] == "physician"


def test_cluster_head_detects_a_rewritten_log(world: World) -> None:
    head = _head(world)
    dev = world.device()
    for _ in range(3):
        world.store(dev, 70)
    _witness(head, world.bolster)
    # the same bolster key over a different history of at least the same length
    world.storage = MemoryStorage()
    rewritten = world.bolster = world.open_bolster()
    forged_dev = world.device()
    for _ in range(6):
        world.store(forged_dev, 99)
    sub = rewritten.answer_checkpoint(head.request_checkpoint("bolster-a"))
    with pytest.raises(ForkDetectedError) as info:
        head.receive_checkpoint(sub)
    assert info.value.first.tree_size <= info.value.second.tree_size
    assert "bolster-a" in head.flagged
    with pytest.raises(BolsterFlaggedError):
        head.request_checkpoint("bolster-a")
    with pytest.raises(BolsterFlaggedError):
        head.receive_checkpoint(sub)


def test_cluster_head_detects_a_rollback(world: World) -> None:
    head = _head(world)
    dev = world.device()
    for _ in range(4):
        world.store(dev, 70)
    _witness(head, world.bolster)
    world.storage = MemoryStorage()
    rolled_back = world.open_bolster()
    sub = rolled_back.answer_checkpoint(head.request_checkpoint("bolster-a"))
    with pytest.raises(ForkDetectedError, match="rolled"):
        head.receive_checkpoint(sub)


def test_heads_compare_notes_to_catch_equivocation(world: World) -> None:
    head = _head(world)
    world.store(world.device(), 70)
    _witness(head, world.bolster)
    seen = head.witnessed("bolster-a")
    assert seen is not None
    # the bolster shows another head a different history of the same size
    world.storage = MemoryStorage()
    world.bolster = world.open_bolster()
    world.store(world.device(), 99)
    other = world.bolster.ledger.checkpoint()
    assert other.tree_size == seen.checkpoint.tree_size
    assert other.root_hash != seen.checkpoint.root_hash
    with pytest.raises(ForkDetectedError):
        head.compare("bolster-a", other)
    assert "bolster-a" in head.flagged


def test_only_the_elected_head_witnesses(world: World) -> None:
    net = Net({"a": 1, "b": 0, "c": 2})
    head = _head(world, membership=net.members["a"])
    with pytest.raises(NotLeaderError):
        head.request_checkpoint("bolster-a")
    net.run(2.0)
    assert net.heads() == ["c"]
    with pytest.raises(NotLeaderError):
        head.request_checkpoint("bolster-a")
