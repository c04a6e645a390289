"""Bad input never crashes a node: malformed samples, stray requests, peers that die."""

from __future__ import annotations

import logging
import os
import signal
import struct
import time
from pathlib import Path

import pytest
from cyclonedds.pub import DataWriter

from iomt.runtime import Context, Executor, Node, qos_profile_services_default
from iomt.runtime._dds import write_raw
from iomt.runtime.qos import qos_profile_default
from runtime.helpers import wait_for, write_spec
from runtime.ifaces import Chatter, Echo

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


@pytest.fixture
def local(domain_id: int):  # type: ignore[no-untyped-def]
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    node = Node("victim", context=ctx, namespace="/r")
    ex.add_node(node)
    yield ctx, node, ex
    node.destroy_node()
    ex.close()
    ctx.shutdown()


def _chatter_cdr(text: bytes, seq: int = 7) -> bytes:
    return (
        b"\x00\x01\x00\x00"
        + struct.pack("<q", seq)
        + struct.pack("<I", len(text) + 1)
        + text
        + b"\x00"
    )


# Cyclone DDS itself validates the CDR structure (lengths, bounds, encapsulation) when a
# sample is written and when one arrives, and drops what does not parse; these samples
# are structurally valid CDR that the Python side still cannot accept (not UTF-8), so
# they reach the subscription and must be dropped there.
GARBAGE = [
    _chatter_cdr(b"\xff\xfe"),
    _chatter_cdr(b"abc\xc3"),
    _chatter_cdr(b"\xed\xa0\x80"),  # a UTF-16 surrogate encoded as UTF-8
]


def test_malformed_samples_are_logged_and_dropped(local, caplog) -> None:
    ctx, node, ex = local
    got: list[Chatter] = []
    sub = node.create_subscription(Chatter, "chatter", got.append)
    # An attacker's raw writer on the same topic: plain cyclonedds, arbitrary bytes.
    writer = DataWriter(
        ctx.participant,
        ctx.topic("rt/r/chatter", Chatter, qos_profile_default),
        qos=qos_profile_default.to_dds(),
    )
    caplog.set_level(logging.WARNING, logger="iomt.runtime.subscription")
    for junk in GARBAGE:
        write_raw(writer, junk)
    writer.write(Chatter(seq=42, text="still alive"))
    assert wait_for(lambda: bool(got), 5, lambda: ex.spin_once(0.1))
    assert [m.seq for m in got] == [42]
    assert sub.dropped == len(GARBAGE)
    assert sum("dropped malformed" in r.message for r in caplog.records) == len(GARBAGE)


def test_malformed_and_stray_requests_do_not_stop_a_service(local) -> None:
    ctx, node, ex = local
    srv = node.create_service(Echo, "echo", lambda q, r: Echo.Response(text=q.text.upper()))
    ex.spin_in_thread()
    raw = DataWriter(
        ctx.participant,
        ctx.topic("rq/r/echoRequest", Echo.RequestWire, qos_profile_services_default),
        qos=qos_profile_services_default.to_dds(),
    )
    header = struct.pack("<Qq", 99, 1)
    for junk in GARBAGE:  # rmw header + a body whose string is not UTF-8
        write_raw(raw, junk[:4] + header + junk[12:])
    # A well-formed request from a writer that is no rmw client (no clientid in USER_DATA):
    # answered without waiting for a reply reader that does not exist.
    raw.write(Echo.RequestWire(client_guid=99, seq=2, text="stray"))
    client = node.create_client(Echo, "echo")
    assert client.wait_for_service(5)
    assert client.call(Echo.Request(text="still serving"), timeout_s=5).text == "STILL SERVING"
    assert wait_for(lambda: srv.dropped == len(GARBAGE), 5, lambda: time.sleep(0.05))
    ex.shutdown()


def test_a_peer_killed_mid_stream_does_not_crash_the_subscriber(
    local, procs, tmp_path: Path, domain_id: int
) -> None:
    _ctx, node, ex = local
    got: list[Chatter] = []
    node.create_subscription(Chatter, "/r/chatter", got.append)
    spec = write_spec(
        tmp_path / "t.json",
        [
            {
                "factory": "runtime.nodes:talker",
                "name": "talker",
                "namespace": "/r",
                "params": {"period_s": 0.01},
            }
        ],
    )
    first = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(first, "READY", 20)
    assert wait_for(lambda: len(got) >= 5, 10, lambda: ex.spin_once(0.05))
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the writer just vanishes
    first.wait(5)
    for _ in range(20):
        ex.spin_once(0.05)
    before = len(got)
    second = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(second, "READY", 20)
    assert wait_for(lambda: len(got) >= before + 5, 10, lambda: ex.spin_once(0.05))


def test_a_cleanly_stopped_container_leaves_the_graph_at_once(
    local, procs, tmp_path: Path, domain_id: int
) -> None:
    from iomt.runtime.graph import GraphReader

    ctx, _node, _ex = local
    spec = write_spec(
        tmp_path / "t.json",
        [{"factory": "runtime.nodes:talker", "name": "leaver", "namespace": "/r"}],
    )
    proc = procs.start(
        "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
    )
    procs.wait_for_line(proc, "READY", 20)
    reader = GraphReader(ctx)
    assert (
        "/r/leaver" in reader.wait_until(lambda s: "/r/leaver" in s.node_names(), 10).node_names()
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    # Well before the 10 s lease would expire: the participant said goodbye.
    snap = reader.wait_until(lambda s: "/r/leaver" not in s.node_names(), 3)
    assert "/r/leaver" not in snap.node_names()
    reader.close()


def test_an_entity_that_fails_does_not_stop_the_executor(local, caplog) -> None:
    _ctx, node, ex = local
    got: list[Chatter] = []
    failing = node.create_subscription(Chatter, "boom", got.append)
    healthy = node.create_subscription(Chatter, "chatter", got.append)
    calls = {"n": 0}

    def broken_execute() -> None:  # e.g. a DDS error while taking
        calls["n"] += 1
        raise RuntimeError("take failed")

    failing.execute = broken_execute  # type: ignore[method-assign]
    pub_boom = node.create_publisher(Chatter, "boom")
    pub_ok = node.create_publisher(Chatter, "chatter")
    caplog.set_level(logging.ERROR, logger="iomt.runtime.executor")
    assert wait_for(
        lambda: pub_ok.get_subscription_count() > 0 and pub_boom.get_subscription_count() > 0,
        5,
        lambda: ex.spin_once(0.05),
    )
    pub_boom.publish(Chatter(seq=1, text="x"))
    pub_ok.publish(Chatter(seq=2, text="y"))
    assert wait_for(lambda: bool(got) and calls["n"] > 0, 5, lambda: ex.spin_once(0.1))
    assert [m.seq for m in got] == [2]
    assert healthy.dropped == 0
    assert any("failed" in r.message for r in caplog.records)


def test_matched_lists_survive_a_match_racing_the_listing() -> None:
    from iomt.runtime._dds import _matched

    attempts = {"n": 0}

    def racy() -> list[int]:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise IndexError("invalid index")  # cyclonedds-python's race
        return [11, 12]

    assert _matched(racy) == [11, 12]

    def always_racing() -> list[int]:
        raise IndexError("invalid index")

    assert _matched(always_racing) == []
