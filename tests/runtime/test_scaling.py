"""Costs that must not grow with the size of the graph (issue 10): a server meeting a client,
a client polling discovery, the graph announcement, idle timers."""

from __future__ import annotations

import os
import random
import time

import pytest

from iomt.msg import Gid, NodeEntitiesInfo, ParticipantEntitiesInfo, encode
from iomt.runtime import Context, Executor, Node, _dds, client, service
from iomt.runtime.context import _NodeEntities, encode_participant_info
from runtime.helpers import wait_for
from runtime.ifaces import AddTwoInts


@pytest.fixture
def local(domain_id: int):  # type: ignore[no-untyped-def]
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    node = Node("scaling", context=ctx, namespace="/s")
    ex.add_node(node)
    yield node, ex
    node.destroy_node()
    ex.close()
    ctx.shutdown()


def _count(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls = [0]
    real = getattr(module, name)

    def counted(*args: object) -> object:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_server_reads_each_matched_reader_once(local, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node, ex = local
    srv = node.create_service(
        AddTwoInts, "add", lambda req, resp: AddTwoInts.Response(total=req.a + req.b)
    )
    reads = _count(monkeypatch, service, "matched_subscription_user_data")
    clients = [node.create_client(AddTwoInts, "add") for _ in range(12)]
    ex.spin_in_thread()
    for c in clients:
        assert c.wait_for_service(10)
    for i, c in enumerate(clients):
        assert c.call(AddTwoInts.Request(a=i, b=1), 5).total == i + 1
    # every reply reader's USER_DATA read at most once (a server meeting its n-th client
    # does not read the other n-1 again), however many clients and calls
    first = reads[0]
    assert first <= len(clients)
    for i, c in enumerate(clients):
        assert c.call(AddTwoInts.Request(a=i, b=2), 5).total == i + 2
    assert reads[0] == first
    assert srv is not None


@pytest.mark.dds
@pytest.mark.timeout(60)
def test_a_client_polling_discovery_reads_each_endpoint_once(
    local, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    node, _ex = local
    node.create_service(AddTwoInts, "add", lambda req, resp: resp)
    others = [node.create_client(AddTwoInts, "add") for _ in range(5)]
    c = node.create_client(AddTwoInts, "add")
    assert wait_for(c.service_is_ready, 10, lambda: time.sleep(0.01))
    subs = _count(monkeypatch, client, "matched_subscription_user_data")
    pubs = _count(monkeypatch, client, "matched_publication_user_data")
    for _ in range(50):
        assert c.service_is_ready()
    assert subs[0] == 0 and pubs[0] == 0
    assert others


def test_the_graph_announcement_is_the_generated_encoding() -> None:
    rng = random.Random(7)
    for _ in range(200):
        nodes = []
        for _ in range(rng.randrange(0, 6)):
            n = _NodeEntities("/" + "x" * rng.randrange(0, 7), "n" * rng.randrange(1, 9))
            for _ in range(rng.randrange(0, 5)):
                g = os.urandom(16)
                n.readers[g] = Gid(data=g)
            for _ in range(rng.randrange(0, 5)):
                g = os.urandom(16)
                n.writers[g] = Gid(data=g)
            nodes.append(n)
        gid = os.urandom(16)
        expected = encode(
            ParticipantEntitiesInfo(
                gid=Gid(data=gid),
                node_entities_info_seq=[
                    NodeEntitiesInfo(
                        n.namespace, n.name, list(n.readers.values()), list(n.writers.values())
                    )
                    for n in nodes
                ],
            )
        )
        assert encode_participant_info(gid, nodes) == expected
        # and again from the cached parts, after one node changed
        if nodes:
            g = os.urandom(16)
            nodes[0].writers[g] = Gid(data=g)
            nodes[0].cdr = None
            expected = encode(
                ParticipantEntitiesInfo(
                    gid=Gid(data=gid),
                    node_entities_info_seq=[
                        NodeEntitiesInfo(
                            n.namespace, n.name, list(n.readers.values()), list(n.writers.values())
                        )
                        for n in nodes
                    ],
                )
            )
            assert encode_participant_info(gid, nodes) == expected


@pytest.mark.dds
@pytest.mark.timeout(30)
def test_a_cancelled_timer_runs_again_after_reset(local) -> None:  # type: ignore[no-untyped-def]
    node, ex = local
    ticks: list[float] = []
    timer = node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    timer.cancel()
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        ex.spin_once(0.05)
    assert ticks == []
    timer.reset()
    assert wait_for(lambda: len(ticks) >= 3, 5, lambda: ex.spin_once(0.05))
    timer.cancel()
    n = len(ticks)
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        ex.spin_once(0.05)
    assert len(ticks) == n
    # reset while still scheduled moves it later: it does not fire at the old time
    timer.reset()
    t0 = time.monotonic()
    assert wait_for(lambda: len(ticks) > n, 5, lambda: ex.spin_once(0.05))
    assert ticks[n] - t0 >= 0.019


def test_matched_user_data_helpers_survive_unknown_handles(domain_id: int) -> None:
    ctx = Context(domain_id=domain_id)
    try:
        node = Node("h", context=ctx)
        srv = node.create_service(AddTwoInts, "x", lambda req, resp: resp)
        assert _dds.matched_subscription_user_data(srv._writer, 12345) is None  # type: ignore[attr-defined]
        assert _dds.matched_publication_user_data(srv._reader, 12345) is None  # type: ignore[attr-defined]
        node.destroy_node()
    finally:
        ctx.shutdown()
