"""The ``lan`` configuration meets a stock ROS 2 node with ROS 2's default discovery.

Two hosts of the test's own (network namespaces on a bridge): iomt on the embedded runtime
with ``--dds-config lan`` on one, plain rclpy on Fast DDS with ROS_AUTOMATIC_DISCOVERY_RANGE
=SUBNET (ROS 2's default: multicast discovery) on the other. Each side sees the other's
nodes, and a reading published by iomt arrives at the ROS 2 node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domains import fresh_domain
from netns import lan

pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(300)]

PEER = Path(__file__).with_name("peer.py")
IOMT_TALKER = """
import sys, time
from iomt.msg import Vitals
from iomt.runtime import Context, Node
ctx = Context(domain_id=int(sys.argv[1]), dds_config_name="lan")
node = Node("bedside_monitor", context=ctx, namespace="/ward9")
pub = node.create_publisher(Vitals, "vitals", 10)
print("UP", flush=True)
for i in range(600):
    pub.publish(Vitals(device_uri="iomt://ward9/hr_0", heart_rate_bpm=60.0 + i % 40, seq=i))
    time.sleep(0.05)
"""


def test_lan_config_meets_a_stock_ros2_node_on_another_host(
    ros2: Any, procs: Any, tmp_path: Path
) -> None:
    domain = fresh_domain()
    with lan(2) as net:
        talker = procs.start_with(
            *net.exec_prefix(0), sys.executable, "-c", IOMT_TALKER, str(domain), env=procs.env()
        )
        procs.wait_for_line(talker, "UP", 60)
        env = {**ros2.with_domain(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
        spec = tmp_path / "echo.json"
        vitals = {"topic": "/ward9/vitals", "type": "iomt_interfaces/msg/Vitals", "count": 5}
        spec.write_text(json.dumps([vitals]))
        echo_args = ["echo", "--spec", str(spec), "--timeout", "60", "--name", "ros_on_host_b"]
        echo = subprocess.run(
            [*net.exec_prefix(1), ros2.python, str(PEER), *echo_args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        docs = [json.loads(line) for line in echo.stdout.splitlines() if line.startswith("{")]
        received = docs[-1]["received"]["/ward9/vitals"]
        assert len(received) >= 5, echo.stderr[-2000:]
        assert all(m["device_uri"] == "iomt://ward9/hr_0" for m in received)
        # and iomt's graph, with the same configuration, lists a ROS 2 node on the other host
        server = procs.start_with(
            *net.exec_prefix(1),
            ros2.python,
            str(PEER),
            "serve",
            "--name",
            "robot_on_host_b",
            "--service",
            "/robot/echo",
            "--type",
            "iomt_interfaces/srv/DataShare",
            "--timeout",
            "120",
            env=env,
        )
        procs.wait_for_line(server, '{"serving"', 60)
        graph_args = ["graph", "--json", "--domain", str(domain), "--dds-config", "lan"]
        graph_args += ["--expect-nodes", "2", "--wait", "30"]
        graph = subprocess.run(
            [*net.exec_prefix(0), sys.executable, "-m", "iomt", *graph_args],
            env=procs.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert graph.returncode == 0, graph.stderr
        names = {n["name"] for n in json.loads(graph.stdout)["nodes"]}
        assert {"/robot_on_host_b", "/ward9/bedside_monitor"} <= names
        procs.stop_all()
