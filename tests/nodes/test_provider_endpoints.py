"""A provider's clients (iomt.nodes.asking.Endpoints) on a real Context: the process's
providers share one DDS client of a peer's data service, but each keeps its own handshake
client, because the peer bounds handshake work per request writer: a shared writer put
every provider of the process in one budget, and in a centralized 400-device run with 16
providers 24 requests failed on the central server's handshake."""

from __future__ import annotations

import pytest

from iomt.nodes.asking import Endpoints
from iomt.runtime import Context, Node

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def test_providers_share_data_clients_but_not_handshake_clients(domain_id: int) -> None:
    ctx = Context(domain_id=domain_id)
    try:
        a, b = (Node(n, context=ctx, namespace="/ward1") for n in ("dr_0", "dr_1"))
        ea, eb = Endpoints(a, centralized=False), Endpoints(b, centralized=False)
        device = "iomt://ward1/hr_0"
        da, db = ea.data(device), eb.data(device)
        assert da is not db and da.base is db.base  # type: ignore[attr-defined]
        ha, hb = ea.handshake(device), eb.handshake(device)
        assert ha.writer_gid != hb.writer_gid  # type: ignore[attr-defined]
        assert ea.data(device) is da and ea.handshake(device) is ha  # made once per node
        assert ctx.shared_endpoints() == 1
        for node in (a, b):
            node.destroy_node()
        assert ctx.shared_endpoints() == 0
    finally:
        ctx.shutdown()
