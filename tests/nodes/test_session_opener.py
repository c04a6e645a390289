"""SessionOpener on DDS: a handshake that times out is tried again from message 1; a
proven refusal is final; forged answers (unproven refusals, bogus messages 2 and 4) are
ignored while the peer's own answers complete the handshake (in-process nodes, real
keystore)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iomt.core.channels import ChannelTable
from iomt.crypto.keystore import Keystore
from iomt.errors import ServiceTimeoutError
from iomt.msg import SessionHandshake
from iomt.nodes.calls import Calls
from iomt.nodes.handshaking import SessionOpener, handshake_responder
from iomt.nodes.identity import reply_signer
from iomt.runtime import Context, Executor, Node

pytestmark = [pytest.mark.dds, pytest.mark.timeout(60)]


def _table(ks: Keystore, name: str) -> ChannelTable:
    return ChannelTable(ks.identity(name).handshake_identity(), ks.credential_validator())


def _serve(node: Node, ks: Keystore, name: str, table: ChannelTable) -> None:
    node.create_service(
        SessionHandshake,
        "~/handshake",
        handshake_responder(table.respond, name, reply_signer(ks.identity(name))),
        deferred=True,
    )


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
        _serve(responder, ks, "hr_0", _table(ks, "hr_0"))
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


def _forger(node: Node, answers: list[SessionHandshake.Response]) -> list[int]:
    """A second 'server' on the peer's handshake service: answers every request first,
    with each of ``answers`` (the request's own header), before the peer can."""
    sent: list[int] = []
    holder: list[object] = []

    def answer(req: object, responder: object) -> None:
        for a in answers:
            holder[0].send_response(a, responder.header)  # type: ignore[attr-defined]
            sent.append(1)

    holder.append(
        node.create_service(SessionHandshake, "/ward1/hr_0/handshake", answer, deferred=True)
    )
    return sent


def test_forged_handshake_answers_are_ignored_and_a_proven_refusal_is_final(
    tmp_path: Path, domain_id: int
) -> None:
    ks = Keystore.create(tmp_path / "ks", facility="ward1")
    for n in ("dr_0", "hr_0", "mallory"):
        ks.add_identity(n)
    ctx = Context(domain_id=domain_id)
    ex = Executor(ctx)
    initiator = Node("dr_0", context=ctx, namespace="/ward1")
    peer = Node("hr_0", context=ctx, namespace="/ward1")
    forger = Node("forger", context=ctx, namespace="/x")
    for n in (initiator, peer, forger):
        ex.add_node(n)
    R = SessionHandshake.Response
    mallory = _table(ks, "mallory")
    junk = bytes(60)
    sent = _forger(
        forger,
        [
            R(status=R.STATUS_REFUSED, reason="forged refusal"),
            R(status=R.STATUS_REFUSED, reason="forged", proof=b"\x01\x02" + junk),
            R(status=R.STATUS_OK, message=b"\x01\x02" + junk),  # a bogus message 2 / 4
            R(status=R.STATUS_OK, message=b"\x01\x04" + junk[:24]),
        ],
    )
    # mallory, a certified insider, also answers: a genuine message 2 -- signed by her
    forger.create_service(
        SessionHandshake,
        "/ward1/hr_0/handshake",
        lambda req, resp: (
            R(status=R.STATUS_OK, message=mallory.respond("dr_0", bytes(req.message)))
            if bytes(req.message)[1] == 1
            else R(status=R.STATUS_REFUSED)
        ),
    )
    table = _table(ks, "hr_0")
    _serve(peer, ks, "hr_0", table)
    channels = _table(ks, "dr_0")
    calls = Calls(initiator, check_period_s=0.05)
    client = initiator.create_client(SessionHandshake, "/ward1/hr_0/handshake")
    opener = SessionOpener(
        initiator, ks.identity("dr_0").uri, channels, calls, lambda _uri: client, timeout_s=5
    )
    try:
        _spin_until(ex, client.service_is_ready, 10)
        outcome: list[object] = []
        opener.ensure(ks.identity("hr_0").uri, lambda: outcome.append("ready"), outcome.append)
        _spin_until(ex, lambda: bool(outcome), 10)
        assert outcome == ["ready"]
        assert sent and client.rejected >= 5  # everything forged was ignored
        session = channels.session("hr_0")
        assert session is not None and table.session("dr_0") is not None
        assert session.peer_name == "hr_0"
        # the peer's own refusal, signed, is final
        ks.revoke("identity", "dr_0")
        channels.drop("hr_0")
        outcome.clear()
        opener.ensure(ks.identity("hr_0").uri, lambda: outcome.append("ready"), outcome.append)
        _spin_until(ex, lambda: bool(outcome), 10)
        assert len(outcome) == 1 and "refused" in str(outcome[0]), outcome
    finally:
        for n in (initiator, peer, forger):
            n.destroy_node()
        ex.close()
        ctx.shutdown()
