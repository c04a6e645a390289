"""Sessions: the SIGMA-I handshake (sans-IO) and symmetric-only records after it."""

from __future__ import annotations

import hashlib
import random

import pytest
from crypto_clock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from iomt.crypto.errors import (
    HandshakeError,
    HandshakeMessageError,
    SessionError,
    SessionExpiredError,
    SessionReplayError,
)
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
    addressed_to,
    is_handshake_start,
    raw_credential,
    record_session_id,
)
from iomt.crypto.signing import EcdsaP256Signer, Ed25519Signer, Signer
from iomt.errors import IomtError, LocalProtocolError


def _identity(name: str, signer: Signer | None = None) -> HandshakeIdentity:
    signer = signer or Ed25519Signer.generate()
    return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))


class Pair:
    def __init__(
        self, clock: FakeClock, policy: SessionPolicy | None = None, ecdsa: bool = False
    ) -> None:
        make = EcdsaP256Signer.generate if ecdsa else Ed25519Signer.generate
        self.provider = _identity("provider:dr-bob", make())
        self.device = _identity("dev-001", make())
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
        m4 = self.r.receive(self.i.receive(m2))
        self.i.confirm(m4)
        return self.i.session, self.r.session


@pytest.mark.parametrize("ecdsa", [False, True], ids=["ed25519", "ecdsa-p256"])
def test_handshake_then_records_both_ways(clock: FakeClock, ecdsa: bool) -> None:
    pair = Pair(clock, ecdsa=ecdsa)
    si, sr = pair.run()
    assert pair.i.state is pair.r.state is HandshakeState.ESTABLISHED
    assert si.peer_name == "dev-001" and sr.peer_name == "provider:dr-bob"
    assert record_session_id(si.protect(b"x")) == sr.local_id
    assert sr.unprotect(si.protect(b"GET vitals", b"req-1"), b"req-1") == b"GET vitals"
    assert si.unprotect(sr.protect(b"hr=72", b"req-1"), b"req-1") == b"hr=72"
    assert si.symmetric_key("link") == sr.symmetric_key("link")
    assert si.symmetric_key("link") != si.symmetric_key("other")


@settings(deadline=None, max_examples=40)
@given(messages=st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=40)), max_size=8))
def test_records_round_trip(messages: list[tuple[bytes, bytes]]) -> None:
    si, sr = Pair(FakeClock()).run()
    for body, aad in messages:
        assert sr.unprotect(si.protect(body, aad), aad) == body
        assert si.unprotect(sr.protect(body, aad), aad) == body


def test_associated_data_is_bound(clock: FakeClock) -> None:
    si, sr = Pair(clock).run()
    with pytest.raises(SessionError):
        sr.unprotect(si.protect(b"x", b"req-1"), b"req-2")


def test_replays_and_the_window(clock: FakeClock) -> None:
    si, sr = Pair(clock, SessionPolicy(replay_window=4)).run()
    records = [si.protect(bytes([n])) for n in range(8)]
    assert sr.unprotect(records[1]) == b"\x01"
    assert sr.unprotect(records[0]) == b"\x00"  # out of order, inside the window
    with pytest.raises(SessionReplayError):
        sr.unprotect(records[1])
    assert sr.unprotect(records[7]) == b"\x07"
    assert sr.unprotect(records[5]) == b"\x05"
    with pytest.raises(SessionReplayError):
        sr.unprotect(records[2])  # 7 - 2 >= window: too old to tell, refused
    with pytest.raises(SessionReplayError):
        sr.unprotect(records[7])


@settings(deadline=None, max_examples=60)
@given(order=st.lists(st.integers(0, 15), max_size=40))
def test_no_record_is_ever_accepted_twice(order: list[int]) -> None:
    si, sr = Pair(FakeClock(), SessionPolicy(replay_window=8)).run()
    records = [si.protect(bytes([n])) for n in range(16)]
    accepted: list[int] = []
    for n in order:
        try:
            assert sr.unprotect(records[n]) == bytes([n])
        except SessionReplayError:
            continue
        accepted.append(n)
    assert len(accepted) == len(set(accepted))


