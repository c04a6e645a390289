"""Opening sessions as the initiator, without DDS: one handshake per peer however many wait
for it, a timed-out (or unproven) attempt started again from message 1 with twice the
timeout, a refusal final, and only the peer's own messages 2 and 4 taken."""

from __future__ import annotations

import pytest

from iomt.core.channels import ChannelTable
from iomt.core.opening import (
    Failed,
    HandshakeAnswer,
    Ready,
    SessionOpening,
    StartHandshake,
    handshake_statement,
)
from iomt.core.replies import ReplyStatement
from iomt.crypto.sessions import HandshakeIdentity, PinnedCredentials, raw_credential
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import IomtError, ReplyRejectedError, ServiceTimeoutError

URI = "iomt://ward1/hr_1"


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


Tables = tuple[ChannelTable, ChannelTable, ChannelTable]  # dr_house (us), hr_1, mallory


@pytest.fixture
def tables() -> Tables:
    ids = {}
    for n in ("dr_house", "hr_1", "mallory"):
        signer = Ed25519Signer.generate()
        ids[n] = HandshakeIdentity(n, signer, raw_credential(signer.verifier()))
    pins = PinnedCredentials({n: i.signer.verifier() for n, i in ids.items()})
    clock = Clock()
    me, peer, mallory = (ChannelTable(ids[n], pins, clock=clock) for n in ids)
    return me, peer, mallory


def test_everyone_waits_on_one_handshake_and_is_released_together(tables: Tables) -> None:
    me, peer, _ = tables
    opening: SessionOpening[str] = SessionOpening(me, timeout_s=2.0)
    start = opening.ensure(URI, "first")
    assert start == StartHandshake(URI, 1, 2.0)
    assert opening.ensure(URI, "second") is None and opening.waiting(URI) == 2
    attempt = opening.attempt(start)
    m2 = peer.respond("dr_house", attempt.message1)
    assert attempt.take_message2(m2) and attempt.message3 is not None
    assert attempt.take_message4(peer.respond("dr_house", attempt.message3))
    assert opening.opened(URI) == Ready(URI, ("first", "second"))
    assert opening.ensure(URI, "third") == Ready(URI, ("third",))  # the session is there
    assert opening.waiting(URI) == 0


def test_only_the_peers_own_messages_are_taken(tables: Tables) -> None:
    me, peer, mallory = tables
    opening: SessionOpening[str] = SessionOpening(me)
    start = opening.ensure(URI, "w")
    assert isinstance(start, StartHandshake)
    attempt = opening.attempt(start)
    assert not attempt.take_message2(b"\x01\x02" + bytes(60))  # bogus
    assert not attempt.take_message2(mallory.respond("dr_house", attempt.message1))  # not hr_1
    m2 = peer.respond("dr_house", attempt.message1)
    assert attempt.take_message2(m2)
    assert not attempt.take_message2(m2)  # a second valid message 2 is not taken
    assert attempt.message3 is not None
    assert not attempt.take_message4(b"\x01\x04" + bytes(24))
    assert me.session("hr_1") is None
    assert attempt.take_message4(peer.respond("dr_house", attempt.message3))
    assert me.session("hr_1") is not None


@pytest.mark.parametrize("error", [ServiceTimeoutError("late"), ReplyRejectedError("forged")])
def test_a_timed_out_attempt_is_started_again_with_twice_the_timeout(
    tables: Tables, error: Exception
) -> None:
    me = tables[0]
    opening: SessionOpening[str] = SessionOpening(me, timeout_s=0.5, attempts=3)
    first = opening.ensure(URI, "w")
    assert isinstance(first, StartHandshake)
    opening.attempt(first)
    second = opening.failed(first, error)
    assert second == StartHandshake(URI, 2, 1.0)
    third = opening.failed(second, error)
    assert third == StartHandshake(URI, 3, 2.0)
    assert opening.failed(third, error) == Failed(URI, ("w",), error)  # attempts spent
    assert opening.waiting(URI) == 0


def test_a_refusal_is_final_and_the_unfinished_handshake_forgotten(tables: Tables) -> None:
    me, peer, _ = tables
    opening: SessionOpening[str] = SessionOpening(me, attempts=5)
    start = opening.ensure(URI, "w")
    assert isinstance(start, StartHandshake)
    attempt = opening.attempt(start)
    refused = IomtError("iomt://ward1/hr_1 refused the handshake: revoked")
    assert opening.failed(start, refused) == Failed(URI, ("w",), refused)
    # abandoned: a late message 2 for it no longer finishes anything
    assert not attempt.take_message2(peer.respond("dr_house", attempt.message1))
    assert isinstance(opening.ensure(URI, "again"), StartHandshake)  # a new handshake


class PeerRefusals:
    """Takes a refusal whose proof is the peer's: ``b"hr_1"`` over the expected statement."""

    def __init__(self) -> None:
        self.statements: list[ReplyStatement] = []

    def accepts(self, proof: bytes, statement: ReplyStatement) -> bool:
        self.statements.append(statement)
        return proof == statement.server.encode()


def _refusal(proof: bytes, reason: str = "revoked") -> HandshakeAnswer:
    return HandshakeAnswer(False, 2, reason, b"", proof)


def test_an_answer_is_taken_only_if_it_proves_itself(tables: Tables) -> None:
    me, peer, mallory = tables
    refusals = PeerRefusals()
    opening: SessionOpening[str] = SessionOpening(
        me, initiator_uri="iomt://ward1/dr_house", refusals=refusals
    )
    start = opening.ensure(URI, "w")
    assert isinstance(start, StartHandshake)
    attempt = opening.attempt(start)
    forged = mallory.respond("dr_house", attempt.message1)
    assert not attempt.take_answer2(HandshakeAnswer(True, 0, "", forged, b""))
    assert not attempt.take_answer2(_refusal(b"mallory"))  # a refusal not proven
    # the refusal's proof covers our message 1, the status, reason and answer
    assert refusals.statements[-1] == handshake_statement(
        "hr_1", "iomt://ward1/dr_house", attempt.message1, 2, "revoked", b""
    )
    m2 = peer.respond("dr_house", attempt.message1)
    assert attempt.take_answer2(HandshakeAnswer(True, 0, "", m2, b""))
    assert attempt.message3 is not None
    assert not attempt.take_answer4(_refusal(b"mallory"))
    assert attempt.take_answer4(_refusal(b"hr_1", "busy"))  # a proven refusal of message 3
    assert (
        refusals.statements[-1].request
        != handshake_statement(
            "hr_1", "iomt://ward1/dr_house", attempt.message1, 2, "busy", b""
        ).request
    )  # over message 3, not message 1
    m4 = peer.respond("dr_house", attempt.message3)
    assert attempt.take_answer4(HandshakeAnswer(True, 0, "", m4, b""))
    assert me.session("hr_1") is not None


def test_a_proven_refusal_of_message_1_is_taken(tables: Tables) -> None:
    me = tables[0]
    opening: SessionOpening[str] = SessionOpening(
        me, initiator_uri="iomt://ward1/dr_house", refusals=PeerRefusals()
    )
    start = opening.ensure(URI, "w")
    assert isinstance(start, StartHandshake)
    assert opening.attempt(start).take_answer2(_refusal(b"hr_1"))


def test_without_a_refusal_check_no_refusal_is_taken(tables: Tables) -> None:
    me = tables[0]
    opening: SessionOpening[str] = SessionOpening(me)
    start = opening.ensure(URI, "w")
    assert isinstance(start, StartHandshake)
    assert not opening.attempt(start).take_answer2(_refusal(b"hr_1"))
