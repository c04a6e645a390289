"""Sessions at their edges: the replay window's last slot, the message limit, message
framing, and every refusal named exactly.

Written against mutation testing (docs/testing.md): each bound is tested on both sides."""

from __future__ import annotations

import re

import pytest
from crypto_clock import FakeClock

from iomt.crypto.encoding import lp16
from iomt.crypto.errors import (
    HandshakeError,
    HandshakeMessageError,
    SessionError,
    SessionExpiredError,
    SessionReplayError,
)
from iomt.crypto.sessions import (
    HandshakeIdentity,
    HandshakeInitiator,
    HandshakeResponder,
    PinnedCredentials,
    Session,
    SessionPolicy,
    addressed_to,
    is_handshake_start,
    raw_credential,
    record_session_id,
)
from iomt.crypto.signing import Ed25519Signer, Verifier
from iomt.errors import AuthenticationError, LocalProtocolError


def raises(kind: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(kind, match=f"^{re.escape(message)}$")


def _identity(name: str) -> HandshakeIdentity:
    signer = Ed25519Signer.generate()
    return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))


class Pair:
    def __init__(self, clock: FakeClock, policy: SessionPolicy | None = None) -> None:
        self.provider, self.device = _identity("provider:dr-bob"), _identity("dev-001")
        self.pins = PinnedCredentials(
            {
                self.provider.name: self.provider.signer.verifier(),
                self.device.name: self.device.signer.verifier(),
            }
        )
        self.i = HandshakeInitiator(self.provider, self.pins, policy=policy, clock=clock)
        self.r = HandshakeResponder(self.device, self.pins, policy=policy, clock=clock)

    def run(self) -> tuple[Session, Session]:
        m2 = self.r.receive(self.i.start())
        assert m2 is not None
        m4 = self.r.receive(self.i.receive(m2))
        assert self.i.confirm(m4) is self.i.session  # message 4 confirms the session
        return self.i.session, self.r.session


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the replay window ---------------------------------------------------------------------


def test_a_record_exactly_a_window_behind_is_refused(clock: FakeClock) -> None:
    si, sr = Pair(clock, SessionPolicy(replay_window=4)).run()
    records = [si.protect(b"%d" % n) for n in range(6)]
    for n in (0, 1, 2, 3, 4):
        assert sr.unprotect(records[n]) == b"%d" % n
    with raises(SessionReplayError, "record 0 is left of the replay window"):
        sr.unprotect(records[0])  # offset 4 = the window: out, even though never a bit
    with raises(SessionReplayError, "record 1 was already received"):
        sr.unprotect(records[1])  # offset 3: the window's last slot
    assert sr.unprotect(records[5]) == b"5"


def test_the_first_record_is_accepted_with_a_window_of_one(clock: FakeClock) -> None:
    si, sr = Pair(clock, SessionPolicy(replay_window=1)).run()
    first, second = si.protect(b"a"), si.protect(b"b")
    assert sr.unprotect(first) == b"a"
    assert sr.unprotect(second) == b"b"
    with raises(SessionReplayError, "record 0 is left of the replay window"):
        sr.unprotect(first)


# -- limits ------------------------------------------------------------------------------------


def _with_seq(record: bytes, seq: int) -> bytes:
    return record[:10] + seq.to_bytes(8, "big") + record[18:]


def test_a_record_numbered_at_or_beyond_the_message_limit_is_refused(clock: FakeClock) -> None:
    si, sr = Pair(clock, SessionPolicy(max_messages=3)).run()
    record = si.protect(b"x")
    for seq in (3, 1 << 48, 1 << 56):  # the limit itself, and numbers only the high bytes tell
        with raises(SessionExpiredError, "record beyond the session's message limit"):
            sr.unprotect(_with_seq(record, seq))
    with raises(SessionError, "record does not authenticate"):
        sr.unprotect(_with_seq(record, 2))
    si.protect(b"y")
    si.protect(b"z")
    with raises(SessionExpiredError, "message limit reached; re-handshake"):
        si.protect(b"one too many")


def test_an_expired_session_says_so(clock: FakeClock) -> None:
    si, _sr = Pair(clock, SessionPolicy(lifetime=10)).run()
    clock.advance(10)
    with raises(SessionExpiredError, "session with 'dev-001' expired; re-handshake"):
        si.protect(b"x")