def test_sessions_expire_by_time_and_by_count(clock: FakeClock) -> None:
    si, sr = Pair(clock, SessionPolicy(lifetime=60, max_messages=3)).run()
    for _ in range(3):
        sr.unprotect(si.protect(b"x"))
    with pytest.raises(SessionExpiredError):
        si.protect(b"x")
    assert si.messages_sent == 3
    record = sr.protect(b"late")
    clock.advance(60)
    assert si.is_expired
    with pytest.raises(SessionExpiredError):
        si.unprotect(record)
    with pytest.raises(SessionExpiredError):
        sr.protect(b"x")


def test_every_flipped_record_byte_is_refused(clock: FakeClock) -> None:
    si, sr = Pair(clock).run()
    record = si.protect(b"heart_rate=72", b"aad")
    for i in range(len(record)):
        bad = bytearray(record)
        bad[i] ^= 0x01
        with pytest.raises(SessionError):
            sr.unprotect(bytes(bad), b"aad")
    assert sr.unprotect(record, b"aad") == b"heart_rate=72"


def test_records_do_not_reflect_or_cross_sessions(clock: FakeClock) -> None:
    si, _sr = Pair(clock).run()
    _other_i, other_r = Pair(clock).run()
    with pytest.raises(SessionError):
        si.unprotect(si.protect(b"x"))  # reflected back to its sender
    with pytest.raises(SessionError):
        other_r.unprotect(si.protect(b"x"))


@settings(deadline=None, max_examples=150)
@given(junk=st.binary(max_size=120))
def test_garbage_records_raise_session_errors(junk: bytes) -> None:
    _si, sr = Pair(FakeClock()).run()
    for data in (junk, b"\x01\x10" + sr.local_id + junk):
        with pytest.raises(SessionError):
            sr.unprotect(data)


@pytest.mark.parametrize("which", ["m1", "m2", "m3", "m4"])
def test_every_flipped_handshake_byte_fails_the_handshake(clock: FakeClock, which: str) -> None:
    template = Pair(clock)
    m1 = template.i.start()
    length = {"m1": len(m1), "m2": 330, "m3": 270, "m4": 26}[which]
    for i in range(0, length, 3 if which != "m4" else 1):
        pair = Pair(clock)
        m1 = pair.i.start()
        try:
            if which == "m1":
                m1 = _flip(m1, i)
            m2 = pair.r.receive(m1)
            if which == "m2":
                m2 = _flip(m2, i % len(m2))
            m3 = pair.i.receive(m2)
            if which == "m3":
                m3 = _flip(m3, i % len(m3))
            m4 = pair.r.receive(m3)
            if which == "m4":
                m4 = _flip(m4, i % len(m4))
            pair.i.confirm(m4)
        except (HandshakeError, HandshakeMessageError):
            continue
        pytest.fail(f"handshake completed with byte {i} of {which} flipped")


def _flip(data: bytes, i: int) -> bytes:
    bad = bytearray(data)
    bad[i] ^= 0x01
    return bytes(bad)


def test_failed_messages_leave_state_unchanged(clock: FakeClock) -> None:
    pair = Pair(clock)
    m1 = pair.i.start()
    m2 = pair.r.receive(m1)
    assert m2 is not None
    with pytest.raises(HandshakeError):
        pair.i.receive(_flip(m2, len(m2) - 1))
    assert pair.i.state is HandshakeState.WAIT_MESSAGE_2
    m3 = pair.i.receive(m2)  # the genuine message still works
    with pytest.raises(HandshakeMessageError):
        pair.r.receive(m1)  # a message 1 now is out of order
    assert pair.r.state is HandshakeState.WAIT_MESSAGE_3
    m4 = pair.r.receive(m3)
    assert pair.r.session.peer_name == "provider:dr-bob"
    # the initiator uses nothing before the responder's confirmation, and a forged one
    # changes nothing
    with pytest.raises(LocalProtocolError):
        _ = pair.i.session
    with pytest.raises(HandshakeError):
        pair.i.confirm(_flip(m4, len(m4) - 1))
    assert pair.i.state is HandshakeState.WAIT_MESSAGE_4
    assert pair.i.confirm(m4).peer_name == "dev-001"


