"""The graph of a running multi-process system, as ROS 2 tools would read it."""

# No `from __future__ import annotations`: cyclonedds resolves IdlStruct field types at runtime.

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cyclonedds.idl.annotations as annotate
import pytest
from cyclonedds.builtin import (
    BuiltinDataReader,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, bounded_str, sequence, uint8
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from iomt.cli.graph import to_dot
from iomt.resources import share_file
from runtime.helpers import write_spec

pytestmark = [pytest.mark.dds]


# rmw_dds_common (Jazzy) written out here independently of iomt.msg, so this test reads
# ros_discovery_info the way a ROS 2 tool would, not through the code under test.
@dataclass
@annotate.final
class RawGid(IdlStruct, typename="rmw_dds_common::msg::dds_::Gid_"):
    data: array[uint8, 16] = field(default_factory=lambda: [0] * 16)


@dataclass
@annotate.final
class RawNodeEntitiesInfo(IdlStruct, typename="rmw_dds_common::msg::dds_::NodeEntitiesInfo_"):
    node_namespace: bounded_str[256] = ""
    node_name: bounded_str[256] = ""
    reader_gid_seq: sequence[RawGid] = field(default_factory=list)
    writer_gid_seq: sequence[RawGid] = field(default_factory=list)


@dataclass
@annotate.final
class RawParticipantEntitiesInfo(
    IdlStruct, typename="rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"
):
    gid: RawGid = field(default_factory=RawGid)
    node_entities_info_seq: sequence[RawNodeEntitiesInfo] = field(default_factory=list)


def _start_two_containers(procs, tmp_path: Path, domain_id: int) -> None:  # type: ignore[no-untyped-def]
    a = write_spec(
        tmp_path / "a.json",
        [{"factory": "runtime.nodes:talker", "name": "talker", "namespace": "/t"}],
    )
    b = write_spec(
        tmp_path / "b.json",
        [
            {"factory": "runtime.nodes:adder", "name": "adder", "namespace": "/t"},
            {
                "factory": "runtime.nodes:talker",
                "name": "talker2",
                "namespace": "/t/sub",
                "params": {"topic": "/t/chatter"},
            },
        ],
    )
    for spec in (a, b):
        p = procs.start(
            "-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id)
        )
        procs.wait_for_line(p, "READY", 20)


@pytest.mark.timeout(60)
def test_independent_raw_reader_sees_nodes_and_their_real_endpoint_gids(
    procs, tmp_path: Path, domain_id: int
) -> None:
    _start_two_containers(procs, tmp_path, domain_id)
    xml = share_file("config", "cyclonedds-loopback.xml").read_text()
    _domain = Domain(domain_id, xml)
    dp = DomainParticipant(domain_id)
    info_qos = Qos(
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.Durability.TransientLocal,
        Policy.History.KeepAll,
    )
    info_reader = DataReader(
        dp,
        Topic(
            dp,
            "ros_discovery_info",
            RawParticipantEntitiesInfo,
            qos=Qos(Policy.Durability.TransientLocal, Policy.History.KeepLast(1)),
        ),
        qos=info_qos,
    )
    pubs = BuiltinDataReader(dp, BuiltinTopicDcpsPublication)
    subs = BuiltinDataReader(dp, BuiltinTopicDcpsSubscription)

    nodes: dict[str, RawNodeEntitiesInfo] = {}
    endpoints: dict[bytes, tuple[str, bool]] = {}
    deadline = time.monotonic() + 20
    wanted = {"/t/talker", "/t/adder", "/t/sub/talker2"}
    while time.monotonic() < deadline:
        for info in info_reader.take(64):
            if info.sample_info.valid_data:
                for n in info.node_entities_info_seq:
                    ns = n.node_namespace.rstrip("/")
                    nodes[f"{ns}/{n.node_name}"] = n
        for reader, is_writer in ((pubs, True), (subs, False)):
            for e in reader.take(256):
                endpoints[e.key.bytes] = (e.topic_name, is_writer)
        if wanted <= nodes.keys() and len(endpoints) >= 8:
            break
        time.sleep(0.1)
    assert wanted <= nodes.keys()

    def topics_of(node: RawNodeEntitiesInfo, writers: bool) -> set[str]:
        gids = node.writer_gid_seq if writers else node.reader_gid_seq
        out = set()
        for g in gids:
            key = bytes(g.data)
            assert key in endpoints, f"gid {uuid.UUID(bytes=key)} is not a real endpoint"
            topic, is_writer = endpoints[key]
            assert is_writer == writers
            out.add(topic)
        return out

    assert topics_of(nodes["/t/talker"], writers=True) == {"rt/t/chatter"}
    assert topics_of(nodes["/t/sub/talker2"], writers=True) == {"rt/t/chatter"}
    assert topics_of(nodes["/t/adder"], writers=False) == {"rq/t/add_two_intsRequest"}
    assert topics_of(nodes["/t/adder"], writers=True) == {"rr/t/add_two_intsReply"}


def _iomt(*args: str, procs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "iomt", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=procs.env(),
        check=False,
    )


@pytest.mark.timeout(90)
def test_iomt_graph_json_and_dot(procs, tmp_path: Path, domain_id: int) -> None:
    _start_two_containers(procs, tmp_path, domain_id)
    out = _iomt(
        "graph",
        "--domain",
        str(domain_id),
        "--json",
        "--expect-nodes",
        "3",
        "--wait",
        "20",
        procs=procs,
    )
    assert out.returncode == 0, out.stderr
    graph = json.loads(out.stdout)
    names = {n["name"] for n in graph["nodes"]}
    assert {"/t/talker", "/t/adder", "/t/sub/talker2"} <= names
    chatter = graph["topics"]["/t/chatter"]
    assert chatter["types"] == ["iomt_test/msg/Chatter"]
    assert sorted(chatter["publishers"]) == ["/t/sub/talker2", "/t/talker"]
    service = graph["services"]["/t/add_two_ints"]
    assert service["servers"] == ["/t/adder"]
    assert service["types"] == ["iomt_test/srv/AddTwoInts"]

    dot = _iomt(
        "graph",
        "--domain",
        str(domain_id),
        "--dot",
        "-",
        "--services",
        "--expand",
        "--expect-nodes",
        "3",
        "--wait",
        "20",
        procs=procs,
    )
    assert dot.returncode == 0, dot.stderr
    assert '"n:/t/talker" -> "t:/t/chatter" [style=solid];' in dot.stdout
    assert '"s:/t/add_two_ints" -> "n:/t/adder" [style=dashed];' in dot.stdout


@pytest.mark.timeout(60)
@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (scripts/bootstrap.sh installs it)",
)
def test_iomt_graph_renders_a_png(procs, tmp_path: Path, domain_id: int) -> None:
    """(Grouping at ward scale: tests/cli/test_graph_picture.py.)"""
    _start_two_containers(procs, tmp_path, domain_id)
    png = tmp_path / "graph.png"
    out = _iomt(
        "graph",
        "--domain",
        str(domain_id),
        "--png",
        str(png),
        "--expect-nodes",
        "3",
        "--wait",
        "20",
        procs=procs,
    )
    assert out.returncode == 0, out.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.timeout(120)
