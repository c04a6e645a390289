"""``iomt graph --png`` stays readable at 400 devices: the ward's repetition is grouped."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from iomt.cli.graph import fold, render_png, to_dot
from iomt.runtime.graph import GraphSnapshot, NodeInfo

P = b"\x01" * 16


def ward_snapshot(devices: int = 400, providers: int = 16) -> GraphSnapshot:
    """A graph shaped like scale_400: devices announcing on their radio cell and listening
    to the 9 around it, wallets, providers with inboxes, a recorder listening to all."""
    nodes: list[NodeInfo] = []
    cells = [f"/iomt/registration/c{x}_{y}" for x in range(5) for y in range(5)]
    for i in range(devices):
        kind = "hr" if i % 2 == 0 else "bp"
        n = NodeInfo("/ward1", f"{kind}_{i // 2}", P)
        n.publishers[cells[i % 25]] = {"iomt_interfaces/msg/Registration"}
        for c in cells[(i % 25) : (i % 25) + 9]:
            n.subscriptions[c] = {"iomt_interfaces/msg/Registration"}
        n.services[f"/ward1/{kind}_{i // 2}/data_share"] = {"iomt_interfaces/srv/DataShare"}
        n.publishers[f"/ward1/dr_{i % providers}/inbox"] = {"iomt_interfaces/msg/SecureEnvelope"}
        nodes.append(n)
    for w in range(devices // 2):
        n = NodeInfo("/ward1", f"wallet_{w}", P)
        n.services[f"/ward1/wallet_{w}/device_info"] = {"iomt_interfaces/srv/DeviceInfoRequest"}
        nodes.append(n)
    for d in range(providers):
        n = NodeInfo("/ward1", f"dr_{d}", P)
        n.subscriptions[f"/ward1/dr_{d}/inbox"] = {"iomt_interfaces/msg/SecureEnvelope"}
        n.publishers["/iomt/progress"] = {"iomt_interfaces/msg/WorkloadProgress"}
        for w in range(devices // 2):
            n.clients[f"/ward1/wallet_{w}/device_info"] = {"iomt_interfaces/srv/DeviceInfoRequest"}
        nodes.append(n)
    recorder = NodeInfo("/iomt", "recorder", P)
    for c in cells:
        recorder.subscriptions[c] = {"iomt_interfaces/msg/Registration"}
    nodes.append(recorder)
    return GraphSnapshot({P: "enclave=/;"}, nodes)


def test_fold_numbers_after_the_namespace() -> None:
    assert fold("/ward1/hr_12") == "/ward1/hr_*"
    assert fold("/iomt/registration/c0_11") == "/iomt/registration/c*_*"
    assert fold("/ward1/dr_3/inbox") == "/ward1/dr_*/inbox"
    assert fold("/recorder") == "/recorder"


def test_a_400_device_ward_is_a_handful_of_boxes() -> None:
    dot = to_dot(ward_snapshot())
    vertices = [line for line in dot.splitlines() if "shape=" in line]
    # hr_*, bp_*, wallet_*, dr_*, recorder; registration cells, inboxes, progress
    assert len(vertices) == 8, vertices
    assert '"n:/ward1/hr_*" [label="/ward1/hr_*\\n(200)"' in dot
    assert "octagon" not in dot  # services folded away
    with_services = to_dot(ward_snapshot(), services=True)
    assert with_services.count("shape=octagon") == 3  # hr_* and bp_* data_share, device_info


def test_expand_draws_every_node() -> None:
    dot = to_dot(ward_snapshot(devices=20, providers=2), expand=True)
    assert dot.count("shape=ellipse") == 20 + 10 + 2 + 1


@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (scripts/bootstrap.sh installs it)",
)
def test_the_400_device_picture_fits_a_screen(tmp_path: Path) -> None:
    png = tmp_path / "ward.png"
    render_png(to_dot(ward_snapshot()), png)
    data = png.read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the PNG IHDR chunk
    assert width <= 1600 and height <= 1200, (width, height)