def test_illegal_calls(clock: FakeClock) -> None:
    pair = Pair(clock)
    with pytest.raises(LocalProtocolError):
        _ = pair.i.session
    with pytest.raises(HandshakeMessageError):
        pair.i.receive(b"\x01\x02" + bytes(100))  # message 2 before we sent message 1
    pair.i.start()
    with pytest.raises(LocalProtocolError):
        pair.i.start()
    si, _ = Pair(clock).run()
    with pytest.raises(HandshakeMessageError):
        pair.r.receive(si.protect(b"x"))  # a record is not a handshake message


def test_untrusted_or_wrong_credentials(clock: FakeClock) -> None:
    pair = Pair(clock)
    stranger = _identity("dev-001")  # right name, another key
    pair.r = HandshakeResponder(stranger, pair.pins, clock=clock)
    m2 = pair.r.receive(pair.i.start())
    assert m2 is not None
    with pytest.raises(HandshakeError):
        pair.i.receive(m2)
    unknown = _identity("dev-999")
    pair = Pair(clock)
    pair.i = HandshakeInitiator(unknown, pair.pins, clock=clock)
    m2 = pair.r.receive(pair.i.start())
    m3 = pair.i.receive(m2)
    with pytest.raises(HandshakeError):
        pair.r.receive(m3)


def test_a_man_in_the_middle_is_named_not_misbound(clock: FakeClock) -> None:
    """Mallory relays between Bob and the device: each side learns it talks to Mallory."""
    pair = Pair(clock)
    mallory = _identity("mallory")
    pins = PinnedCredentials(
        {
            "mallory": mallory.signer.verifier(),
            pair.provider.name: pair.provider.signer.verifier(),
            pair.device.name: pair.device.signer.verifier(),
        }
    )
    bob = HandshakeInitiator(pair.provider, pins, clock=clock)
    mal_r = HandshakeResponder(mallory, pins, clock=clock)
    m2 = mal_r.receive(bob.start())
    bob.confirm(mal_r.receive(bob.receive(m2)))
    assert bob.session.peer_name == "mallory"
    assert mal_r.session.peer_name == "provider:dr-bob"
    # Mallory cannot pass Bob's handshake on to the device as her own: message 2 must be
    # signed by and encrypted for whoever answered Bob's ephemeral key.
    bob2 = HandshakeInitiator(pair.provider, pins, clock=clock)
    m1 = bob2.start()
    device = HandshakeResponder(pair.device, pins, clock=clock)
    from_device = device.receive(m1)
    relay = HandshakeResponder(mallory, pins, clock=clock)
    from_mallory = relay.receive(m1)
    # swap the encrypted identity block (and cookie) of Mallory's answer with the device's
    spliced = from_mallory[:50] + from_device[50:]
    with pytest.raises(HandshakeError):
        bob2.receive(spliced)
    # An initiator that knows whom it called refuses a message 2 from anyone else (any
    # certified identity can answer a message 1 it reads on the bus), and waits on
    careful = HandshakeInitiator(pair.provider, pins, clock=clock, expected_peer="dev-001")
    m1 = careful.start()
    with pytest.raises(HandshakeError, match="mallory"):
        careful.receive(HandshakeResponder(mallory, pins, clock=clock).receive(m1))
    assert careful.state is HandshakeState.WAIT_MESSAGE_2
    device = HandshakeResponder(pair.device, pins, clock=clock)
    careful.confirm(device.receive(careful.receive(device.receive(m1))))
    assert careful.session.peer_name == "dev-001"


