"""The four-message handshake at its edges: the stateless responder's cookie (its key
epochs, their wrap-around, its size and timeout bounds), message 4's key confirmation and
the initiator's pending session, every refusal named exactly.

Written against mutation testing (docs/testing.md): each bound is tested on both sides."""

from __future__ import annotations

import re

import pytest
from crypto_clock import FakeClock

from iomt.crypto.encoding import lp16, u32
from iomt.crypto.errors import HandshakeError, HandshakeMessageError
from iomt.crypto.sessions import (
    CookieJar,
    HandshakeIdentity,
    HandshakeInitiator,
    HandshakeResponder,
    HandshakeState,
    PinnedCredentials,
    Session,
    SessionPolicy,
    StatelessResponder,
    raw_credential,
)
from iomt.crypto.signing import Ed25519Signer
from iomt.errors import LocalProtocolError

BOB, DEVICE = "provider:dr-bob", "dev-001"


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _identity(name: str) -> HandshakeIdentity:
    signer = Ed25519Signer.generate()
    return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))


class Parties:
    def __init__(self, clock: FakeClock, policy: SessionPolicy | None = None) -> None:
        self.clock = clock
        self.policy = policy
        self.provider, self.device = _identity(BOB), _identity(DEVICE)
        self.pins = PinnedCredentials(
            {
                self.provider.name: self.provider.signer.verifier(),
                self.device.name: self.device.signer.verifier(),
            }
        )

    def initiator(self, **kw: object) -> HandshakeInitiator:
        return HandshakeInitiator(
            self.provider,
            self.pins,
            policy=self.policy,
            clock=self.clock,
            **kw,  # type: ignore[arg-type]
        )

    def responder(self, **kw: object) -> StatelessResponder:
        return StatelessResponder(
            self.device,
            self.pins,
            policy=self.policy,
            clock=self.clock,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the cookie jar --------------------------------------------------------------------------


def test_a_cookie_key_period_must_be_positive(clock: FakeClock) -> None:
    for period in (0, -1.0):
        with raises(ValueError, "the cookie key period must be positive"):
            CookieJar(period=period, clock=clock)
    assert CookieJar(period=1e-9, clock=clock).period == 1e-9
    assert CookieJar(clock=clock).period == 30.0  # the default handshake timeout's


def test_a_cookie_names_its_epoch_and_opens_in_the_next_one_after_a_new_key(
    clock: FakeClock,
) -> None:
    clock.now = 95.0
    jar = CookieJar(period=10, clock=clock)
    cookie = jar.seal(b"state", b"aad")
    assert cookie[:4] == u32(9) and len(cookie) == 4 + 12 + len(b"state") + 16
    clock.advance(10)
    fresh = jar.seal(b"new", b"aad")  # makes the key of epoch 10
    assert fresh[:4] == u32(10)
    assert jar.open(cookie, b"aad") == b"state"  # epoch 9's key is kept one epoch more
    assert jar.open(fresh, b"aad") == b"new"
    clock.advance(10)
    jar.seal(b"newer", b"aad")  # epoch 11: epoch 9's key is gone, epoch 10's is kept
    assert jar.open(fresh, b"aad") == b"new"
    assert sorted(jar._keys) == [10, 11]


def test_cookie_epochs_wrap_around_at_2_to_the_32(clock: FakeClock) -> None:
    clock.now = 0xFFFFFFFF + 0.5  # with a period of 1 s: the last 32-bit epoch
    jar = CookieJar(period=1, clock=clock)
    cookie = jar.seal(b"state", b"aad")
    assert cookie[:4] == b"\xff\xff\xff\xff"
    clock.advance(1)  # epoch 2^32: 0 again
    fresh = jar.seal(b"new", b"aad")
    assert fresh[:4] == bytes(4)
    assert jar.open(cookie, b"aad") == b"state"  # the previous epoch, across the wrap
    assert sorted(jar._keys) == [0, 0xFFFFFFFF]
    clock.advance(1)
    with raises(HandshakeError, "handshake cookie expired (its key is gone)"):
        jar.open(cookie, b"aad")
    jar.seal(b"newer", b"aad")
    assert sorted(jar._keys) == [0, 1]


def test_a_cookie_from_the_future_or_another_jar_says_why(clock: FakeClock) -> None:
    jar = CookieJar(period=10, clock=clock)
    other = CookieJar(period=10, clock=clock)
    cookie = other.seal(b"state", b"aad")
    with raises(HandshakeError, "handshake cookie from an unknown key"):
        jar.open(cookie, b"aad")  # the same epoch, but this jar has no key for it yet
    jar.seal(b"mine", b"aad")
    with raises(HandshakeError, "handshake cookie does not authenticate"):
        jar.open(cookie, b"aad")
    with raises(HandshakeError, "handshake cookie does not authenticate"):
        jar.open(jar.seal(b"mine", b"aad"), b"other aad")
    future = u32(jar._epoch() + 2) + cookie[4:]
    with raises(HandshakeError, "handshake cookie expired (its key is gone)"):
        jar.open(future, b"aad")
    with raises(HandshakeMessageError, "truncated: wanted 12 bytes, 6 left"):
        jar.open(bytes(10), b"aad")


# -- the stateless responder -----------------------------------------------------------------


def test_the_initiator_name_must_fit_its_length_prefix(clock: FakeClock) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    with raises(HandshakeMessageError, "initiator name cannot be carried"):
        responder.answer(parties.initiator().start(), "\ud800")
    for size in (256, 911, 65536):  # each once made a cookie too long to come back, or worse
        with raises(HandshakeMessageError, f"initiator name of {size} bytes (at most 255)"):
            responder.answer(parties.initiator().start(), "x" * size)
    with raises(HandshakeMessageError, "initiator name of 256 bytes (at most 255)"):
        responder.answer(parties.initiator().start(), "é" * 128)  # counted in bytes
    i = parties.initiator()
    session, m4 = responder.complete(i.receive(responder.answer(i.start(), "é")), "é")
    assert i.confirm(m4).peer_name == DEVICE and session.peer_name == BOB
    # the longest name still completes: its cookie comes back within its bound
    i = parties.initiator()
    longest = "x" * 255
    session, m4 = responder.complete(i.receive(responder.answer(i.start(), longest)), longest)
    assert i.confirm(m4).peer_name == DEVICE


def test_a_message_1_with_trailing_bytes_is_refused(clock: FakeClock) -> None:
    parties = Parties(clock)
    with raises(HandshakeMessageError, "1 trailing bytes"):
        parties.responder().answer(parties.initiator().start() + b"x", BOB)


def test_the_responder_may_complete_exactly_at_its_timeout(clock: FakeClock) -> None:
    clock.now = 1_700_000_000.25
    parties = Parties(clock, SessionPolicy(handshake_timeout=20))
    responder = parties.responder(cookies=CookieJar(period=1000, clock=clock))
    on_time, late = parties.initiator(), parties.initiator()
    m2_on_time = responder.answer(on_time.start(), BOB)
    m2_late = responder.answer(late.start(), BOB)
    m3_on_time, m3_late = on_time.receive(m2_on_time), late.receive(m2_late)
    clock.advance(20)
    session, m4 = responder.complete(m3_on_time, BOB)
    assert on_time.confirm(m4).peer_name == DEVICE and session.peer_name == BOB
    clock.advance(0.002)
    with raises(HandshakeError, "handshake timed out"):
        responder.complete(m3_late, BOB)


def test_a_message_3_under_another_name_or_with_a_foreign_cookie_says_why(
    clock: FakeClock,
) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    i = parties.initiator()
    m3 = i.receive(responder.answer(i.start(), BOB))
    with raises(HandshakeError, "message 3 comes under another name than message 1"):
        responder.complete(m3, "someone-else")
    with raises(HandshakeError, "message 3 comes under another name than message 1"):
        responder.complete(m3)  # no name at all
    with raises(HandshakeError, "handshake cookie from an unknown key"):
        parties.responder().complete(m3, BOB)
    with raises(HandshakeError, "message 3 does not decrypt"):
        responder.complete(m3[:-1] + bytes([m3[-1] ^ 1]), BOB)
    session, m4 = responder.complete(m3, BOB)
    assert i.confirm(m4) is i.session and session.peer_name == BOB


def test_a_cookie_is_at_most_1024_bytes(clock: FakeClock) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    head = b"\x01\x03" + bytes(8)
    with raises(HandshakeMessageError, "handshake cookie too long"):
        responder.complete(head + lp16(bytes(1025)) + b"ct", BOB)
    with raises(HandshakeError, "handshake cookie expired (its key is gone)"):
        responder.complete(head + lp16(bytes(1024)) + b"ct", BOB)  # epoch 0: long gone


def test_the_responder_for_two_parties_checks_message_3_length(clock: FakeClock) -> None:
    parties = Parties(clock)
    r = HandshakeResponder(parties.device, parties.pins, clock=clock)
    m2 = r.receive(parties.initiator().start())
    c_r = m2[10:18]
    with raises(HandshakeMessageError, "message 3 is for another handshake"):
        r.receive(b"\x01\x03" + c_r[:7])
    with raises(HandshakeMessageError, "truncated: wanted 2 bytes, 0 left"):
        r.receive(b"\x01\x03" + c_r)  # long enough to name it: read on, and cut short


# -- message 4 and the initiator's pending session -------------------------------------------


def test_the_pending_session_exists_only_after_message_2(clock: FakeClock) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    i = parties.initiator()
    with raises(LocalProtocolError, "no message 2 yet (state idle)"):
        i.pending_session  # noqa: B018
    m1 = i.start()
    with raises(LocalProtocolError, "no message 2 yet (state wait-message-2)"):
        i.pending_session  # noqa: B018
    m3 = i.receive(responder.answer(m1, BOB))
    pending = i.pending_session
    assert pending.peer_name == DEVICE
    with raises(LocalProtocolError, "handshake not finished (state wait-message-4)"):
        i.session  # noqa: B018
    session, m4 = responder.complete(m3, BOB)
    assert i.confirm(m4) is pending
    assert session.unprotect(pending.protect(b"hr=72")) == b"hr=72"


def test_message_4_is_checked_exactly_and_failures_leave_the_initiator_waiting(
    clock: FakeClock,
) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    i = parties.initiator()
    _, m4 = responder.complete(i.receive(responder.answer(i.start(), BOB)), BOB)
    assert len(m4) == 2 + 8 + 16
    refusals = [
        (b"\x01\x03" + m4[2:], HandshakeMessageError, "not a handshake message 4"),
        (m4[:2] + bytes(8) + m4[10:], HandshakeMessageError, "message 4 is for another handshake"),
        (m4[:-1] + bytes([m4[-1] ^ 1]), HandshakeError, "message 4 does not confirm the session"),
        (m4 + b"x", HandshakeMessageError, "1 trailing bytes"),
        (m4[:-1], HandshakeMessageError, "truncated: wanted 16 bytes, 15 left"),
    ]
    for message, kind, reason in refusals:
        with raises(kind, reason):
            i.confirm(message)
        assert i.state is HandshakeState.WAIT_MESSAGE_4
    assert i.confirm(m4) is i.session
    with raises(HandshakeMessageError, "initiator: message-4 is not allowed in state established"):
        i.confirm(m4)


def test_an_expected_peer_is_named_in_the_refusal(clock: FakeClock) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    careful = parties.initiator(expected_peer="dev-002")
    m2 = responder.answer(careful.start(), BOB)
    with raises(HandshakeError, "message 2 is from 'dev-001', not 'dev-002'"):
        careful.receive(m2)
    assert careful.state is HandshakeState.WAIT_MESSAGE_2
    right = parties.initiator(expected_peer=DEVICE)
    session, m4 = responder.complete(right.receive(responder.answer(right.start(), BOB)), BOB)
    assert right.confirm(m4).peer_name == DEVICE and session.peer_name == BOB


# -- the two-party responder and a bare session ----------------------------------------------


def test_the_two_party_responder_times_out_by_its_own_clock(clock: FakeClock) -> None:
    """The cookie keeps the start in whole milliseconds; the two-party responder also
    keeps its own start and refuses a message 3 a fraction of a millisecond late."""
    policy = SessionPolicy(handshake_timeout=5)
    clock.now = 1_700_000_000.0006  # the cookie rounds this start up to ...000.001
    parties = Parties(clock, policy)
    r = HandshakeResponder(parties.device, parties.pins, policy=policy, clock=clock)
    assert r.identity is parties.device and r.policy is policy
    i = parties.initiator()
    m3 = i.receive(r.receive(i.start()))
    clock.advance(5.0002)  # 5.0002 s after the start, 5.0 - 0.0002 s after the cookie's
    with raises(HandshakeError, "handshake timed out"):
        r.receive(m3)
    assert r.state is HandshakeState.WAIT_MESSAGE_3


def test_a_session_made_without_a_credential_has_none(clock: FakeClock) -> None:
    key = Ed25519Signer.generate().verifier()
    session = Session(
        local_id=bytes(8),
        peer_id=bytes(8),
        peer_name=DEVICE,
        peer_verifier=key,
        send=(bytes(32), bytes(12)),
        receive=(bytes(32), bytes(12)),
        exporter=bytes(32),
        policy=SessionPolicy(),
        clock=clock,
    )
    assert session.peer_credential == b""


def test_a_cookie_epoch_is_the_exact_floor_of_time_over_period() -> None:
    """1.0 / 0.1 rounds to 10.0, but 0.1 is a little more than a tenth: the exact
    quotient is just below 10, and its floor -- epoch 9 -- is what ``//`` gives."""
    jar = CookieJar(period=0.1, clock=lambda: 1.0)
    assert jar.seal(b"state", b"aad")[:4] == u32(9)


def test_both_sessions_carry_the_credential_their_peer_proved(clock: FakeClock) -> None:
    parties = Parties(clock)
    responder = parties.responder()
    i = parties.initiator()
    session, m4 = responder.complete(i.receive(responder.answer(i.start(), BOB)), BOB)
    assert session.peer_credential == parties.provider.credential
    assert i.confirm(m4).peer_credential == parties.device.credential


def test_a_payload_not_signed_by_its_key_names_the_signer(clock: FakeClock) -> None:
    parties = Parties(clock)
    impostor = Ed25519Signer.generate()  # signs with a key that is not the device's
    responder = StatelessResponder(
        HandshakeIdentity(DEVICE, impostor, parties.device.credential),
        parties.pins,
        clock=clock,
    )
    i = parties.initiator()
    with raises(
        HandshakeError, "'dev-001' did not sign the transcript: Ed25519 signature does not verify"
    ):
        i.receive(responder.answer(i.start(), BOB))
