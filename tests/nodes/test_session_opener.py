"""SessionOpener on DDS: a handshake that times out is tried again from message 1; a
refusal is final (in-process nodes, real keystore)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iomt.core.channels import ChannelTable
from iomt.crypto.keystore import Keystore
from iomt.errors import ServiceTimeoutError
from iomt.msg import SessionHandshake
from iomt.nodes.common import Calls, SessionOpener, handshake_responder
from iomt.runtime import Context, Executor, Node

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def _table(ks: Keystore, name: str) -> ChannelTable:
    return ChannelTable(ks.identity(name).handshake_identity(), ks.credential_validator())


def _spin_until(ex: Executor, done, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        ex.spin_once(0.05)


@pytest.mark.parametrize("attempts", [1, 2])
def test_a_handshake_timing_out_is_tried_again(
    tmp_path: Path, domain_id: int, attempts: int
) -> None:
    ks = Keystore.create(tmp_path / "ks", facility="ward1")
    ks.add_identity("dr_0")
    ks.add_identity("hr_0")
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    initiator = Node("dr_0", context=ctx, namespace="/ward1")
    ex.add_node(initiator)
    channels = _table(ks, "dr_0")
    peer_uri = ks.identity("hr_0").uri
    client = initiator.create_client(SessionHandshake, "/ward1/hr_0/handshake")
    opener = SessionOpener(
        initiator,
        ks.identity("dr_0").uri,
        channels,
        Calls(initiator, check_period_s=0.05),
        lambda _uri: client,
        timeout_s=0.5,
        attempts=attempts,
    )
    outcome: list[object] = []
    opener.ensure(peer_uri, lambda: outcome.append("ready"), outcome.append)
    responder = None
    try:
        # The peer is not there for the first attempt (0.5 s); it comes up during the second.
        _spin_until(ex, lambda: bool(outcome), 0.7)
        responder = Node("hr_0", context=ctx, namespace="/ward1")
        responder.create_service(
            SessionHandshake, "~/handshake", handshake_responder(_table(ks, "hr_0"))
        )
        ex.add_node(responder)
        _spin_until(ex, lambda: bool(outcome), 5)
        if attempts == 1:
            assert len(outcome) == 1 and isinstance(outcome[0], ServiceTimeoutError)
            assert channels.session("hr_0") is None
        else:
            assert outcome == ["ready"]
            assert channels.session("hr_0") is not None
    finally:
        if responder is not None:
            responder.destroy_node()
        initiator.destroy_node()
        ex.close()
        ctx.shutdown()