def test_handshake_timeout(clock: FakeClock) -> None:
    pair = Pair(clock, SessionPolicy(handshake_timeout=5))
    m2 = pair.r.receive(pair.i.start())
    clock.advance(6)
    with pytest.raises(HandshakeError):
        pair.i.receive(m2)


@settings(deadline=None, max_examples=150)
@given(junk=st.binary(max_size=300))
def test_handshake_fuzz(junk: bytes) -> None:
    clock = FakeClock()
    pair = Pair(clock)
    with pytest.raises(IomtError) as info:
        pair.r.receive(junk)
        pair.r.receive(junk)
    assert isinstance(info.value, HandshakeError | HandshakeMessageError)
    pair.i.start()
    with pytest.raises((HandshakeError, HandshakeMessageError)):
        pair.i.receive(junk)
    assert pair.i.state is HandshakeState.WAIT_MESSAGE_2


def test_messages_can_be_routed(clock: FakeClock) -> None:
    pair = Pair(clock)
    m1 = pair.i.start()
    assert is_handshake_start(m1)
    with pytest.raises(HandshakeMessageError):
        addressed_to(m1)
    m2 = pair.r.receive(m1)
    assert not is_handshake_start(m2)
    m3 = pair.i.receive(m2)
    m4 = pair.r.receive(m3)
    pair.i.confirm(m4)
    assert addressed_to(m2) == pair.i.session.local_id
    assert addressed_to(m3) == pair.r.session.local_id
    assert addressed_to(m4) == pair.i.session.local_id
    assert addressed_to(pair.i.session.protect(b"x")) == pair.r.session.local_id
    with pytest.raises(HandshakeMessageError):
        addressed_to(b"\x01\x99" + bytes(20))


def test_session_repr_hides_keys(clock: FakeClock) -> None:
    si, _ = Pair(clock).run()
    assert "redacted" in repr(si)
    assert "redacted" not in repr(HandshakeState.IDLE)


def test_a_seeded_handshake_and_its_records_match_the_known_answer() -> None:
    """Pins the wire format and every derivation label: the same keys, ephemerals and
    connection ids give exactly these bytes (SHA-256 of each), so a changed context
    string, transcript hash or key schedule fails here even though both ends would
    still agree with each other."""

    def ident(name: str, seed: int) -> HandshakeIdentity:
        signer = Ed25519Signer.from_private_bytes(bytes([seed]) * 32)
        return HandshakeIdentity(name, signer, raw_credential(signer.verifier()))

    a, b = ident("provider:dr-bob", 1), ident("dev-001", 2)
    pins = PinnedCredentials({a.name: a.signer.verifier(), b.name: b.signer.verifier()})
    rng = random.Random(7).randbytes

    def clock() -> float:
        return 1_700_000_000.0

    i = HandshakeInitiator(a, pins, clock=clock, rng=rng)
    r = HandshakeResponder(b, pins, clock=clock, rng=rng)
    m1 = i.start()
    m2 = r.receive(m1)
    assert m2 is not None
    m3 = i.receive(m2)
    m4 = r.receive(m3)
    assert i.confirm(m4) is i.session
    got = {
        "m1": m1,
        "m2": m2,
        "m3": m3,
        "m4": m4,
        "i2r": i.session.protect(b"GET vitals", aad=b"req-1"),
        "r2i": r.session.protect(b"hr=72", aad=b"req-1"),
        "exported": i.session.symmetric_key("sym-aes").secret_bytes(),
    }
    assert m1.hex() == (
        "01010138b4e652e44da7f2abdf39359e503b01fe532dcf313a9c9ff540536c606673e24dedfa5a56337536"
    )
    assert {k: (len(v), hashlib.sha256(v).hexdigest()) for k, v in got.items()} == {
        "m1": (43, "72250feeb0991c176817257f32093085efedd3ec3846c6447250afd14f35b5f5"),
        "m2": (306, "cb48defd3920fd7328de8850b82e8b207ecddadf0352c4581b201f1ec7d826b4"),
        "m3": (274, "bf32faf0df506fa4b5628e1abb0b484b928f3b7a34fd7022a388ee011757840a"),
        "m4": (26, "462f22d1bdfdfb56f0416e856285b491808cc0e82140a6370345f3300cd69e41"),
        "i2r": (44, "349bd5eb061df89170dd5acbdc4c9db9761c2943135bba7d43827503903149ea"),
        "r2i": (39, "3e0f392e4cb69a5c48281b44258777cbe9a7bf2f7f4915277776334b9a9ba6a0"),
        "exported": (32, "20d5e1ff5ac251f01e99c2632810124f1f1fdb482c717aca397f32a6088eacb1"),
    }
    assert r.session.symmetric_key("sym-aes") == i.session.symmetric_key("sym-aes")
    assert i.session.symmetric_key("hmac") != i.session.symmetric_key("sym-aes")


