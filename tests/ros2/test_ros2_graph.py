"""A stock ROS 2 node sees iomt's graph, and iomt's graph reader sees ROS 2 nodes.

The ward runs on iomt's embedded runtime with its default DDS configuration; the peers are
plain rclpy on Fast DDS (ROS 2's default middleware) with ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST, nothing else configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import iomt.msg
from domains import fresh_domain
from iomt.topology import LaunchPlan
from ros2.wards import fqn, nodes_of, ward

pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(600)]

BARE = "_CREATED_BY_BARE_DDS_APP_"


@pytest.fixture(scope="module")
def embedded_ward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LaunchPlan, int]]:
    domain_id = fresh_domain()
    with ward(tmp_path_factory.mktemp("ward"), domain_id) as (plan, _service):
        yield plan, domain_id


def _recorder_expect(plan: LaunchPlan) -> list[list[str]]:
    (recorder,) = [n for n in nodes_of(plan) if n.name == "recorder"]
    return [list(e) for e in recorder.params["expect"]]


def _graph(peer: Any, plan: LaunchPlan, domain_id: int) -> dict[str, Any]:
    (doc,) = peer.run(
        domain_id,
        "graph",
        "--expect-nodes",
        str(plan.node_count),
        "--settle",
        "3",
        timeout_s=90,
    )
    return doc  # type: ignore[no-any-return]


def test_a_stock_ros2_node_sees_every_iomt_node_topic_and_service(
    ros2: Any, embedded_ward: tuple[LaunchPlan, int]
) -> None:
    plan, domain_id = embedded_ward
    graph = _graph(ros2, plan, domain_id)
    assert {fqn(n) for n in nodes_of(plan)} <= set(graph["nodes"])
    expected = _recorder_expect(plan)
    for name, ros_type in expected:
        table = graph["services"] if "/srv/" in ros_type else graph["topics"]
        assert table.get(name) == [ros_type], f"{name}: {table.get(name)} != [{ros_type}]"
    # `ros2 node info`: a device's own endpoints, attributed to it through ros_discovery_info
    hr0 = graph["by_node"]["/ward1/hr_0"]
    assert "/ward1/hr_0/data_share" in hr0["services"]
    assert any(t.startswith("/iomt/registration/") for t in hr0["publishers"])
    # A process's nodes share one DDS reader per radio cell and one DDS client per peer
    # service (iomt.runtime.shared); `ros2 node info` still shows it under each of them.
    for node in nodes_of(plan):
        info = graph["by_node"][fqn(node)]
        if node.factory.endswith("device_node"):
            assert any(t.startswith("/iomt/registration/") for t in info["subscriptions"]), node
        if node.factory.endswith("provider_node"):
            asked = [s for s in info["clients"] if s.endswith("/data_share")]
            assert len(asked) >= 2, (fqn(node), info["clients"])


def test_per_topic_endpoint_info_carries_iomt_type_hashes(
    ros2: Any, embedded_ward: tuple[LaunchPlan, int]
) -> None:
    plan, domain_id = embedded_ward
    graph = _graph(ros2, plan, domain_id)
    iomt_endpoints = [e for e in graph["endpoints"] if e["type"].startswith("iomt_interfaces/")]
    assert len({e["topic"] for e in iomt_endpoints}) >= 5
    for e in iomt_endpoints:
        assert e["type_hash"] == iomt.msg.message_info(e["type"]).type_hash, e


def test_a_jazzy_peer_names_the_iomt_node_of_every_endpoint(
    jazzy: Any, embedded_ward: tuple[LaunchPlan, int]
) -> None:
    plan, domain_id = embedded_ward
    graph = _graph(jazzy, plan, domain_id)
    names = {fqn(n) for n in nodes_of(plan)}
    iomt_endpoints = [e for e in graph["endpoints"] if e["type"].startswith("iomt_interfaces/")]
    assert iomt_endpoints
    for e in iomt_endpoints:
        assert f"{e['namespace'].rstrip('/')}/{e['node']}" in names, e
        assert e["type_hash"] == iomt.msg.message_info(e["type"]).type_hash, e


def test_kilted_endpoint_info_cannot_name_cyclone_endpoints_upstream_limit(
    ros2: Any, embedded_ward: tuple[LaunchPlan, int]
) -> None:
    """Pinned to Fast DDS 3.2 (ROS 2 Kilted): it fills an endpoint's participant GUID only
    from PID_PARTICIPANT_GUID, which Cyclone DDS leaves out of endpoint discovery (the GUID
    prefix already says it), so rmw_fastrtps files every Cyclone endpoint under
    _CREATED_BY_BARE_DDS_APP_ (rmw_cyclonedds' own nodes included). Node names still come
    through `ros2 node info` (the test above) and Jazzy's Fast DDS 2.14 derives the GUID.
    When this fails, upstream fixed it: drop the caveat from docs/ros2.md."""
    plan, domain_id = embedded_ward
    version = subprocess.run(
        [ros2.python, "-c", "import importlib.metadata as m; print(m.version('ros-fastdds'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert version.startswith("3.2."), f"Fast DDS {version}: re-check the upstream limit"
    graph = _graph(ros2, plan, domain_id)
    iomt_endpoints = [e for e in graph["endpoints"] if e["type"].startswith("iomt_interfaces/")]
    assert iomt_endpoints and {e["node"] for e in iomt_endpoints} == {BARE}


def test_the_recorder_records_and_serves_nothing(
    ros2: Any, embedded_ward: tuple[LaunchPlan, int]
) -> None:
    plan, domain_id = embedded_ward
    recorder = _graph(ros2, plan, domain_id)["by_node"]["/iomt/recorder"]
    assert recorder["services"] == {} and recorder["clients"] == {}
    assert "/ward1/dr_0/inbox" in recorder["subscriptions"]


def test_iomt_graph_lists_ros2_nodes(
    ros2: Any, procs: Any, ros_domain: int, tmp_path: Path
) -> None:
    peer = ros2.start(
        procs,
        ros_domain,
        "serve",
        "--name",
        "bedside_robot",
        "--service",
        "/robot/echo",
        "--type",
        "iomt_interfaces/srv/DataShare",
        "--timeout",
        "120",
    )
    procs.wait_for_line(peer, '{"serving"', 60)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "iomt",
            "graph",
            "--json",
            "--domain",
            str(ros_domain),
            "--expect-nodes",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=procs.env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    graph = json.loads(out.stdout)
    (robot,) = [n for n in graph["nodes"] if n["name"] == "/bedside_robot"]
    assert robot["services"]["/robot/echo"] == ["iomt_interfaces/srv/DataShare"]
