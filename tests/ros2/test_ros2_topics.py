"""Every iomt message type crosses to a stock ROS 2 node and back, values equal.

iomt's side is the embedded runtime (Cyclone DDS); the peer is plain rclpy on Fast DDS with
the iomt_interfaces package built by colcon. Values are drawn per field type from the
interface files (strings with non-ASCII text, extreme integers, byte arrays, nested and
sequence fields) and compared field by field, floats bitwise.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import iomt.msg
from iomt.runtime import Context, Executor, Node
from msg.msg_values import ARRAY, BASE, INT_RANGES, NAME, OCTETS, canonical, fields_of, to_cdds

pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(300)]

NAMES = sorted(
    info.name for info in iomt.msg.all_interfaces() if info.name.startswith("iomt_interfaces/msg/")
)
SAMPLES = 3
_TEXT = "abcxyz019 -_:/é€ü"


def test_all_thirteen_message_types_are_covered() -> None:
    assert len(NAMES) == 13


def _value(desc: Any, rng: random.Random) -> Any:
    kind, arg = desc
    if kind == BASE:
        base, bound = arg
        if base == "bool":
            return rng.random() < 0.5
        if base == "float32":
            return rng.randint(-4000, 4000) / 4  # exact in float32 and in JSON
        if base == "float64":
            return rng.uniform(-1e6, 1e6)
        if base == "string":
            text = "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, 24)))
            return text.encode()[:bound].decode(errors="ignore") if bound else text
        lo, hi = INT_RANGES[base]
        return rng.choice([lo, hi, rng.randint(lo, hi)])
    if kind == NAME:
        return sample(arg, rng)
    inner, size = arg
    octets = inner[0] == BASE and inner[1][0] in OCTETS
    count = size if kind == ARRAY else rng.randint(0, 40 if octets else 3)
    if octets:
        return bytes(rng.randrange(256) for _ in range(count))
    return [_value(inner, rng) for _ in range(count)]


def sample(name: str, rng: random.Random) -> dict[str, Any]:
    return {field: _value(desc, rng) for field, desc in fields_of(name)}


def as_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def topic_of(name: str) -> str:
    return "/interop/" + name.rsplit("/", 1)[1].lower()


@pytest.fixture(scope="module")
def values() -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(20261205)
    return {name: [sample(name, rng) for _ in range(SAMPLES)] for name in NAMES}


def test_iomt_publishes_every_type_and_ros2_receives_equal_values(
    ros2: Any, procs: Any, ros_domain: int, tmp_path: Path, values: dict[str, Any]
) -> None:
    spec = tmp_path / "echo.json"
    spec.write_text(
        json.dumps([{"topic": topic_of(n), "type": n, "count": SAMPLES} for n in NAMES])
    )
    peer = ros2.start(procs, ros_domain, "echo", "--spec", str(spec), "--timeout", "90")
    procs.wait_for_line(peer, '{"subscribed"', 60)
    with Context(domain_id=ros_domain) as ctx:
        node = Node("iomt_talker", context=ctx, namespace="/interop")
        pubs = {n: node.create_publisher(iomt.msg.get_message_type(n), topic_of(n)) for n in NAMES}
        deadline = time.monotonic() + 60
        while any(p.get_subscription_count() == 0 for p in pubs.values()):
            assert time.monotonic() < deadline, "the ROS 2 peer never matched every topic"
            time.sleep(0.05)
        for name in NAMES:
            for value in values[name]:
                pubs[name].publish(to_cdds(name, value))
        received = json.loads(procs.wait_for_line(peer, '{"received"', 90))["received"]
        node.destroy_node()
    for name in NAMES:
        got = received[topic_of(name)]
        assert [canonical(name, m) for m in got] == [canonical(name, v) for v in values[name]], name


def test_ros2_publishes_every_type_and_iomt_receives_equal_values(
    ros2: Any, procs: Any, ros_domain: int, tmp_path: Path, values: dict[str, Any]
) -> None:
    received: dict[str, list[Any]] = {n: [] for n in NAMES}
    with Context(domain_id=ros_domain) as ctx:
        node = Node("iomt_listener", context=ctx, namespace="/interop")
        subs = [
            node.create_subscription(
                iomt.msg.get_message_type(name),
                topic_of(name),
                lambda msg, n=name: received[n].append(msg),
                100,
            )
            for name in NAMES
        ]
        executor = Executor(ctx)
        executor.add_node(node)
        executor.spin_in_thread()
        spec = tmp_path / "publish.json"
        spec.write_text(
            json.dumps(
                [
                    {"topic": topic_of(n), "type": n, "values": [as_json(v) for v in values[n]]}
                    for n in NAMES
                ]
            )
        )
        try:
            peer = ros2.start(
                procs,
                ros_domain,
                "publish",
                "--spec",
                str(spec),
                "--timeout",
                "60",
                "--go-on-stdin",
                stdin=subprocess.PIPE,
            )
            procs.wait_for_line(peer, '{"matched"', 60)
            deadline = time.monotonic() + 60
            while any(s.get_publisher_count() == 0 for s in subs):
                assert time.monotonic() < deadline, "iomt never discovered every ROS 2 writer"
                time.sleep(0.05)
            peer.stdin.write("go\n")
            peer.stdin.flush()
            done = json.loads(procs.wait_for_line(peer, '{"published"', 60))
            deadline = time.monotonic() + 30
            while any(len(received[n]) < SAMPLES for n in NAMES):
                assert time.monotonic() < deadline, {n: len(v) for n, v in received.items()}
                time.sleep(0.05)
        finally:
            executor.shutdown()
            node.destroy_node()
            executor.close()
    assert done["acked"] is True
    for name in NAMES:
        assert [canonical(name, m) for m in received[name]] == [
            canonical(name, v) for v in values[name]
        ], name