# -- the stateless responder ----------------------------------------------------------


def _stateless(pair: Pair, clock: FakeClock, **kw: object) -> StatelessResponder:
    return StatelessResponder(pair.device, pair.pins, clock=clock, **kw)  # type: ignore[arg-type]


def test_the_responder_keeps_its_state_in_the_cookie(clock: FakeClock) -> None:
    """Nothing between message 1 and message 3: the same responder answers any number of
    message 1s, completes a handshake from its cookie, in any order."""
    pair = Pair(clock)
    responder = _stateless(pair, clock)
    initiators = [HandshakeInitiator(pair.provider, pair.pins, clock=clock) for _ in range(3)]
    m2s = [responder.answer(i.start(), "provider:dr-bob") for i in initiators]
    for i, m2 in reversed(list(zip(initiators, m2s, strict=True))):
        session, m4 = responder.complete(i.receive(m2), "provider:dr-bob")
        assert i.confirm(m4).unprotect(session.protect(b"hr=72")) == b"hr=72"
    assert vars(responder).keys() == {
        "identity",
        "_validate",
        "policy",
        "_clock",
        "_rng",
        "cookies",
    }


def test_a_cookie_binds_the_initiator_name_its_time_and_its_responder(
    clock: FakeClock,
) -> None:
    policy = SessionPolicy(handshake_timeout=10)
    pair = Pair(clock, policy)
    responder = _stateless(pair, clock, policy=policy)
    i = HandshakeInitiator(pair.provider, pair.pins, clock=clock)
    m3 = i.receive(responder.answer(i.start(), "provider:dr-bob"))
    with pytest.raises(HandshakeError, match="another name"):
        responder.complete(m3, "someone-else")
    other = _stateless(pair, clock, policy=policy)  # same identity, its own cookie key
    with pytest.raises(HandshakeError, match="cookie"):
        other.complete(m3, "provider:dr-bob")
    clock.advance(11)
    with pytest.raises(HandshakeError, match="timed out"):
        responder.complete(m3, "provider:dr-bob")
    clock.advance(10)  # two key periods (= the timeout) later the key itself is gone
    with pytest.raises(HandshakeError, match="expired"):
        responder.complete(m3, "provider:dr-bob")


def test_cookie_keys_rotate_and_are_forgotten(clock: FakeClock) -> None:
    jar = CookieJar(period=10, clock=clock)
    cookie = jar.seal(b"state", b"aad")
    assert jar.open(cookie, b"aad") == b"state"
    clock.advance(10)
    assert jar.open(cookie, b"aad") == b"state"  # the previous epoch still opens
    fresh = jar.seal(b"new", b"aad")
    assert fresh[:4] != cookie[:4]
    clock.advance(10)
    with pytest.raises(HandshakeError, match="expired"):
        jar.open(cookie, b"aad")
    with pytest.raises(HandshakeError):
        jar.open(fresh, b"other aad")
    with pytest.raises((HandshakeError, HandshakeMessageError)):
        jar.open(b"\x00" * 10, b"aad")