def test_a_record_for_another_session_says_so(clock: FakeClock) -> None:
    si, _sr = Pair(clock).run()
    _other_i, other_r = Pair(clock).run()
    with raises(SessionError, "record is for another session"):
        other_r.unprotect(si.protect(b"x"))


# -- framing -----------------------------------------------------------------------------------


def test_messages_are_routed_by_their_exact_framing() -> None:
    cid = b"c" * 8
    assert addressed_to(b"\x01\x02" + cid) == cid  # the shortest routable message
    assert addressed_to(b"\x01\x03" + cid + b"rest") == cid
    assert addressed_to(b"\x01\x04" + cid) == cid  # message 4 (key confirmation)
    assert addressed_to(b"\x01\x10" + cid) == cid
    for junk in (b"\x01\x02" + cid[:7], b"\x01\x02c", b"\x02\x02" + cid, b"\x01\x01" + cid):
        with raises(HandshakeMessageError, "not a message 2, message 3 or session record"):
            addressed_to(junk)
    m1 = b"\x01\x01\x01" + cid + b"p" * 32
    assert is_handshake_start(m1)
    assert not is_handshake_start(b"\x01\x02" + m1[2:])
    assert not is_handshake_start(m1 + b"x")
    assert not is_handshake_start(m1[:-1])


def test_a_record_needs_its_header_and_a_tag() -> None:
    cid = b"c" * 8
    record = b"\x01\x10" + cid + bytes(8) + bytes(16)
    assert record_session_id(record) == cid
    for junk in (record[:-1], b"\x02" + record[1:], b"\x01\x03" + record[2:], b"\x01\x10"):
        with raises(SessionError, "not a session record"):
            record_session_id(junk)


# -- the handshake's refusals --------------------------------------------------------------


def test_a_message_3_for_another_handshake_or_of_another_kind_is_refused(
    clock: FakeClock,
) -> None:
    pair = Pair(clock)
    m2 = pair.r.receive(pair.i.start())
    assert m2 is not None
    m3 = pair.i.receive(m2)
    with raises(HandshakeMessageError, "not a handshake message 3"):
        pair.r.receive(b"\x01\x02" + m3[2:])
    with raises(HandshakeMessageError, "message 3 is for another handshake"):
        pair.r.receive(m3[:2] + bytes(8) + m3[10:])
    with raises(HandshakeError, "message 3 does not decrypt"):
        pair.r.receive(m3[:-1] + bytes([m3[-1] ^ 1]))
    m4 = pair.r.receive(m3)  # the refusals left the responder waiting: m3 now gets m4
    assert pair.i.confirm(m4).peer_name == "dev-001"
    assert pair.r.session.peer_name == "provider:dr-bob"


def _tampered_payload(clock: FakeClock, payload: bytes) -> tuple[Pair, bytes]:
    """A responder whose (authentic, encrypted) message 2 carries ``payload``."""
    pair = Pair(clock)
    # the responder signs through its stateless core (it keeps its state in a cookie)
    pair.r._core._sign_payload = lambda _context, _th: payload  # type: ignore[method-assign]
    m2 = pair.r.receive(pair.i.start())
    assert m2 is not None
    return pair, m2


def test_a_peer_name_that_is_not_utf8_is_refused(clock: FakeClock) -> None:
    pair, m2 = _tampered_payload(clock, lp16(b"\xff") + lp16(b"c") + lp16(b"s"))
    with raises(HandshakeError, "peer name is not UTF-8"):
        pair.i.receive(m2)


def test_a_truncated_identity_payload_is_a_handshake_error(clock: FakeClock) -> None:
    pair, m2 = _tampered_payload(clock, lp16(b"dev-001") + b"\x00\x05ab")
    with raises(HandshakeError, "truncated: wanted 5 bytes, 2 left"):
        pair.i.receive(m2)


def test_a_rejected_credential_is_named(clock: FakeClock) -> None:
    def refuse(name: str, _credential: bytes) -> Verifier:
        raise AuthenticationError(f"{name} is not on the list")

    i = HandshakeInitiator(_identity("provider:dr-bob"), refuse, clock=clock)
    r = HandshakeResponder(_identity("dev-001"), refuse, clock=clock)
    m2 = r.receive(i.start())
    assert m2 is not None
    with raises(HandshakeError, "credential of 'dev-001' rejected: dev-001 is not on the list"):
        i.receive(m2)