def test_400_nodes_in_8_processes_all_appear_in_the_graph(
    procs, tmp_path: Path, domain_id: int
) -> None:
    from iomt.runtime import Context
    from iomt.runtime.graph import GraphReader

    groups, per_group = 8, 50
    for g in range(groups):
        spec = write_spec(
            tmp_path / f"g{g}.json",
            [
                {"factory": "runtime.nodes:member", "name": f"dev_{i}", "namespace": f"/scale/g{g}"}
                for i in range(per_group)
            ],
        )
        procs.start("-m", "iomt.runtime.container", "--spec", str(spec), "--domain", str(domain_id))
    for p in procs.procs:
        procs.wait_for_line(p, "READY", 60)
    with Context(domain_id=domain_id) as ctx:
        reader = GraphReader(ctx)
        snap = reader.wait_until(lambda s: len(s.complete_node_names()) >= groups * per_group, 60)
        reader.close()
    names = set(snap.complete_node_names())
    expected = {f"/scale/g{g}/dev_{i}" for g in range(groups) for i in range(per_group)}
    assert expected <= names
    member = next(n for n in snap.nodes if n.fqn == "/scale/g3/dev_7")
    assert set(member.publishers) == {"/scale/g3/status"}
    assert set(member.services) == {"/scale/g3/add_two_ints"}
    # rqt_graph-like picture: the 400 members are one group, not 400 ellipses
    dot = to_dot(snap, services=True)
    assert dot.count("shape=ellipse") == 1 and '"n:/scale/g*/dev_*"' in dot
    assert "(400)" in dot
