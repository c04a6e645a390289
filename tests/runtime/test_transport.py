"""Publish/subscribe and services between real processes on a private DDS domain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iomt.errors import ServiceTimeoutError
from iomt.runtime import Context, Executor, Node
from runtime.helpers import wait_for, write_spec
from runtime.ifaces import AddTwoInts, Chatter

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


@pytest.fixture
def local(domain_id: int):  # type: ignore[no-untyped-def]
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    node = Node("tester", context=ctx, namespace="/t")
    ex.add_node(node)
    yield node, ex
    node.destroy_node()
    ex.close()
    ctx.shutdown()


def test_subscription_receives_from_another_process(
    local, procs, tmp_path: Path, domain_id: int
) -> None:
    node, ex = local
    got: list[Chatter] = []
    node.create_subscription(Chatter, "/t/chatter", got.append)
    spec = write_spec(
        tmp_path / "talker.json",
        [
            {
                "factory": "runtime.nodes:talker",
                "name": "talker",
                "namespace": "/t",
                "params": {"period_s": 0.02},
            }
        ],
    )
    proc = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(proc, "READY", 20)
    assert wait_for(lambda: len(got) >= 10, 15, lambda: ex.spin_once(0.1))
    seqs = [m.seq for m in got]
    assert seqs == sorted(seqs)  # reliable, in order
    assert got[-1].text == f"hello {got[-1].seq}"


def test_service_round_trip_across_processes(local, procs, tmp_path: Path, domain_id: int) -> None:
    node, ex = local
    ex.spin_in_thread()  # call_async futures complete on the executor
    spec = write_spec(
        tmp_path / "adder.json",
        [{"factory": "runtime.nodes:adder", "name": "adder", "namespace": "/t"}],
    )
    proc = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(proc, "READY", 20)
    client = node.create_client(AddTwoInts, "add_two_ints")
    assert client.wait_for_service(15)
    for a, b in [(1, 2), (-5, 5), (2**40, 7)]:
        assert client.call(AddTwoInts.Request(a=a, b=b), timeout_s=5).total == a + b
    futures = [client.call_async(AddTwoInts.Request(a=i, b=i)) for i in range(20)]
    assert [f.result(5).total for f in futures] == [2 * i for i in range(20)]


def test_two_clients_get_only_their_own_replies(
    local, procs, tmp_path: Path, domain_id: int
) -> None:
    node, ex = local
    ex.spin_in_thread()
    spec = write_spec(
        tmp_path / "adder.json",
        [{"factory": "runtime.nodes:adder", "name": "adder", "namespace": "/t"}],
    )
    procs.wait_for_line(
        procs.start(
            "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
        ),
        "READY",
        20,
    )
    c1 = node.create_client(AddTwoInts, "add_two_ints")
    c2 = node.create_client(AddTwoInts, "add_two_ints")
    assert c1.wait_for_service(15) and c2.wait_for_service(15)
    f1 = [c1.call_async(AddTwoInts.Request(a=i, b=0)) for i in range(10)]
    f2 = [c2.call_async(AddTwoInts.Request(a=0, b=100 + i)) for i in range(10)]
    assert [f.result(5).total for f in f1] == list(range(10))
    assert [f.result(5).total for f in f2] == [100 + i for i in range(10)]


def test_call_without_server_times_out_with_a_clear_error(local) -> None:
    node, _ex = local
    client = node.create_client(AddTwoInts, "nobody_serves_this")
    assert client.wait_for_service(0.3) is False
    t0 = time.monotonic()
    with pytest.raises(ServiceTimeoutError, match=r"nobody_serves_this.*0\.5 s"):
        client.call(AddTwoInts.Request(a=1, b=2), timeout_s=0.5)
    # it waited for the timeout it was given (an upper bound is the test's own timeout)
    assert time.monotonic() - t0 >= 0.5


def test_server_that_never_answers_times_out(local, domain_id: int) -> None:
    node, ex = local
    held = []
    node.create_service(
        AddTwoInts, "silent", lambda req, responder: held.append(responder), deferred=True
    )
    ex.spin_in_thread()
    client = node.create_client(AddTwoInts, "silent")
    assert client.wait_for_service(5)
    with pytest.raises(ServiceTimeoutError):
        client.call(AddTwoInts.Request(a=1, b=2), timeout_s=0.5)
    assert len(held) == 1
    # a deferred answer that arrives in time is delivered
    future = client.call_async(AddTwoInts.Request(a=20, b=22))
    assert wait_for(lambda: len(held) == 2, 5, lambda: time.sleep(0.01))
    held[1].send(AddTwoInts.Response(total=42))
    assert future.result(5).total == 42
    ex.shutdown()


def test_sync_call_inside_a_callback_does_not_deadlock(local, domain_id: int) -> None:
    node, ex = local
    node.create_service(
        AddTwoInts, "inner", lambda req, resp: AddTwoInts.Response(total=req.a * req.b)
    )
    inner = node.create_client(AddTwoInts, "inner")
    results: list[int] = []

    def outer(req, resp):  # type: ignore[no-untyped-def]
        # a synchronous call made on the executor thread itself
        results.append(inner.call(AddTwoInts.Request(a=req.a, b=req.b), timeout_s=2).total)
        return AddTwoInts.Response(total=results[-1] + 1)

    node.create_service(AddTwoInts, "outer", outer)
    ex.spin_in_thread()
    client = node.create_client(AddTwoInts, "outer")
    assert client.wait_for_service(5)
    # The inner service is served by the same executor that is blocked in `outer`:
    # the inner call must time out cleanly, not hang, and the outer call must not crash.
    with pytest.raises(ServiceTimeoutError):
        client.call(AddTwoInts.Request(a=3, b=4), timeout_s=1.0)
    ex.shutdown()