def test_pinned_credentials_say_what_is_wrong() -> None:
    key = Ed25519Signer.generate().verifier()
    pins = PinnedCredentials({"dev-001": key})
    good = raw_credential(key)
    assert pins("dev-001", good) == key
    with raises(HandshakeError, "no pinned key for 'mallory'"):
        pins("mallory", good)
    with raises(HandshakeError, "not a raw-key credential"):
        pins("dev-001", b"x509" + good[4:])
    with raises(HandshakeError, "truncated: wanted 2 bytes, 1 left"):
        pins("dev-001", b"raw:\x00")
    with pytest.raises(HandshakeError, match=r"^bad raw credential: \S"):
        pins("dev-001", b"raw:" + lp16(b"rot13") + lp16(b"k"))
    other = raw_credential(Ed25519Signer.generate().verifier())
    with raises(HandshakeError, "'dev-001' presented a key that is not its pinned key"):
        pins("dev-001", other)


# -- policy bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"lifetime": 0.5},
        {"handshake_timeout": 0.5},
        {"max_messages": 1},
        {"max_messages": 1 << 63},
        {"replay_window": 1},
        {"replay_window": 4096},
    ],
)
def test_a_policy_at_its_bounds_is_valid(kw: dict) -> None:
    SessionPolicy(**kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lifetime": 0}, "lifetimes must be positive"),
        ({"handshake_timeout": 0}, "lifetimes must be positive"),
        ({"max_messages": 0}, "max_messages must be in 1..2^63"),
        ({"max_messages": (1 << 63) + 1}, "max_messages must be in 1..2^63"),
        ({"replay_window": 0}, "replay_window must be in 1..4096"),
        ({"replay_window": 4097}, "replay_window must be in 1..4096"),
    ],
)
def test_a_policy_beyond_its_bounds_is_refused(kw: dict, message: str) -> None:
    with raises(ValueError, message):
        SessionPolicy(**kw)


# -- handshake messages ------------------------------------------------------------------------


def test_a_handshake_may_take_exactly_its_timeout(clock: FakeClock) -> None:
    pair = Pair(clock, SessionPolicy(handshake_timeout=5))
    m2 = pair.r.receive(pair.i.start())
    assert m2 is not None
    clock.advance(5)
    m3 = pair.i.receive(m2)
    assert pair.i.confirm(pair.r.receive(m3)).peer_name == "dev-001"
    late = Pair(clock, SessionPolicy(handshake_timeout=5))
    m2 = late.r.receive(late.i.start())
    assert m2 is not None
    clock.advance(5.001)
    with raises(HandshakeError, "handshake timed out"):
        late.i.receive(m2)


def test_a_message_out_of_turn_names_the_state(clock: FakeClock) -> None:
    pair = Pair(clock)
    m1 = pair.i.start()
    with raises(LocalProtocolError, "initiator: start is not allowed in state wait-message-2"):
        pair.i.start()
    m2 = pair.r.receive(m1)
    assert m2 is not None
    pair.r.receive(pair.i.receive(m2))
    with raises(HandshakeMessageError, "responder: message-3 is not allowed in state established"):
        pair.r.receive(b"\x01\x03")


def test_a_message_1_that_is_not_one_is_refused(clock: FakeClock) -> None:
    pair = Pair(clock)
    m1 = pair.i.start()
    with raises(HandshakeMessageError, "not a handshake message 1"):
        pair.r.receive(b"\x01\x02" + m1[2:])
    with raises(HandshakeMessageError, "unsupported cipher suite 2"):
        pair.r.receive(m1[:2] + b"\x02" + m1[3:])
    with raises(HandshakeError, "peer ephemeral key is a low-order point"):
        pair.r.receive(m1[:11] + bytes(32))


def test_a_message_2_that_is_not_ours_is_refused(clock: FakeClock) -> None:
    pair = Pair(clock)
    m2 = pair.r.receive(pair.i.start())
    assert m2 is not None
    with raises(HandshakeMessageError, "not a handshake message 2"):
        pair.i.receive(b"\x01\x03" + m2[2:])
    with raises(HandshakeMessageError, "message 2 is for another handshake"):
        pair.i.receive(m2[:2] + bytes(8) + m2[10:])
    with raises(HandshakeError, "message 2 does not decrypt: not our peer's ephemeral"):
        pair.i.receive(m2[:-1] + bytes([m2[-1] ^ 1]))
    pair.r.receive(pair.i.receive(m2))
