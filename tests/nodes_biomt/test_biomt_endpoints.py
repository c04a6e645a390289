"""A BIoMT ward's processes share their DDS clients (iomt.runtime.shared): a process's
devices one client of each bolster and admin service, its physicians one of each bolster
service and of the cloud's ``get``. Each physician keeps its own handshake client: a
bolster bounds handshake work per request writer (iomt.core.channels.HandshakeLimits).

With a client per node, a 400-device BIoMT ward's admin and bolsters timed out writing 396
``credentials`` replies while 400 devices enrolled (every reply went to every device's
reader), and the ward took 97 s to be ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from iomt.nodes.biomt_device import BiomtDeviceLink
from iomt.nodes.biomt_physician import BiomtPhysician
from iomt.nodes.calls import Calls
from iomt.nodes.params import DeviceBiomt, PhysicianBiomt
from iomt.runtime import Context, Node

from .biomt_nodes_world import IDENTITIES, NS, make_keystore

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def test_devices_and_physicians_share_clients_but_not_handshakes(
    tmp_path: Path, domain_id: int
) -> None:
    ks = make_keystore(tmp_path, [*IDENTITIES, "dr_b"])
    ctx = Context(domain_id=domain_id)
    nodes: list[Node] = []
    try:
        links = []
        for name in ("hr_1", "bp_1"):
            node = Node(name, context=ctx, namespace=NS)
            nodes.append(node)
            links.append(
                BiomtDeviceLink(
                    node,
                    keystore=ks,
                    identity=ks.identity(name),
                    calls=Calls(node),
                    kind="heart_rate",
                    owner="wallet_p",
                    config=DeviceBiomt(bolster="bolster_a", admin="admin"),
                )
            )
        store_1, store_2 = (link._storing._store for link in links)
        assert store_1 is not store_2 and store_1.base is store_2.base  # type: ignore[attr-defined]

        physicians = []
        for name in ("dr_a", "dr_b"):
            node = Node(name, context=ctx, namespace=NS)
            nodes.append(node)
            physicians.append(
                BiomtPhysician(
                    node,
                    keystore=ks,
                    identity=ks.identity(name),
                    calls=Calls(node),
                    config=PhysicianBiomt(bolsters=("bolster_a", "bolster_b"), cloud="cloud"),
                    start_delay_s=60.0,
                    seed=0,
                )
            )
        a, b = (p._clients for p in physicians)
        for service in ("bolster_a/access", "bolster_b/observe", "bolster_a/attest"):
            assert a[service] is not b[service]
            assert a[service].base is b[service].base  # type: ignore[attr-defined]
        for bolster in ("bolster_a", "bolster_b"):
            mine, theirs = a[f"{bolster}/handshake"], b[f"{bolster}/handshake"]
            assert not hasattr(mine, "base")
            assert mine.writer_gid != theirs.writer_gid  # type: ignore[attr-defined]
        cloud_a, cloud_b = (p.answers._cloud for p in physicians)
        assert cloud_a is not None and cloud_b is not None
        assert cloud_a.base is cloud_b.base  # type: ignore[attr-defined]
    finally:
        for node in reversed(nodes):
            node.destroy_node()
        left = ctx.shared_endpoints()
        ctx.shutdown()
    assert left == 0  # the shared endpoints went with their last handle
