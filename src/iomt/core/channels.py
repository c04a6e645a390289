"""Channels: authenticated sessions between two parties, so later requests are symmetric.

A provider opens a session with each device it asks (and a device with each converter it
uses) by the three-message handshake of ``iomt.crypto.sessions`` (SIGMA-I: ephemeral
X25519, identities proven by certificates from the facility CA). After that a request
costs one AES-GCM ``protect`` and ``unprotect`` (about 2 µs each here) instead of a
signature and its verification (about 0.13 ms), and the session exports the keys that
authenticate envelopes (HMAC) and, for ``sym-aes``, seal them.

``ChannelTable`` keeps the sessions of one party, by peer name, on both sides of the
handshake. It is sans-IO: it turns handshake bytes into handshake bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from iomt.crypto.errors import InvalidSignatureError
from iomt.crypto.keys import SymmetricKey
from iomt.crypto.sessions import (
    CredentialValidator,
    HandshakeIdentity,
    HandshakeInitiator,
    HandshakeResponder,
    Session,
    SessionPolicy,
    is_handshake_start,
    record_session_id,
)
from iomt.crypto.signing import HmacSha256Key, Verifier
from iomt.errors import AuthenticationError, LocalProtocolError, RemoteProtocolError

_MAX_SESSIONS_PER_PEER = 4
ENVELOPE_MAC_LABEL = "iomt/envelope-mac/v1"
SYM_AES_LABEL = "iomt/sym-aes/v1"


@dataclass
class _Pending:
    handshake: HandshakeInitiator | HandshakeResponder
    started: float


class ChannelTable:
    def __init__(
        self,
        identity: HandshakeIdentity,
        validate_peer: CredentialValidator,
        *,
        policy: SessionPolicy | None = None,
        clock: Callable[[], float] = time.time,
        max_pending: int = 256,
    ) -> None:
        self.identity = identity
        self._validate = validate_peer
        self.policy = policy or SessionPolicy()
        self._clock = clock
        self._max_pending = max_pending
        self._sessions: dict[str, Session] = {}
        self._by_id: dict[bytes, Session] = {}
        self._initiating: dict[str, _Pending] = {}
        self._confirming: dict[str, Session] = {}
        self._responding: dict[tuple[str, bytes], _Pending] = {}
        self._mac_keys: dict[bytes, HmacSha256Key] = {}
        self._older: dict[str, list[Session]] = {}
        self.handshakes_completed = 0

    # -- initiator ------------------------------------------------------------------------

    def start(self, peer: str) -> bytes:
        """Message 1 of a new handshake with ``peer`` (replacing an unfinished one)."""
        init = HandshakeInitiator(
            self.identity, self._validate, policy=self.policy, clock=self._clock
        )
        m1 = init.start()
        self._initiating[peer] = _Pending(init, self._clock())
        return m1

    def finish(self, peer: str, m2: bytes) -> bytes:
        """Feed the responder's message 2; returns message 3.

        The session is not used until :meth:`confirm` (the responder accepted message 3):
        a record or MAC sent on it before then may reach a responder that never completes
        the handshake (message 3 lost or refused), which could not check it.
        """
        pending = self._initiating.get(peer)
        if pending is None:
            raise LocalProtocolError(f"no handshake in progress with {peer}")
        m3 = pending.handshake.receive(m2)
        if m3 is None:  # pragma: no cover - an initiator always answers message 2
            raise RemoteProtocolError("handshake did not produce message 3")
        session = pending.handshake.session
        if session.peer_name != peer:
            raise AuthenticationError(f"handshake with {peer} authenticated {session.peer_name}")
        del self._initiating[peer]
        self._confirming[peer] = session
        return m3

    def confirm(self, peer: str) -> Session:
        """The responder accepted message 3: the session with ``peer`` is ready."""
        session = self._confirming.pop(peer, None)
        if session is None:
            raise LocalProtocolError(f"no finished handshake with {peer} to confirm")
        self._install(session)
        return session

    def abandon(self, peer: str) -> None:
        """Forget an unfinished or unconfirmed handshake with ``peer`` (live sessions stay)."""
        self._initiating.pop(peer, None)
        self._confirming.pop(peer, None)

    # -- responder ------------------------------------------------------------------------

    def respond(self, initiator: str, message: bytes) -> bytes:
        """Feed message 1 (returns message 2) or message 3 (returns b"": session ready)."""
        now = self._clock()
        if is_handshake_start(message):
            self._expire(now)
            if len(self._responding) >= self._max_pending:
                raise RemoteProtocolError("too many unfinished handshakes")
            resp = HandshakeResponder(
                self.identity, self._validate, policy=self.policy, clock=self._clock
            )
            m2 = resp.receive(message)
            if m2 is None:  # pragma: no cover
                raise RemoteProtocolError("message 1 produced no message 2")
            self._responding[(initiator, bytes(message[2:10]))] = _Pending(resp, now)
            return m2
        for key, pending in list(self._responding.items()):
            if key[0] != initiator:
                continue
            try:
                pending.handshake.receive(message)
            except (AuthenticationError, RemoteProtocolError, LocalProtocolError):
                continue  # not this handshake's message 3
            del self._responding[key]
            session = pending.handshake.session
            if session.peer_name != initiator:
                raise AuthenticationError(
                    f"{initiator} completed a handshake as {session.peer_name}"
                )
            self._install(session)
            return b""
        raise RemoteProtocolError(f"no handshake from {initiator} matches this message")

    def _expire(self, now: float) -> None:
        timeout = self.policy.handshake_timeout
        for key in [k for k, p in self._responding.items() if now - p.started > timeout]:
            del self._responding[key]

    # -- sessions -------------------------------------------------------------------------

    def _install(self, session: Session) -> None:
        # Two parties may open sessions with each other at the same moment (a converter
        # with a provider that is about to ask it directly): each side then holds two.
        # Records on every live one are accepted (by connection id); we send on the
        # newest. Older ones are kept until they expire, a few per peer at most.
        peer = session.peer_name
        self._sessions[peer] = session
        self._by_id[session.local_id] = session
        older = self._older.setdefault(peer, [])
        older.append(session)
        while len(older) > _MAX_SESSIONS_PER_PEER:
            gone = older.pop(0)
            self._by_id.pop(gone.local_id, None)
            self._mac_keys.pop(gone.local_id, None)
        self.handshakes_completed += 1

    def session(self, peer: str) -> Session | None:
        """The live session with ``peer``, if any (expired ones are dropped)."""
        s = self._sessions.get(peer)
        if s is not None and s.is_expired:
            self.drop(peer)
            return None
        return s

    def session_by_id(self, local_id: bytes) -> Session | None:
        s = self._by_id.get(local_id)
        return None if s is None or s.is_expired else s

    def session_of_record(self, record: bytes) -> Session:
        """The session a protected record was sent on; SessionError if unknown."""
        s = self._by_id.get(record_session_id(record))
        if s is None or s.is_expired:
            raise AuthenticationError("record for no live session")
        return s

    def drop(self, peer: str) -> None:
        self._sessions.pop(peer, None)
        for s in self._older.pop(peer, []):
            self._by_id.pop(s.local_id, None)
            self._mac_keys.pop(s.local_id, None)

    def mac_verifier(self, peer: str) -> Verifier | None:
        """What checks a MAC from ``peer``: any of our live sessions with it. Two parties
        that opened sessions with each other at the same moment may each send on a
        different one for a while; a MAC from either is theirs.

        That includes a session we initiated and finished but whose confirmation is still
        on its way: the responder holds it as soon as it accepted message 3 and may MAC
        with it at once (a converter publishing to a provider that just opened a session
        with it), before our confirmation arrives. Accepting such a MAC is safe -- only the
        authenticated peer holds the key -- we just do not send on that session yet."""
        sessions = [*self._older.get(peer, ())]
        confirming = self._confirming.get(peer)
        if confirming is not None:
            sessions.append(confirming)
        keys = [self.mac_key(s) for s in sessions if not s.is_expired]
        if not keys:
            return None
        return keys[0] if len(keys) == 1 else AnyOfMacs(keys[::-1])

    def mac_key(self, session: Session) -> HmacSha256Key:
        key = self._mac_keys.get(session.local_id)
        if key is None:
            key = HmacSha256Key(session.symmetric_key(ENVELOPE_MAC_LABEL).secret_bytes())
            self._mac_keys[session.local_id] = key
        return key

    @staticmethod
    def link_key(session: Session) -> SymmetricKey:
        """The key ``sym-aes`` seals under on this link."""
        return session.symmetric_key(SYM_AES_LABEL)

    def __len__(self) -> int:
        return len(self._sessions)


class AnyOfMacs(Verifier):
    """Accepts a MAC made with any of a few keys (the live sessions with one peer)."""

    algorithm = "hmac-sha256"

    def __init__(self, keys: list[HmacSha256Key]) -> None:
        self._keys = keys

    def verify(self, data: bytes, signature: bytes) -> None:
        for key in self._keys:
            try:
                key.verify(data, signature)
            except InvalidSignatureError:
                continue
            return
        raise InvalidSignatureError("HMAC-SHA256 tag does not verify with any session key")

    def public_bytes(self) -> bytes:
        return b"".join(k.public_bytes() for k in self._keys)
