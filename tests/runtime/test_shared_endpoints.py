"""Endpoints a process's nodes share (``shared=True``): one DDS client per service, one DDS
reader per topic; calls stay the caller's, every handle gets every sample, a handle that
joins a transient-local topic late gets what a reader of its own would have got."""

from __future__ import annotations

import time
from typing import Any

import pytest

from iomt.errors import ConfigurationError, ServiceTimeoutError
from iomt.runtime import Context, DurabilityPolicy, Executor, HistoryPolicy, Node, QoSProfile
from runtime.helpers import wait_for
from runtime.ifaces import AddTwoInts, Chatter

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
HEAR = QoSProfile(history=HistoryPolicy.KEEP_ALL, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture
def bus(domain_id: int):  # type: ignore[no-untyped-def]
    """One process's context: a server node and the callers made by each test."""
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    server = Node("server", context=ctx, namespace="/t")
    ex.add_node(server)
    ex.spin_in_thread()
    yield server, ctx, ex
    ex.shutdown()
    for node in ex.nodes:
        node.destroy_node()  # type: ignore[attr-defined]
    ex.close()
    ctx.shutdown()


def _node(ctx: Context, ex: Executor, name: str) -> Node:
    node = Node(name, context=ctx, namespace="/t")
    ex.add_node(node)
    return node


def _graph(ctx: Context, node: Node) -> tuple[set[bytes], set[bytes]]:
    entry = ctx._nodes[node._key]
    return set(entry.readers), set(entry.writers)


def _adder(server: Node, name: str = "/t/add") -> None:
    def add(req: Any, resp: Any) -> Any:
        resp.total = req.a + req.b
        return resp

    server.create_service(AddTwoInts, name, add)


def _two_callers(server: Node, ctx: Context, ex: Executor) -> tuple[Node, Node, Any, Any]:
    """An adding server, and two nodes of the callers' process, each with a shared client."""
    _adder(server)
    a, b = _node(ctx, ex, "a"), _node(ctx, ex, "b")
    ca = a.create_client(AddTwoInts, "/t/add", shared=True)
    cb = b.create_client(AddTwoInts, "/t/add", shared=True)
    return a, b, ca, cb


def test_nodes_share_one_client_and_each_gets_its_own_answers(bus) -> None:
    a, b, ca, cb = _two_callers(*bus)
    ctx = bus[1]
    assert ca is not cb and ca.base is cb.base  # type: ignore[attr-defined]
    assert ctx.shared_endpoints() == 1
    # the graph lists the one client under both nodes (ros2 node info shows it for each)
    assert _graph(ctx, a) == _graph(ctx, b) != (set(), set())
    assert wait_for(ca.service_is_ready, 10, lambda: time.sleep(0.01))
    futures = [
        (i, (ca if i % 2 else cb).call_async(AddTwoInts.Request(a=i, b=1))) for i in range(40)
    ]
    assert [f.result(5).total for _, f in futures] == [i + 1 for i, _ in futures]
    assert cb.call(AddTwoInts.Request(a=2, b=2), timeout_s=5).total == 4


def test_a_refused_reply_counts_against_the_handle_that_called(bus) -> None:
    _, _, ca, cb = _two_callers(*bus)
    assert wait_for(ca.service_is_ready, 10, lambda: time.sleep(0.01))
    with pytest.raises(ServiceTimeoutError):
        ca.call(AddTwoInts.Request(a=1, b=1), timeout_s=1.0, accept=lambda _r: False)
    assert (ca.rejected, cb.rejected) == (1, 0)
    assert cb.call(AddTwoInts.Request(a=1, b=1), timeout_s=5, accept=lambda r: r.total == 2)


def test_a_node_that_goes_leaves_the_client_to_the_others_and_the_last_takes_it(bus) -> None:
    a, b, ca, cb = _two_callers(*bus)
    ctx = bus[1]
    assert wait_for(ca.service_is_ready, 10, lambda: time.sleep(0.01))
    pending = ca.call_async(AddTwoInts.Request(a=1, b=1))
    a.destroy_node()
    assert pending.cancelled() or pending.done()
    # b's calls go on through the same endpoint, still attached to the executor
    assert ctx.shared_endpoints() == 1
    assert cb.call(AddTwoInts.Request(a=5, b=5), timeout_s=5).total == 10
    cb.destroy()
    assert ctx.shared_endpoints() == 0
    assert _graph(ctx, b) == (set(), set())


def test_every_handle_of_a_shared_subscription_gets_every_sample(bus) -> None:
    server, ctx, ex = bus
    pub = server.create_publisher(Chatter, "/t/chatter", 50)
    got: dict[str, list[int]] = {"a": [], "b": []}
    for name in got:
        node = _node(ctx, ex, name)
        node.create_subscription(
            Chatter, "/t/chatter", lambda m, n=name: got[n].append(m.seq), 50, shared=True
        )
    assert ctx.shared_endpoints() == 1
    assert wait_for(lambda: pub.get_subscription_count() == 1, 10, lambda: time.sleep(0.01))
    for i in range(20):
        pub.publish(Chatter(seq=i))
    assert wait_for(lambda: len(got["b"]) == 20, 10, lambda: time.sleep(0.01))
    assert got["a"] == got["b"] == list(range(20))


def test_a_late_handle_gets_the_latched_samples_a_reader_of_its_own_would_get(bus) -> None:
    server, ctx, ex = bus
    writers = [server.create_publisher(Chatter, "/t/cell0", LATCHED) for _ in range(3)]
    first: list[int] = []
    node_a = _node(ctx, ex, "a")
    node_a.create_subscription(
        Chatter, "/t/cell0", lambda m: first.append(m.seq), HEAR, shared=True
    )
    assert wait_for(
        lambda: all(w.get_subscription_count() == 1 for w in writers), 10, lambda: time.sleep(0.01)
    )
    for i, w in enumerate(writers):
        w.publish(Chatter(seq=10 * i))
        w.publish(Chatter(seq=10 * i + 1))  # each writer keeps only its latest
    assert wait_for(lambda: len(first) == 6, 10, lambda: time.sleep(0.01))
    # a writer leaves: a reader made now would not hear it, nor does a late handle
    writers[2].destroy()
    server.publishers.remove(writers[2])
    time.sleep(0.5)
    late: list[int] = []
    node_b = _node(ctx, ex, "b")
    node_b.create_subscription(Chatter, "/t/cell0", lambda m: late.append(m.seq), HEAR, shared=True)
    assert wait_for(lambda: len(late) >= 2, 10, lambda: time.sleep(0.01))
    writers[0].publish(Chatter(seq=99))
    assert wait_for(lambda: 99 in late, 10, lambda: time.sleep(0.01))
    assert sorted(late[:2]) == [1, 11] and late[2:] == [99]  # kept ones first, then news
    assert sorted(first) == [0, 1, 10, 11, 20, 21, 99]  # the first got nothing twice


def test_a_shared_reader_keeps_samples_of_live_writers_only_as_peers_come_and_go(bus) -> None:
    """Peers that restart for ever must not grow the table of kept samples: it is pruned
    against the matched writers whenever it has doubled, and a late handle still gets the
    live writers' latest."""
    server, ctx, ex = bus
    node_a = _node(ctx, ex, "a")
    got: list[int] = []
    sub = node_a.create_subscription(
        Chatter, "/t/cell1", lambda m: got.append(m.seq), HEAR, shared=True
    )
    staying = server.create_publisher(Chatter, "/t/cell1", LATCHED)
    assert wait_for(lambda: staying.get_subscription_count() == 1, 10, lambda: time.sleep(0.01))
    staying.publish(Chatter(seq=-1))
    for i in range(60):  # a peer restarting 60 times: a new writer each time
        w = server.create_publisher(Chatter, "/t/cell1", LATCHED)
        assert wait_for(lambda w=w: w.get_subscription_count() == 1, 10, lambda: time.sleep(0.005))
        w.publish(Chatter(seq=i))
        assert wait_for(lambda i=i: i in got, 10, lambda: time.sleep(0.005))
        w.destroy()
        server.publishers.remove(w)
    assert len(sub.base._latest) <= 2 * 16  # the floor, doubled: never one per departed writer
    late: list[int] = []
    node_b = _node(ctx, ex, "b")
    node_b.create_subscription(Chatter, "/t/cell1", lambda m: late.append(m.seq), HEAR, shared=True)
    assert wait_for(lambda: -1 in late, 10, lambda: time.sleep(0.01))
    assert late == [-1]  # the live writer's latest; none of the 60 that left


def test_a_volatile_shared_topic_replays_nothing(bus) -> None:
    server, ctx, ex = bus
    pub = server.create_publisher(Chatter, "/t/news", 10)
    a: list[int] = []
    _node(ctx, ex, "a").create_subscription(
        Chatter, "/t/news", lambda m: a.append(m.seq), 10, shared=True
    )
    assert wait_for(lambda: pub.get_subscription_count() == 1, 10, lambda: time.sleep(0.01))
    pub.publish(Chatter(seq=1))
    assert wait_for(lambda: a == [1], 10, lambda: time.sleep(0.01))
    b: list[int] = []
    _node(ctx, ex, "b").create_subscription(
        Chatter, "/t/news", lambda m: b.append(m.seq), 10, shared=True
    )
    pub.publish(Chatter(seq=2))
    assert wait_for(lambda: b == [2], 10, lambda: time.sleep(0.01))
    time.sleep(0.2)
    assert a == [1, 2] and b == [2]


def test_unshared_endpoints_stay_one_per_node(bus) -> None:
    server, ctx, ex = bus
    _adder(server)
    a, b = _node(ctx, ex, "a"), _node(ctx, ex, "b")
    ca = a.create_client(AddTwoInts, "/t/add")
    cb = b.create_client(AddTwoInts, "/t/add")
    assert ctx.shared_endpoints() == 0
    assert _graph(ctx, a)[0].isdisjoint(_graph(ctx, b)[0])
    assert wait_for(cb.service_is_ready, 10, lambda: time.sleep(0.01))
    assert ca.call(AddTwoInts.Request(a=1, b=2), timeout_s=5).total == 3


def test_nodes_share_one_writer_of_a_volatile_topic_and_not_of_a_latched_one(bus) -> None:
    server, ctx, ex = bus
    got: list[int] = []
    server.create_subscription(Chatter, "/t/inbox", lambda m: got.append(m.seq), 50)
    a, b = _node(ctx, ex, "a"), _node(ctx, ex, "b")
    pa = a.create_publisher(Chatter, "/t/inbox", 50, shared=True)
    pb = b.create_publisher(Chatter, "/t/inbox", 50, shared=True)
    assert pa.base is pb.base and ctx.shared_endpoints() == 1  # type: ignore[attr-defined]
    assert _graph(ctx, a)[1] == _graph(ctx, b)[1] != set()
    assert wait_for(lambda: pa.get_subscription_count() == 1, 10, lambda: time.sleep(0.01))
    pa.publish(Chatter(seq=1))
    pb.publish(Chatter(seq=2))
    assert wait_for(lambda: sorted(got) == [1, 2], 10, lambda: time.sleep(0.01))
    with pytest.raises(ConfigurationError, match="transient-local"):
        a.create_publisher(Chatter, "/t/cell", LATCHED, shared=True)
    a.destroy_node()
    pb.publish(Chatter(seq=3))  # b's handle keeps the writer
    assert wait_for(lambda: 3 in got, 10, lambda: time.sleep(0.01))
    pb.destroy()
    assert ctx.shared_endpoints() == 0
